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

// The modern encoders (MPNet, XLM-RoBERTa, ModernBERT): random weights of
// the base models' real shapes, written as a checkpoint folder and loaded
// through models.Load. The reference bench has no ONNX graphs of these, so
// they are judged against the FMA peak (the gflops field).

// encoderSpec is one architecture's folder: its config.json and tensors.
type encoderSpec struct {
	config  map[string]any
	tensors func(add func(name string, std, mean float64, shape ...int))
	vocab   int
	// flops is the arithmetic of one batch×seq forward pass.
	flops func(batch, seq int) float64
}

// bertLikeFlops counts the projections, the feed-forward and attention of
// a post-norm encoder.
func bertLikeFlops(layers, d, inner int) func(batch, seq int) float64 {
	return func(batch, seq int) float64 {
		n := float64(batch * seq)
		dd, in := float64(d), float64(inner)
		return float64(layers) * 2 * (n*(4*dd*dd+2*dd*in) + float64(batch)*float64(seq*seq)*2*dd)
	}
}

var (
	mpnetBase = encoderSpec{
		config: map[string]any{
			"model_type": "mpnet", "architectures": []string{"MPNetModel"},
			"vocab_size": 30527, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
			"intermediate_size": 3072, "hidden_act": "gelu", "max_position_embeddings": 514,
			"layer_norm_eps": 1e-5, "pad_token_id": 1, "relative_attention_num_buckets": 32,
		},
		vocab: 30527,
		tensors: func(add func(string, float64, float64, ...int)) {
			h, in := 768, 3072
			add("embeddings.word_embeddings.weight", 0.02, 0, 30527, h)
			add("embeddings.position_embeddings.weight", 0.02, 0, 514, h)
			add("embeddings.LayerNorm.weight", 0.02, 1, h)
			add("embeddings.LayerNorm.bias", 0.02, 0, h)
			add("encoder.relative_attention_bias.weight", 0.02, 0, 32, 12)
			for l := 0; l < 12; l++ {
				p := fmt.Sprintf("encoder.layer.%d.", l)
				for _, n := range []string{"q", "k", "v", "o"} {
					add(p+"attention.attn."+n+".weight", 0.02, 0, h, h)
					add(p+"attention.attn."+n+".bias", 0.02, 0, h)
				}
				add(p+"attention.LayerNorm.weight", 0.02, 1, h)
				add(p+"attention.LayerNorm.bias", 0.02, 0, h)
				add(p+"intermediate.dense.weight", 0.02, 0, in, h)
				add(p+"intermediate.dense.bias", 0.02, 0, in)
				add(p+"output.dense.weight", 0.02, 0, h, in)
				add(p+"output.dense.bias", 0.02, 0, h)
				add(p+"output.LayerNorm.weight", 0.02, 1, h)
				add(p+"output.LayerNorm.bias", 0.02, 0, h)
			}
		},
		flops: bertLikeFlops(12, 768, 3072),
	}
	xlmrBase = encoderSpec{
		config: map[string]any{
			"model_type": "xlm-roberta", "architectures": []string{"XLMRobertaModel"},
			"vocab_size": 250002, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
			"intermediate_size": 3072, "hidden_act": "gelu", "max_position_embeddings": 514,
			"type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1,
		},
		vocab: 250002,
		tensors: func(add func(string, float64, float64, ...int)) {
			h, in := 768, 3072
			add("embeddings.word_embeddings.weight", 0.02, 0, 250002, h)
			add("embeddings.position_embeddings.weight", 0.02, 0, 514, h)
			add("embeddings.token_type_embeddings.weight", 0.02, 0, 1, h)
			add("embeddings.LayerNorm.weight", 0.02, 1, h)
			add("embeddings.LayerNorm.bias", 0.02, 0, h)
			for l := 0; l < 12; l++ {
				p := fmt.Sprintf("encoder.layer.%d.", l)
				for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
					add(p+n+".weight", 0.02, 0, h, h)
					add(p+n+".bias", 0.02, 0, h)
				}
				add(p+"attention.output.LayerNorm.weight", 0.02, 1, h)
				add(p+"attention.output.LayerNorm.bias", 0.02, 0, h)
				add(p+"intermediate.dense.weight", 0.02, 0, in, h)
				add(p+"intermediate.dense.bias", 0.02, 0, in)
				add(p+"output.dense.weight", 0.02, 0, h, in)
				add(p+"output.dense.bias", 0.02, 0, h)
				add(p+"output.LayerNorm.weight", 0.02, 1, h)
				add(p+"output.LayerNorm.bias", 0.02, 0, h)
			}
		},
		flops: bertLikeFlops(12, 768, 3072),
	}
	// ModernBERT-base: 22 layers, GeGLU 1152, a 128-token window on two
	// layers of three.
	modernBERTBase = encoderSpec{
		config: map[string]any{
			"model_type": "modernbert", "architectures": []string{"ModernBertModel"},
			"vocab_size": 50368, "hidden_size": 768, "num_hidden_layers": 22, "num_attention_heads": 12,
			"intermediate_size": 1152, "hidden_activation": "gelu", "max_position_embeddings": 8192,
			"global_attn_every_n_layers": 3, "local_attention": 128, "global_rope_theta": 160000.0,
			"local_rope_theta": 10000.0, "norm_eps": 1e-5, "norm_bias": false, "attention_bias": false,
			"mlp_bias": false, "pad_token_id": 50283,
		},
		vocab: 50368,
		tensors: func(add func(string, float64, float64, ...int)) {
			h, in := 768, 1152
			add("embeddings.tok_embeddings.weight", 0.02, 0, 50368, h)
			add("embeddings.norm.weight", 0.02, 1, h)
			for l := 0; l < 22; l++ {
				p := fmt.Sprintf("layers.%d.", l)
				if l > 0 {
					add(p+"attn_norm.weight", 0.02, 1, h)
				}
				add(p+"attn.Wqkv.weight", 0.02, 0, 3*h, h)
				add(p+"attn.Wo.weight", 0.02, 0, h, h)
				add(p+"mlp_norm.weight", 0.02, 1, h)
				add(p+"mlp.Wi.weight", 0.02, 0, 2*in, h)
				add(p+"mlp.Wo.weight", 0.02, 0, h, in)
			}
			add("final_norm.weight", 0.02, 1, h)
		},
		flops: func(batch, seq int) float64 {
			// Projections and GeGLU; attention over the whole sequence on
			// global layers (every third) and over the window elsewhere.
			n, d, in := float64(batch*seq), 768.0, 1152.0
			f := 0.0
			for l := 0; l < 22; l++ {
				keys := float64(seq)
				if l%3 != 0 {
					keys = math.Min(float64(seq), 129)
				}
				f += 2 * (n*(4*d*d+3*d*in) + n*keys*2*d)
			}
			return f
		},
	}
)

