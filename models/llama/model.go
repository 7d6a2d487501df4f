package llama

import (
	"fmt"
	"math"
	"strings"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// layer is one decoder layer (LlamaDecoderLayer): pre-norm attention and
// gated MLP, each added to the residual stream.
type layer struct {
	inNorm, postNorm *nn.RMSNorm
	qkv              *nn.Linear // q|k|v stacked: [(H+2K)·hd, D]
	o                *nn.Linear // [D, H·hd]
	qNorm, kNorm     *nn.RMSNorm
	mlp              *nn.GatedMLP
	window           int
}

// model is what CausalLM and Base share: the weights and the guard that
// makes Close wait for calls in flight.
type model struct {
	cfg    Config
	info   arch.Info
	embed  *nn.Embedding
	layers []layer
	norm   *nn.RMSNorm
	head   *nn.Linear // nil for a base model
	rope   *nn.Rope
	scale  float32
	// threads is LoadOptions.Threads, for the calls made here rather than
	// through a layer.
	threads tensor.Threads
	ck      *safetensors.Checkpoint
	guard   arch.Guard // calls hold it; Close waits for them
}

// CausalLM is a *ForCausalLM model: it implements arch.CausalLM (and
// arch.Encoder, giving the logits of every position). Safe for concurrent
// use with one cache per goroutine.
type CausalLM struct{ m *model }

// Base is a base model (LlamaModel, Qwen3Model, ...): it implements
// arch.Encoder, giving the hidden states after the final norm.
type Base struct{ m *model }

var (
	_ arch.CausalLM = (*CausalLM)(nil)
	_ arch.Encoder  = (*CausalLM)(nil)
	_ arch.Encoder  = (*Base)(nil)
)

// Arch returns the registration of this package for models.Load.
func Arch() arch.Registration {
	return arch.Registration{
		Name:       "llama",
		ModelTypes: []string{"llama", "mistral", "qwen2", "qwen3"},
		Task:       Task,
		Load:       Load,
	}
}

// Task returns the head named by config.json's architectures: *ForCausalLM
// is arch.TaskCausalLM, the base classes (LlamaModel, MistralModel,
// Qwen2Model, Qwen3Model) arch.TaskBase; other heads are unsupported. No
// architectures means a causal LM.
func Task(cfg *hfdir.Config) (arch.Task, error) {
	if len(cfg.Architectures) == 0 {
		return arch.TaskCausalLM, nil
	}
	a := cfg.Architectures[0]
	switch {
	case strings.HasSuffix(a, "ForCausalLM"):
		return arch.TaskCausalLM, nil
	case a == "LlamaModel" || a == "MistralModel" || a == "Qwen2Model" || a == "Qwen3Model":
		return arch.TaskBase, nil
	}
	return "", fmt.Errorf("llama: architecture %q: %w (this package runs *ForCausalLM and the base models)", a, arch.ErrUnsupported)
}

// Load builds the model a folder holds: config.json and the safetensors
// weights (single or sharded). It returns a *CausalLM or a *Base by the
// head config.json names.
func Load(f *hfdir.Folder, opt arch.LoadOptions) (arch.Model, error) {
	hc, err := f.RequireConfig()
	if err != nil {
		return nil, err
	}
	task, err := Task(hc)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(hc)
	if err != nil {
		return nil, err
	}
	ck, src, err := weights.Open(f, opt)
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	m, err := build(cfg, src, f.Dir, task == arch.TaskCausalLM)
	if err != nil {
		ck.Close()
		return nil, err
	}
	m.ck = ck
	m.info = arch.Info{Arch: "llama", ModelType: cfg.ModelType, Architectures: hc.Architectures, Task: task,
		HiddenSize: cfg.HiddenSize, VocabSize: cfg.VocabSize, MaxPositions: cfg.MaxPositionEmbeddings,
		PadTokenID: cfg.PadTokenID}
	if task == arch.TaskCausalLM {
		return &CausalLM{m}, nil
	}
	return &Base{m}, nil
}

// LoadDir is Load for a folder path.
func LoadDir(dir string) (arch.Model, error) {
	f, err := hfdir.Read(dir)
	if err != nil {
		return nil, err
	}
	return Load(f, arch.LoadOptions{})
}

// build reads the weights of cfg from src (names with or without the
// "model." prefix); withHead also loads the LM head.
func build(cfg *Config, src weights.Source, where string, withHead bool) (*model, error) {
	prefix, ok := weights.FirstPrefix(src, "embed_tokens.weight", "model.", "")
	if !ok {
		return nil, fmt.Errorf("llama: %s: no token embeddings (neither model.embed_tokens.weight nor embed_tokens.weight)", where)
	}
	root := weights.New(src, where)
	base := root.Sub(prefix)
	d, hd := cfg.HiddenSize, cfg.HeadDim
	nh, nkv := cfg.NumAttentionHeads, cfg.NumKeyValueHeads
	act, _ := tensor.ParseActivation(cfg.HiddenAct) // checked by ParseConfig
	m := &model{cfg: *cfg, scale: float32(1 / math.Sqrt(float64(hd))), threads: root.Threads()}
	var err error
	if m.rope, err = nn.NewRope(cfg.Rope); err != nil {
		return nil, fmt.Errorf("llama: %s: %w", where, err)
	}
	if m.embed, err = base.Embedding("embed_tokens", cfg.VocabSize, d); err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	eps := float32(cfg.RMSNormEps)
	rms := func(l *weights.Loader, name string, n int) (*nn.RMSNorm, error) {
		w, err := l.F32(name+".weight", n)
		if err != nil {
			return nil, err
		}
		return &nn.RMSNorm{Weight: w, Eps: eps, Threads: m.threads}, nil
	}
	qkvBias, oBias := cfg.biases()
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		l := base.Subf("layers.%d", i)
		ly := layer{window: cfg.Window(i)}
		err := func() error {
			var err error
			if ly.inNorm, err = rms(l, "input_layernorm", d); err != nil {
				return err
			}
			if ly.postNorm, err = rms(l, "post_attention_layernorm", d); err != nil {
				return err
			}
			a := l.Sub("self_attn")
			q, err := a.UnpackedLinear("q_proj", d, nh*hd, qkvBias)
			if err != nil {
				return err
			}
			k, err := a.UnpackedLinear("k_proj", d, nkv*hd, qkvBias)
			if err != nil {
				return err
			}
			v, err := a.UnpackedLinear("v_proj", d, nkv*hd, qkvBias)
			if err != nil {
				return err
			}
			if ly.qkv, err = nn.StackLinear(q, k, v); err != nil {
				return err
			}
			if err = ly.qkv.Pack(); err != nil {
				return err
			}
			if ly.o, err = a.Linear("o_proj", nh*hd, d, oBias); err != nil {
				return err
			}
			if cfg.ModelType == "qwen3" {
				if ly.qNorm, err = rms(a, "q_norm", hd); err != nil {
					return err
				}
				if ly.kNorm, err = rms(a, "k_norm", hd); err != nil {
					return err
				}
			}
			ml := l.Sub("mlp")
			gate, err := ml.UnpackedLinear("gate_proj", d, cfg.IntermediateSize, cfg.MLPBias)
			if err != nil {
				return err
			}
			up, err := ml.UnpackedLinear("up_proj", d, cfg.IntermediateSize, cfg.MLPBias)
			if err != nil {
				return err
			}
			down, err := ml.UnpackedLinear("down_proj", cfg.IntermediateSize, d, cfg.MLPBias)
			if err != nil {
				return err
			}
			ly.mlp, err = nn.NewGatedMLP(gate, up, down, act)
			return err
		}()
		if err != nil {
			return nil, fmt.Errorf("llama: layer %d: %w", i, err)
		}
		m.layers = append(m.layers, ly)
	}
	if m.norm, err = rms(base, "norm", d); err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	if withHead {
		// As transformers ties them, a tied head is the embedding table even
		// when the checkpoint also stores lm_head.weight.
		switch {
		case cfg.TieWordEmbeddings:
			m.head, err = root.Head(m.embed.Table)
		case root.Has("lm_head.weight"):
			var w *tensor.Tensor
			if w, err = root.Weight("lm_head.weight", cfg.VocabSize, d); err == nil {
				m.head, err = root.Head(w)
			}
		default:
			err = fmt.Errorf("%s: tie_word_embeddings is false but the checkpoint has no lm_head.weight", where)
		}
		if err != nil {
			return nil, fmt.Errorf("llama: %w", err)
		}
	}
	return m, nil
}

// enter starts a call: it fails once the model is closed.
func (m *model) enter() error { return m.guard.Acquire("llama") }

func (m *model) leave() { m.guard.Release() }

// close waits for the calls in flight, then releases the checkpoint.
func (m *model) close() error {
	return m.guard.Close(func() error {
		if m.ck != nil {
			return m.ck.Close()
		}
		return nil
	})
}

// Info describes the model.
func (c *CausalLM) Info() arch.Info { return c.m.info }

// Close releases the weights; later calls return arch.ErrClosed. It waits
// for the calls in flight.
func (c *CausalLM) Close() error { return c.m.close() }

// Config returns a copy of the configuration.
func (c *CausalLM) Config() Config { return c.m.cfg }

// Info describes the model.
func (b *Base) Info() arch.Info { return b.m.info }

// Close releases the weights; later calls return arch.ErrClosed. It waits
// for the calls in flight.
func (b *Base) Close() error { return b.m.close() }

// Config returns a copy of the configuration.
func (b *Base) Config() Config { return b.m.cfg }
