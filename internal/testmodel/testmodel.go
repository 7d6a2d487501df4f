// Package testmodel writes small random-weight checkpoint folders for tests
// that must run without the shared fixtures: config.json,
// generation_config.json and model.safetensors, seeded so every run writes
// the same weights.
package testmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/embrace-go/embrace/safetensors"
)

// GPT2 describes a tiny GPT2LMHeadModel.
type GPT2 struct {
	Layers, Hidden, Heads, Vocab, Positions int
	// EOS is the end token id written to both configs.
	EOS  int
	Seed uint64
}

// Write writes the folder into dir.
func (c GPT2) Write(dir string) error {
	cfg := map[string]any{
		"model_type": "gpt2", "architectures": []string{"GPT2LMHeadModel"},
		"vocab_size": c.Vocab, "n_positions": c.Positions, "n_embd": c.Hidden,
		"n_layer": c.Layers, "n_head": c.Heads, "activation_function": "gelu_new",
		"bos_token_id": c.EOS, "eos_token_id": c.EOS, "tie_word_embeddings": true,
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	gen := map[string]any{"bos_token_id": c.EOS, "eos_token_id": c.EOS}
	if err := writeJSON(filepath.Join(dir, "generation_config.json"), gen); err != nil {
		return err
	}
	w := newWriter(c.Seed)
	h := c.Hidden
	w.add("transformer.wte.weight", 0.5, 0, c.Vocab, h)
	w.add("transformer.wpe.weight", 0.3, 0, c.Positions, h)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("transformer.h.%d.", l)
		for _, n := range []string{"ln_1", "ln_2"} {
			w.add(p+n+".weight", 0.2, 1, h)
			w.add(p+n+".bias", 0.2, 0, h)
		}
		w.add(p+"attn.c_attn.weight", 0.4, 0, h, 3*h)
		w.add(p+"attn.c_attn.bias", 0.2, 0, 3*h)
		w.add(p+"attn.c_proj.weight", 0.3, 0, h, h)
		w.add(p+"attn.c_proj.bias", 0.2, 0, h)
		w.add(p+"mlp.c_fc.weight", 0.3, 0, h, 4*h)
		w.add(p+"mlp.c_fc.bias", 0.2, 0, 4*h)
		w.add(p+"mlp.c_proj.weight", 0.3, 0, 4*h, h)
		w.add(p+"mlp.c_proj.bias", 0.2, 0, h)
	}
	w.add("transformer.ln_f.weight", 0.2, 1, h)
	w.add("transformer.ln_f.bias", 0.2, 0, h)
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), w.views, nil)
}

type writer struct {
	rng   *rand.Rand
	views []safetensors.TensorView
}

func newWriter(seed uint64) *writer { return &writer{rng: rand.New(rand.NewPCG(seed, 1))} }

// add appends an F32 tensor of N(mean, std²) values.
func (w *writer) add(name string, std, mean float64, shape ...int) {
	n := 1
	for _, s := range shape {
		n *= s
	}
	buf := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(mean+w.rng.NormFloat64()*std)))
	}
	w.views = append(w.views, safetensors.TensorView{Name: name, DType: safetensors.F32, Shape: shape, Data: buf})
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
