// Command classify labels texts with pipeline.TextClassifier, like Hugging
// Face's text-classification pipeline (labels from config.json's id2label).
// "embrace classify" (cmd/embrace) is the full tool: stdin, top-k, JSON.
//
//	go run ./examples/classify "I loved this film" "Terrible service"
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/embrace-go/embrace/pipeline"
)

func main() {
	model := flag.String("model", "distilbert/distilbert-base-uncased-finetuned-sst-2-english", "model folder or Hub repo id")
	flag.Parse()
	texts := flag.Args()
	if len(texts) == 0 {
		texts = []string{"I loved this film", "Terrible service"}
	}
	ctx := context.Background()
	clf, err := pipeline.NewTextClassifier(ctx, *model, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer clf.Close()
	results, err := clf.Classify(ctx, texts, pipeline.ClassifyOptions{TopK: 1})
	if err != nil {
		log.Fatal(err)
	}
	for i, labels := range results {
		fmt.Printf("%s\t%s (%.4f)\n", texts[i], labels[0].Label, labels[0].Score)
	}
}
