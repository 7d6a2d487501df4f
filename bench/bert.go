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
)

// BERT-family entries: token ids in, last hidden state out, on random
// weights of the real shapes written as a checkpoint folder and loaded the
// way a user's folder is.

type bertShape struct {
	layers, hidden, heads, inner, vocab, positions int
}

var (
	bertBase = bertShape{12, 768, 12, 3072, 30522, 512}
	miniLML6 = bertShape{6, 384, 12, 1536, 30522, 512}
)

func init() {
	registerBERT("bert-base/b1s16", bertBase, 1, 16)
	registerBERT("bert-base/b1s128", bertBase, 1, 128)
	registerBERT("minilm-l6/b1s128", miniLML6, 1, 128)
	registerBERT("bert-base/b8s128", bertBase, 8, 128)
	registerBERT("minilm-l6/b8s128", miniLML6, 8, 128)
	registerBERTConcurrent("minilm-l6/8xb1s128", miniLML6, 8, 128)
}

func registerBERT(name string, sh bertShape, batch, seq int) {
	registerBERTOp(name, sh, batch, seq, 1, nil)
}

// registerBERTConcurrent adds an entry where n goroutines share one loaded
// model, each running a batch of one sequence: the load of a server without
// batching. The value is sequences per second over the n.
func registerBERTConcurrent(name string, sh bertShape, n, seq int) {
	registerBERTOp(name, sh, 1, seq, n, nil)
}

// registerBERTOp registers conc goroutines each running batch sequences
// of seq tokens on a model loaded with opt (nil: the defaults).
func registerBERTOp(name string, sh bertShape, batch, seq, conc int, opt *arch.LoadOptions) {
	unit, value := "ms", func(sec float64) float64 { return sec * 1e3 }
	if batch*conc > 1 {
		unit, value = "seq/s", func(sec float64) float64 { return float64(batch*conc) / sec }
	}
	b := register(name, unit, func() (func() error, func(), error) {
		dir, err := os.MkdirTemp("", "embrace-bench-bert-")
		if err != nil {
			return nil, nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := writeRandomBERT(dir, sh); err != nil {
			cleanup()
			return nil, nil, err
		}
		f, err := hfdir.Read(dir)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		m, err := models.LoadEncoder(f, opt)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		rng := rand.New(rand.NewPCG(1, 2))
		in := &arch.EncoderInput{Batch: batch, Seq: seq, InputIDs: make([]int, batch*seq)}
		for i := range in.InputIDs {
			in.InputIDs[i] = 1000 + rng.IntN(sh.vocab-1000)
		}
		op := func() error {
			_, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
			return err
		}
		if conc > 1 {
			one := op
			op = func() error {
				errs := make(chan error, conc)
				for range conc {
					go func() { errs <- one() }()
				}
				var first error
				for range conc {
					if err := <-errs; err != nil && first == nil {
						first = err
					}
				}
				return first
			}
		}
		return op, func() { m.Close(); cleanup() }, nil
	}, value)
	// Multiply-adds of the projections and attention, ×2 for FLOPs.
	n := float64(batch * seq * conc)
	d, in := float64(sh.hidden), float64(sh.inner)
	flops := float64(sh.layers) * 2 * (n*(4*d*d+2*d*in) + float64(batch*conc)*float64(seq*seq)*2*d)
	b.gflops = func(sec float64) float64 { return flops / sec / 1e9 }
}

// writeRandomBERT writes config.json and model.safetensors of a BertModel of
// the given shape with seeded random weights.
func writeRandomBERT(dir string, sh bertShape) error {
	cfg := map[string]any{
		"model_type": "bert", "architectures": []string{"BertModel"},
		"vocab_size": sh.vocab, "hidden_size": sh.hidden, "num_hidden_layers": sh.layers,
		"num_attention_heads": sh.heads, "intermediate_size": sh.inner, "hidden_act": "gelu",
		"max_position_embeddings": sh.positions, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var views []safetensors.TensorView
	add := func(name string, std float64, ones bool, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		buf := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			v := float32(rng.NormFloat64() * std)
			if ones {
				v += 1
			}
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		views = append(views, safetensors.TensorView{Name: name, DType: safetensors.F32, Shape: shape, Data: buf})
	}
	linear := func(name string, in, out int) {
		add(name+".weight", 0.02, false, out, in)
		add(name+".bias", 0.02, false, out)
	}
	norm := func(name string, n int) {
		add(name+".weight", 0.02, true, n)
		add(name+".bias", 0.02, false, n)
	}
	h := sh.hidden
	add("embeddings.word_embeddings.weight", 0.02, false, sh.vocab, h)
	add("embeddings.position_embeddings.weight", 0.02, false, sh.positions, h)
	add("embeddings.token_type_embeddings.weight", 0.02, false, 2, h)
	norm("embeddings.LayerNorm", h)
	for l := 0; l < sh.layers; l++ {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		linear(p+"attention.self.query", h, h)
		linear(p+"attention.self.key", h, h)
		linear(p+"attention.self.value", h, h)
		linear(p+"attention.output.dense", h, h)
		norm(p+"attention.output.LayerNorm", h)
		linear(p+"intermediate.dense", h, sh.inner)
		linear(p+"output.dense", sh.inner, h)
		norm(p+"output.LayerNorm", h)
	}
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), views, map[string]string{"format": "pt"})
}
