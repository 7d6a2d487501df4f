// Command tokenize prints the ids, tokens and byte offsets a model's
// tokenizer gives a text, as Hugging Face tokenizers would. "embrace
// tokenize" (cmd/embrace) is the full tool: pairs, decoding, JSON.
//
//	go run ./examples/tokenize -model pipeline/testdata/minilm-st "Hello world!"
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"strings"

	"github.com/embrace-go/embrace/hub"
	"github.com/embrace-go/embrace/tokenizer"
)

func main() {
	model := flag.String("model", "google-bert/bert-base-uncased", "model folder or Hub repo id")
	flag.Parse()
	text := strings.Join(flag.Args(), " ")
	if text == "" {
		text = "Hello world!"
	}
	dir, err := hub.Resolve(context.Background(), *model) // a folder as is, else a Hub download
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	enc, err := tok.Encode(text, true) // true: add special tokens such as [CLS]
	if err != nil {
		log.Fatal(err)
	}
	for i, id := range enc.IDs {
		fmt.Printf("%3d %6d %-12q %d-%d\n", i, id, enc.Tokens[i], enc.Offsets[i].Start, enc.Offsets[i].End)
	}
}
