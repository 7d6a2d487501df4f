package gpt2_test

import (
	"context"
	"fmt"
	"log"

	"github.com/embrace-go/embrace/models/gpt2"
)

// Load a checkpoint folder and run the whole model over a prompt's ids.
func ExampleLoad() {
	// testdata/gpt2-tiny is a 2-layer random-weight GPT-2 with a 1,500-piece
	// vocabulary; any folder save_pretrained wrote loads the same way.
	m, err := gpt2.Load("testdata/gpt2-tiny") // config.json + model.safetensors
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	out, err := m.Recompute(context.Background(), gpt2.Input{IDs: []int{464, 11, 995}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Logits.Shape())
	// Output: [1 3 1500]
}

// Decode greedily with a KV cache: one pass over the prompt, then one token
// per step.
func ExampleState() {
	m, err := gpt2.Load("testdata/gpt2-tiny")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	st, err := m.NewState(1, 64)
	if err != nil {
		log.Fatal(err)
	}
	logits, err := st.Prefill(ctx, []int{464, 11, 995}, nil)
	for i := 0; i < 10 && err == nil; i++ {
		best := 0
		for j, v := range logits {
			if v > logits[best] {
				best = j
			}
		}
		fmt.Print(best, " ")
		logits, err = st.Step(ctx, []int{best})
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	// Output: 313 334 3 3 3 3 1439 1439 1439 1494
}
