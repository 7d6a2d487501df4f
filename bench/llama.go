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

// Llama-family entries: random weights of real checkpoint shapes, written as
// a LlamaForCausalLM folder and loaded through models.Load like a user's.

type llamaShape struct {
	layers, hidden, heads, kvHeads, inner, vocab, positions int
	theta                                                   float64
	tied                                                    bool
}

var (
	// SmolLM2-135M.
	smolLM2 = llamaShape{30, 576, 9, 3, 1536, 49152, 8192, 100000, true}
	// Llama-3.2-1B (without its rope_scaling, which costs nothing at 128
	// positions).
	llama1B = llamaShape{16, 2048, 32, 8, 8192, 128256, 131072, 500000, true}
)

func init() {
	q8 := &arch.LoadOptions{Quantize: arch.QuantizeQ8}
	registerLlamaDecode("smollm2-135m/decode-f32-ctx128", smolLM2, safetensors.F32, 128, nil)
	registerLlamaDecode("smollm2-135m/decode-bf16-ctx128", smolLM2, safetensors.BF16, 128, nil)
	registerLlamaDecode("smollm2-135m/decode-q8-ctx128", smolLM2, safetensors.F32, 128, q8)
	registerLlamaPrefill("smollm2-135m/prefill-s128", smolLM2, 128, nil)
	registerLlamaPrefill("smollm2-135m/prefill-s128-q8", smolLM2, 128, q8)
	registerLlamaDecode("llama-1b/decode-bf16-ctx128", llama1B, safetensors.BF16, 128, nil)
}

// weightBytes is what one decode step reads: every matrix once (the tied
// head is the embedding table), in dtype dt.
func (s llamaShape) weightBytes(dt safetensors.DType) float64 {
	hd := s.hidden / s.heads
	perLayer := s.hidden*(s.heads*hd) + 2*s.hidden*(s.kvHeads*hd) + (s.heads*hd)*s.hidden + 3*s.hidden*s.inner
	n := float64(s.layers*perLayer + s.vocab*s.hidden)
	if dt == safetensors.F32 {
		return 4 * n
	}
	return 2 * n
}

