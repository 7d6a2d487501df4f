package mpnet_test

import (
	"context"
	"fmt"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/models/mpnet"
)

// Load a checkpoint folder and run a batch of token ids through it.
func ExampleLoad() {
	// A tiny random-weight MPNetForSequenceClassification folder.
	m, err := mpnet.Load("testdata/mpnet-cls")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	// Two sequences; the second is padded on the right with the padding
	// id 1 (MPNet's position ids skip it).
	in := &arch.EncoderInput{
		Batch: 2, Seq: 5,
		InputIDs:      []int{0, 17, 23, 9, 2, 0, 17, 2, 1, 1},
		AttentionMask: []int{1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
	}
	out, err := m.Encode(context.Background(), in, arch.EncodeOptions{HiddenStates: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Config.Task, out.LastHiddenState.Shape(), len(out.HiddenStates), out.Logits.Shape(), m.Config.Labels)
	// Output: sequence-classification [2 5 16] 3 [2 3] [negative neutral positive]
}
