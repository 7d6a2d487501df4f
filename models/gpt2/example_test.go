package gpt2_test

import (
	"context"
	"fmt"
	"log"

	"github.com/embrace-go/embrace/models/gpt2"
)

// Load a checkpoint folder and run the whole model over a prompt's ids.
func ExampleLoad() {
	m, err := gpt2.Load("path/to/gpt2") // config.json + model.safetensors
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	out, err := m.Recompute(context.Background(), gpt2.Input{IDs: []int{15496, 11, 995}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Logits.Shape()) // [1 3 50257]
}

// Decode greedily with a KV cache: one pass over the prompt, then one token
// per step.
func ExampleState() {
	m, err := gpt2.Load("path/to/gpt2")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	st, err := m.NewState(1, 64)
	if err != nil {
		log.Fatal(err)
	}
	logits, err := st.Prefill(ctx, []int{15496, 11, 995}, nil)
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
}