func loadRandomLlama(sh llamaShape, dt safetensors.DType, opt *arch.LoadOptions) (arch.CausalLM, func(), error) {
	dir, err := os.MkdirTemp("", "embrace-bench-llama-")
	if err != nil {
		return nil, nil, err
	}
	if err := writeRandomLlama(dir, sh, dt); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	f, err := hfdir.Read(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	if _, err := models.Task(f); models.IsUnsupported(err) {
		os.RemoveAll(dir)
		return nil, nil, skipf("%v", err)
	}
	m, err := models.LoadCausalLM(f, opt)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return m, func() { m.Close(); os.RemoveAll(dir) }, nil
}

// One op: one KV-cached step at context ctxLen with full-vocabulary logits.
func registerLlamaDecode(name string, sh llamaShape, dt safetensors.DType, ctxLen int, opt *arch.LoadOptions) {
	register(name, "tokens/s", func() (func() error, func(), error) {
		m, cleanup, err := loadRandomLlama(sh, dt, opt)
		if err != nil {
			return nil, nil, err
		}
		c, err := m.NewCache(1, ctxLen+1)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		ctx := context.Background()
		if _, err := m.Forward(ctx, c, &arch.DecoderInput{IDs: llamaIDs(ctxLen, sh.vocab), Logits: arch.NoLogits}); err != nil {
			cleanup()
			return nil, nil, err
		}
		next := &arch.DecoderInput{IDs: []int{42}}
		op := func() error {
			if err := c.Truncate(ctxLen); err != nil {
				return err
			}
			_, err := m.Forward(ctx, c, next)
			return err
		}
		return op, cleanup, nil
	}, func(sec float64) float64 { return 1 / sec })
}

// One op: 128 ids through the model (cache filled) to the next-token logits.
func registerLlamaPrefill(name string, sh llamaShape, seq int, opt *arch.LoadOptions) {
	b := register(name, "tokens/s", func() (func() error, func(), error) {
		m, cleanup, err := loadRandomLlama(sh, safetensors.F32, opt)
		if err != nil {
			return nil, nil, err
		}
		c, err := m.NewCache(1, seq)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		in := &arch.DecoderInput{IDs: llamaIDs(seq, sh.vocab)}
		ctx := context.Background()
		op := func() error {
			c.Reset()
			_, err := m.Forward(ctx, c, in)
			return err
		}
		return op, cleanup, nil
	}, func(sec float64) float64 { return float64(seq) / sec })
	b.gflops = func(sec float64) float64 { return sh.flops(seq) / sec / 1e9 }
}

// flops is the arithmetic of a prefill of n positions with the LM head at
// the last one only.
func (s llamaShape) flops(n int) float64 {
	hd := float64(s.hidden / s.heads)
	d := float64(s.hidden)
	proj := d*float64(s.heads)*hd*2 + 2*d*float64(s.kvHeads)*hd + 3*d*float64(s.inner)
	attn := 2 * float64(s.heads) * hd * float64(n) / 2 * 2 // q·k and p·v over half the context on average
	return float64(s.layers)*float64(n)*(2*proj+attn) + 2*d*float64(s.vocab)
}

func llamaIDs(n, vocab int) []int {
	rng := rand.New(rand.NewPCG(3, 5))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
}

// writeRandomLlama writes config.json and model.safetensors of a
// LlamaForCausalLM of shape sh with seeded random weights stored in dt.
func writeRandomLlama(dir string, sh llamaShape, dt safetensors.DType) error {
	hd := sh.hidden / sh.heads
	cfg := map[string]any{
		"model_type": "llama", "architectures": []string{"LlamaForCausalLM"},
		"vocab_size": sh.vocab, "hidden_size": sh.hidden, "intermediate_size": sh.inner,
		"num_hidden_layers": sh.layers, "num_attention_heads": sh.heads, "num_key_value_heads": sh.kvHeads,
		"head_dim": hd, "max_position_embeddings": sh.positions, "rms_norm_eps": 1e-5,
		"rope_theta": sh.theta, "hidden_act": "silu", "tie_word_embeddings": sh.tied,
		"bos_token_id": 1, "eos_token_id": 2,
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(13, 19))
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
		if dt == safetensors.BF16 {
			h := make([]uint16, n)
			tensor.F32ToBF16(h, vals)
			buf = make([]byte, 2*n)
			for i, v := range h {
				binary.LittleEndian.PutUint16(buf[2*i:], v)
			}
		} else {
			buf = make([]byte, 4*n)
			for i, v := range vals {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
		}
		views = append(views, safetensors.TensorView{Name: name, DType: dt, Shape: shape, Data: buf})
	}
	h := sh.hidden
	add("model.embed_tokens.weight", 0.02, 0, sh.vocab, h)
	for l := 0; l < sh.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", 0.02, 1, h)
		add(p+"self_attn.q_proj.weight", 0.02, 0, sh.heads*hd, h)
		add(p+"self_attn.k_proj.weight", 0.02, 0, sh.kvHeads*hd, h)
		add(p+"self_attn.v_proj.weight", 0.02, 0, sh.kvHeads*hd, h)
		add(p+"self_attn.o_proj.weight", 0.02, 0, h, sh.heads*hd)
		add(p+"post_attention_layernorm.weight", 0.02, 1, h)
		add(p+"mlp.gate_proj.weight", 0.02, 0, sh.inner, h)
		add(p+"mlp.up_proj.weight", 0.02, 0, sh.inner, h)
		add(p+"mlp.down_proj.weight", 0.02, 0, h, sh.inner)
	}
	add("model.norm.weight", 0.02, 1, h)
	if !sh.tied {
		add("lm_head.weight", 0.02, 0, sh.vocab, h)
	}
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), views, map[string]string{"format": "pt"})
}
