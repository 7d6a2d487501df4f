package pipeline_test

import (
	"context"
	"fmt"
	"log"

	"github.com/embrace-go/embrace/pipeline"
)

// The text-generation pipeline: prompt in, text out.
func ExampleTextGeneration() {
	ctx := context.Background()
	p, err := pipeline.NewTextGeneration(ctx, "path/to/gpt2", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	cfg := p.Config() // generation_config.json defaults
	cfg.MaxNewTokens = 30
	out, err := p.Generate(ctx, "Hugging Face is", &cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.FullText, out.FinishReason)
	for piece, err := range p.Stream(ctx, "Once upon a time", &cfg) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(piece)
	}
}
