package bert_test

import (
	"context"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"

	"github.com/embrace-go/embrace/models/bert"
)

// Load a checkpoint folder and run a batch of token ids through it.
func ExampleLoad() {
	// A tiny random-weight copy of a BertForSequenceClassification folder.
	m, err := bert.Load("testdata/bert-cls")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	// Two sequences; the second is padded on the right.
	in := &arch.EncoderInput{
		Batch: 2, Seq: 5,
		InputIDs:      []int{2, 887, 178, 574, 3, 2, 887, 3, 0, 0},
		AttentionMask: []int{1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
	}
	out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Config.Task, out.LastHiddenState.Shape(), out.Logits.Shape(), m.Config.Labels)
	// Output: sequence-classification [2 5 32] [2 3] [negative neutral positive]
}
