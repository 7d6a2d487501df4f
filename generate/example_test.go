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
	dir := "path/to/gpt2"
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
	cfg.MaxNewTokens = 40
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
		fmt.Print(piece)
	}
}

// Greedy continuations of several prompts in one left-padded batch.
func ExampleGenerate() {
	m, err := models.Load("path/to/gpt2", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cfg := generate.DefaultConfig()
	cfg.MaxNewTokens = 8
	cfg.RepetitionPenalty = 1.2
	out, err := generate.Generate(context.Background(), m.(arch.CausalLM), [][]int{{464, 1280}, {15496}}, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
}
