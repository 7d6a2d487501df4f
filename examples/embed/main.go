// Command embed computes sentence embeddings with pipeline.SentenceEmbedder,
// as SentenceTransformer.encode does (the folder's pooling and
// normalization), and prints their cosine similarities. "embrace embed"
// (cmd/embrace) is the full tool: stdin, batches, JSON Lines.
//
//	go run ./examples/embed -model pipeline/testdata/minilm-st "A cat sits outside" "A cat is outdoors"
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"

	"github.com/embrace-go/embrace/pipeline"
)

func main() {
	model := flag.String("model", "sentence-transformers/all-MiniLM-L6-v2", "model folder or Hub repo id")
	flag.Parse()
	texts := flag.Args()
	if len(texts) == 0 {
		texts = []string{"Hello world!", "Embrace runs transformers in Go."}
	}
	ctx := context.Background()
	emb, err := pipeline.NewSentenceEmbedder(ctx, *model, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emb.Close()
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		log.Fatal(err)
	}
	for i, v := range vecs {
		fmt.Printf("%q: %d dims, first %.4f\n", texts[i], len(v), v[:min(3, len(v))])
		for j := range i {
			fmt.Printf("  cosine with %q: %.4f\n", texts[j], cosine(v, vecs[j]))
		}
	}
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}