func init() {
	registerEncoder("mpnet-base/b8s128", mpnetBase, 8, 128)
	registerEncoder("xlmr-base/b8s128", xlmrBase, 8, 128)
	registerEncoder("modernbert-base/b1s512", modernBERTBase, 1, 512)
	registerEncoder("modernbert-base/b8s128", modernBERTBase, 8, 128)
}

func registerEncoder(name string, spec encoderSpec, batch, seq int) {
	b := register(name, "seq/s", func() (func() error, func(), error) {
		dir, err := os.MkdirTemp("", "embrace-bench-enc-")
		if err != nil {
			return nil, nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := writeRandomEncoder(dir, spec); err != nil {
			cleanup()
			return nil, nil, err
		}
		f, err := hfdir.Read(dir)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		m, err := models.LoadEncoder(f, nil)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		rng := rand.New(rand.NewPCG(1, 2))
		in := &arch.EncoderInput{Batch: batch, Seq: seq, InputIDs: make([]int, batch*seq)}
		for i := range in.InputIDs {
			in.InputIDs[i] = 1000 + rng.IntN(spec.vocab-1000)
		}
		op := func() error {
			_, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
			return err
		}
		return op, func() { m.Close(); cleanup() }, nil
	}, func(sec float64) float64 { return float64(batch) / sec })
	flops := spec.flops(batch, seq)
	b.gflops = func(sec float64) float64 { return flops / sec / 1e9 }
}

// writeRandomEncoder writes spec's config.json and seeded random F32
// weights.
func writeRandomEncoder(dir string, spec encoderSpec) error {
	data, err := json.Marshal(spec.config)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(5, 9))
	var views []safetensors.TensorView
	spec.tensors(func(name string, std, mean float64, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		buf := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(mean+rng.NormFloat64()*std)))
		}
		views = append(views, safetensors.TensorView{Name: name, DType: safetensors.F32, Shape: shape, Data: buf})
	})
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), views, map[string]string{"format": "pt"})
}
