// Command generate streams a continuation with pipeline.TextGeneration,
// using the model's generation_config.json defaults. "embrace generate"
// (cmd/embrace) is the full tool: sampling flags, stop strings, JSON.
//
//	go run ./examples/generate -model openai-community/gpt2 "Once upon a time"
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"strings"

	"github.com/embrace-go/embrace/pipeline"
)

func main() {
	model := flag.String("model", "openai-community/gpt2", "model folder or Hub repo id")
	maxNew := flag.Int("max-new-tokens", 40, "tokens to generate")
	flag.Parse()
	prompt := strings.Join(flag.Args(), " ")
	if prompt == "" {
		prompt = "Once upon a time"
	}
	ctx := context.Background()
	gen, err := pipeline.NewTextGeneration(ctx, *model, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer gen.Close()
	cfg := gen.Config() // generation_config.json's settings
	cfg.MaxNewTokens = *maxNew
	fmt.Print(prompt)
	for piece, err := range gen.Stream(ctx, prompt, &cfg) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(piece)
	}
	fmt.Println()
}
