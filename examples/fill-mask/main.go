// Command fill-mask predicts the word behind a mask token with
// pipeline.FillMask, like Hugging Face's fill-mask pipeline. "embrace
// fill-mask" (cmd/embrace) is the full tool: targets, stdin, JSON.
//
//	go run ./examples/fill-mask "Paris is the [MASK] of France."
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
	model := flag.String("model", "google-bert/bert-base-uncased", "model folder or Hub repo id")
	flag.Parse()
	ctx := context.Background()
	fm, err := pipeline.NewFillMask(ctx, *model, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer fm.Close()
	text := strings.Join(flag.Args(), " ")
	if text == "" {
		text = "Paris is the " + fm.MaskToken() + " of France." // [MASK] for BERT, <mask> for RoBERTa
	}
	res, err := fm.Fill(ctx, []string{text}, pipeline.FillMaskOptions{TopK: 5})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range res[0].Masks[0].Predictions { // the first text's first mask
		fmt.Printf("%.4f %-12q %s\n", p.Score, p.TokenStr, p.Sequence)
	}
}
