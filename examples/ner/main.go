// Command ner finds named entities with pipeline.TokenClassifier, like
// Hugging Face's token-classification pipeline with
// aggregation_strategy="simple". "embrace ner" (cmd/embrace) is the full
// tool: every aggregation, stdin, JSON.
//
//	go run ./examples/ner "Hugging Face is based in New York City."
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
	model := flag.String("model", "dslim/bert-base-NER", "model folder or Hub repo id")
	flag.Parse()
	text := strings.Join(flag.Args(), " ")
	if text == "" {
		text = "Hugging Face is based in New York City."
	}
	ctx := context.Background()
	ner, err := pipeline.NewTokenClassifier(ctx, *model, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ner.Close()
	res, err := ner.Classify(ctx, []string{text}, pipeline.TokenOptions{Aggregation: pipeline.AggregateSimple})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range res[0] {
		fmt.Printf("%-6s %.4f %q (bytes %d-%d)\n", e.Label, e.Score, e.Word, e.Start, e.End)
	}
}
