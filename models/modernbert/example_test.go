package modernbert_test

import (
	"context"
	"fmt"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/models/modernbert"
)

// Load a checkpoint folder and run a batch of token ids through it.
func ExampleLoad() {
	// A tiny random-weight ModernBertForMaskedLM folder: four layers,
	// global and sliding-window attention alternating.
	m, err := modernbert.Load("testdata/modernbert-mlm")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	in := &arch.EncoderInput{
		Batch: 2, Seq: 6,
		InputIDs:      []int{1, 17, 23, 9, 30, 2, 1, 17, 2, 0, 0, 0},
		AttentionMask: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
	}
	out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Config.Task, m.Config.Global, m.Config.Window(), out.Logits.Shape())
	// Output: masked-lm [true false true false] 2 [2 6 40]
}
