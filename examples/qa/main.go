// Command qa answers a question from a context with
// pipeline.QuestionAnswerer, like Hugging Face's question-answering
// pipeline: the answer is a span of the context. "embrace qa" (cmd/embrace)
// is the full tool: many questions, top-k, JSON.
//
//	go run ./examples/qa -context "Hugging Face is based in New York City." "Where is Hugging Face based?"
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
	model := flag.String("model", "distilbert/distilbert-base-cased-distilled-squad", "model folder or Hub repo id")
	context_ := flag.String("context", "Hugging Face is based in New York City.", "the text to find the answer in")
	flag.Parse()
	question := strings.Join(flag.Args(), " ")
	if question == "" {
		question = "Where is Hugging Face based?"
	}
	ctx := context.Background()
	qa, err := pipeline.NewQuestionAnswerer(ctx, *model, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer qa.Close()
	res, err := qa.Answer(ctx, []pipeline.QAInput{{Question: question, Context: *context_}}, pipeline.QAOptions{})
	if err != nil {
		log.Fatal(err)
	}
	a := res[0][0]
	fmt.Printf("%q (score %.4f, bytes %d-%d of the context)\n", a.Answer, a.Score, a.Start, a.End)
}
