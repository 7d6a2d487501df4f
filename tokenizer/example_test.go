package tokenizer_test

import (
	"context"
	"fmt"
	"log"

	"github.com/embrace-go/embrace/tokenizer"
)

// Load a tokenizer folder and encode a text with special tokens.
func ExampleFromDir() {
	tk, err := tokenizer.FromDir("testdata/wordpiece-uncased")
	if err != nil {
		log.Fatal(err)
	}
	enc, err := tk.Encode("Hello world!", true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(enc.Tokens)
	fmt.Println(enc.IDs)
	fmt.Println(enc.CharOffsets("Hello world!", ""))
	// Output:
	// [[CLS] he ##l ##lo world ! [SEP]]
	// [2 887 178 574 789 5 3]
	// [{0 0} {0 2} {2 3} {3 5} {6 11} {11 12} {0 0}]
}

// Decode ids back into text, with or without special tokens.
func ExampleTokenizer_Decode() {
	tk, err := tokenizer.FromDir("testdata/bpe-roberta")
	if err != nil {
		log.Fatal(err)
	}
	enc, err := tk.Encode("Hello world!", true)
	if err != nil {
		log.Fatal(err)
	}
	plain, _ := tk.Decode(enc.IDs, true)
	all, _ := tk.Decode(enc.IDs, false)
	fmt.Printf("%q\n%q\n", plain, all)
	// Output:
	// " Hello world!"
	// "<s> Hello world!</s>"
}

// Encode a batch with truncation and padding to the longest text.
func ExampleTokenizer_EncodeBatch() {
	tk, err := tokenizer.FromDir("testdata/wordpiece-uncased")
	if err != nil {
		log.Fatal(err)
	}
	pad := tk.SpecialTokens().Pad
	tk = tk.WithTruncation(&tokenizer.TruncationParams{MaxLength: 8}).
		WithPadding(&tokenizer.PaddingParams{Strategy: "longest", PadID: pad.ID, PadToken: pad.Token})
	encs, err := tk.EncodeBatch(context.Background(), []string{"Hello world!", "The quick brown fox jumps over the lazy dog."}, true)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range encs {
		fmt.Println(e.IDs, e.AttentionMask)
	}
	// Output:
	// [2 887 178 574 789 5 3 0] [1 1 1 1 1 1 1 0]
	// [2 247 558 1249 1317 177 166 3] [1 1 1 1 1 1 1 1]
}

// Stream decoded text while generating ids one by one.
func ExampleDecodeStream() {
	tk, err := tokenizer.FromDir("testdata/bpe-bytelevel")
	if err != nil {
		log.Fatal(err)
	}
	enc, _ := tk.Encode("café 👍", false)
	s := tk.NewDecodeStream(true)
	for _, id := range enc.IDs {
		piece, err := s.Step(id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q ", piece)
	}
	fmt.Println()
	// Output: "ca" "f" "é" " " "" "" "👍"
}
