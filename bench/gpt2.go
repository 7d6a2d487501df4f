package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// GPT-2 124M entries on random weights of the real shape, written as a
// checkpoint folder (transformer.-prefixed names, lm_head tied to wte) and
// loaded the way a user's folder is.

const (
	gpt2Layers    = 12
	gpt2Hidden    = 768
	gpt2Heads     = 12
	gpt2Vocab     = 50257
	gpt2Positions = 1024
)

func init() {
	registerGPT2Prefill("gpt2/prefill-s128", 128, nil)
	registerGPT2Prefill("gpt2/prefill-s128-q8", 128, &arch.LoadOptions{Quantize: arch.QuantizeQ8})
	registerGPT2Decode("gpt2/decode-f32-ctx128", safetensors.F32, 128)
	registerGPT2Decode("gpt2/decode-f16-ctx128", safetensors.F16, 128)
	registerGPT2Decode("gpt2/decode-bf16-ctx128", safetensors.BF16, 128)
	registerGPT2Decode("gpt2/decode-f32-ctx512", safetensors.F32, 512)
}

// loadRandomGPT2 writes a random GPT-2 124M folder in dtype and loads it.
func loadRandomGPT2(dt safetensors.DType, opt *arch.LoadOptions) (arch.CausalLM, func(), error) {
	dir, err := os.MkdirTemp("", "embrace-bench-gpt2-")
	if err != nil {
		return nil, nil, err
	}
	if err := writeRandomGPT2(dir, dt); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	f, err := hfdir.Read(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	m, err := models.LoadCausalLM(f, opt)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return m, func() { m.Close(); os.RemoveAll(dir) }, nil
}

func randomIDs(n int) []int {
	rng := rand.New(rand.NewPCG(3, 5))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(gpt2Vocab)
	}
	return ids
}

// One op: 128 ids through the model (KV cache filled) to the next-token
// logits.
func registerGPT2Prefill(name string, seq int, opt *arch.LoadOptions) {
	b := register(name, "tokens/s", func() (func() error, func(), error) {
		m, cleanup, err := loadRandomGPT2(safetensors.F32, opt)
		if err != nil {
			return nil, nil, err
		}
		st, err := m.NewCache(1, seq)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		in := &arch.DecoderInput{IDs: randomIDs(seq)}
		ctx := context.Background()
		op := func() error {
			st.Reset()
			_, err := m.Forward(ctx, st, in)
			return err
		}
		return op, cleanup, nil
	}, func(sec float64) float64 { return float64(seq) / sec })
	b.gflops = func(sec float64) float64 { return gpt2Flops(seq, seq) / sec / 1e9 }
}

// One op: one KV-cached step at context ctxLen with full-vocabulary logits.
// The cache is cut back to ctxLen before each step so every op sees the
// same context.
func registerGPT2Decode(name string, dt safetensors.DType, ctxLen int) {
	b := register(name, "tokens/s", func() (func() error, func(), error) {
		m, cleanup, err := loadRandomGPT2(dt, nil)
		if err != nil {
			return nil, nil, err
		}
		st, err := m.NewCache(1, ctxLen+1)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		ctx := context.Background()
		if _, err := m.Forward(ctx, st, &arch.DecoderInput{IDs: randomIDs(ctxLen)}); err != nil {
			cleanup()
			return nil, nil, err
		}
		next := &arch.DecoderInput{IDs: []int{42}}
		op := func() error {
			if err := st.Truncate(ctxLen); err != nil {
				return err
			}
			_, err := m.Forward(ctx, st, next)
			return err
		}
		return op, cleanup, nil
	}, func(sec float64) float64 { return 1 / sec })
	b.gflops = func(sec float64) float64 { return gpt2Flops(1, ctxLen+1) / sec / 1e9 }
}

// gpt2Flops is the arithmetic of n new positions attending over ctx
// positions, with the logits of the last one only.
func gpt2Flops(n, ctx int) float64 {
	d := float64(gpt2Hidden)
	perTok := float64(gpt2Layers) * 2 * (12 * d * d)
	attn := float64(gpt2Layers) * 2 * 2 * d * float64(n) * float64(ctx)
	if n > 1 {
		attn /= 2 // causal: on average half the context
	}
	return float64(n)*perTok + attn + 2*d*float64(gpt2Vocab)
}

// writeRandomGPT2 writes config.json and model.safetensors of a GPT-2 124M
// with seeded random weights stored in dt.
func writeRandomGPT2(dir string, dt safetensors.DType) error {
	cfg := map[string]any{
		"model_type": "gpt2", "architectures": []string{"GPT2LMHeadModel"},
		"vocab_size": gpt2Vocab, "n_positions": gpt2Positions, "n_embd": gpt2Hidden,
		"n_layer": gpt2Layers, "n_head": gpt2Heads, "n_inner": nil,
		"activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
		"bos_token_id": 50256, "eos_token_id": 50256, "tie_word_embeddings": true,
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(13, 17))
	var views []safetensors.TensorView
	add := func(name string, std, mean float64, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(mean + rng.NormFloat64()*std)
		}
		var buf []byte
		switch dt {
		case safetensors.F16, safetensors.BF16:
			h := make([]uint16, n)
			if dt == safetensors.F16 {
				tensor.F32ToF16(h, vals)
			} else {
				tensor.F32ToBF16(h, vals)
			}
			buf = make([]byte, 2*n)
			for i, v := range h {
				binary.LittleEndian.PutUint16(buf[2*i:], v)
			}
		default:
			buf = make([]byte, 4*n)
			for i, v := range vals {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
		}
		views = append(views, safetensors.TensorView{Name: name, DType: dt, Shape: shape, Data: buf})
	}
	conv := func(name string, in, out int) {
		add(name+".weight", 0.02, 0, in, out)
		add(name+".bias", 0.02, 0, out)
	}
	norm := func(name string) {
		add(name+".weight", 0.02, 1, gpt2Hidden)
		add(name+".bias", 0.02, 0, gpt2Hidden)
	}
	h := gpt2Hidden
	add("transformer.wte.weight", 0.02, 0, gpt2Vocab, h)
	add("transformer.wpe.weight", 0.01, 0, gpt2Positions, h)
	for l := 0; l < gpt2Layers; l++ {
		p := fmt.Sprintf("transformer.h.%d.", l)
		norm(p + "ln_1")
		conv(p+"attn.c_attn", h, 3*h)
		conv(p+"attn.c_proj", h, h)
		norm(p + "ln_2")
		conv(p+"mlp.c_fc", h, 4*h)
		conv(p+"mlp.c_proj", 4*h, h)
	}
	norm("transformer.ln_f")
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), views, map[string]string{"format": "pt"})
}
