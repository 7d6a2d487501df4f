package generate_test

import (
	"context"
	"fmt"
	"log"

	"github.com/embrace-go/embrace/generate"
	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tokenizer"
)

// Sample a continuation with the folder's generation defaults, and print it
// as it is produced.
func ExampleStream() {
	dir := "../models/gpt2/testdata/gpt2-tiny" // a tiny random-weight GPT-2

	m, err := models.Load(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := generate.LoadConfig(dir) // generation_config.json
	if err != nil {
		log.Fatal(err)
	}
	cfg.MaxNewTokens = 8
	cfg.DoSample, cfg.TopP, cfg.Seed = true, 0.9, 1
	cfg.StopStrings = []string{"\n\n"}
	cfg.Decoder = tok
	enc, err := tok.Encode("Once upon a time", true)
	if err != nil {
		log.Fatal(err)
	}
	for piece, err := range generate.Stream(context.Background(), m.(arch.CausalLM), enc.IDs, cfg) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q ", piece)
	}
	// Output: " thing" " terms" "ou" " a" " computer" " computer" "str" "str"
}

// Greedy continuations of several prompts in one left-padded batch.
func ExampleGenerate() {
	m, err := models.Load("../models/gpt2/testdata/gpt2-tiny", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cfg := generate.DefaultConfig()
	cfg.MaxNewTokens = 8
	cfg.RepetitionPenalty = 1.2
	out, err := generate.Generate(context.Background(), m.(arch.CausalLM), [][]int{{464, 1280}, {1496}}, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	// Output: [[275 1392 1232 505 1428 807 807 807] [505 1170 442 206 706 198 780 410]]
}
