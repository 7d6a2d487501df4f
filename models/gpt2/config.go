// Package gpt2 runs GPT-2-family decoders (GPT2LMHeadModel) from Hugging Face
// checkpoints: config.json plus model.safetensors or a sharded index, in F32,
// F16 or BF16, with or without the "transformer." name prefix, with the
// language-model head tied to the token embeddings.
//
// A Model is immutable after Load and serves many goroutines. Decoding keeps
// its keys and values in a State (one per generation), which prefills a
// prompt in one pass and then advances one token per step without
// recomputing the past and without allocating.
//
// The code mirrors transformers' modeling_gpt2.py: GPT2Model (wte, wpe, h.N,
// ln_f) and GPT2LMHeadModel (lm_head tied to wte).
package gpt2

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/embrace-go/embrace/tensor"
)

// ErrUnsupported marks a configuration or checkpoint feature this package
// does not implement; errors wrapping it start with "unsupported:".
var ErrUnsupported = errors.New("unsupported")

// Config is the part of a GPT-2 config.json the model needs. Zero values are
// replaced by transformers' GPT2Config defaults in ParseConfig.
type Config struct {
	ModelType               string   `json:"model_type"`
	Architectures           []string `json:"architectures"`
	VocabSize               int      `json:"vocab_size"`
	NPositions              int      `json:"n_positions"`
	NCtx                    int      `json:"n_ctx"` // older configs' name for n_positions
	NEmbd                   int      `json:"n_embd"`
	NLayer                  int      `json:"n_layer"`
	NHead                   int      `json:"n_head"`
	NInner                  *int     `json:"n_inner"` // nil: 4 × n_embd
	ActivationFunction      string   `json:"activation_function"`
	LayerNormEpsilon        float64  `json:"layer_norm_epsilon"`
	ScaleAttnWeights        *bool    `json:"scale_attn_weights"`
	ScaleAttnByInverseLayer bool     `json:"scale_attn_by_inverse_layer_idx"`
	ReorderAndUpcastAttn    bool     `json:"reorder_and_upcast_attn"`
	TieWordEmbeddings       *bool    `json:"tie_word_embeddings"`
	AddCrossAttention       bool     `json:"add_cross_attention"`
	BOSTokenID              *int     `json:"bos_token_id"`
	EOSTokenID              *int     `json:"eos_token_id"`
	PadTokenID              *int     `json:"pad_token_id"`
}

// Inner is the width of the feed-forward layer (n_inner, or 4 × n_embd).
func (c *Config) Inner() int {
	if c.NInner != nil && *c.NInner > 0 {
		return *c.NInner
	}
	return 4 * c.NEmbd
}

// Tied reports whether lm_head shares the token-embedding matrix (the
// default).
func (c *Config) Tied() bool { return c.TieWordEmbeddings == nil || *c.TieWordEmbeddings }

// HeadDim is n_embd / n_head.
func (c *Config) HeadDim() int { return c.NEmbd / c.NHead }

// maxDim bounds every size read from a config so that a corrupt file cannot
// ask for an absurd allocation before any tensor is checked.
const maxDim = 1 << 24

// ParseConfig decodes a config.json, fills transformers' defaults and checks
// that the sizes are consistent. where names the file in errors.
func ParseConfig(data []byte, where string) (*Config, error) {
	c := &Config{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("gpt2: %s: %w", where, err)
	}
	if c.ModelType != "" && c.ModelType != "gpt2" {
		return nil, fmt.Errorf("gpt2: %s: model_type %q is not gpt2: %w", where, c.ModelType, ErrUnsupported)
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.VocabSize, 50257)
	def(&c.NPositions, c.NCtx)
	def(&c.NPositions, 1024)
	def(&c.NEmbd, 768)
	def(&c.NLayer, 12)
	def(&c.NHead, 12)
	if c.ActivationFunction == "" {
		c.ActivationFunction = "gelu_new"
	}
	if c.LayerNormEpsilon == 0 {
		c.LayerNormEpsilon = 1e-5
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"n_positions", c.NPositions}, {"n_embd", c.NEmbd}, {"n_layer", c.NLayer}, {"n_head", c.NHead}, {"n_inner", c.Inner()}} {
		if f.v <= 0 || f.v > maxDim {
			return nil, fmt.Errorf("gpt2: %s: %s = %d is out of range", where, f.name, f.v)
		}
	}
	if c.NEmbd%c.NHead != 0 {
		return nil, fmt.Errorf("gpt2: %s: n_embd %d is not a multiple of n_head %d", where, c.NEmbd, c.NHead)
	}
	if c.LayerNormEpsilon < 0 {
		return nil, fmt.Errorf("gpt2: %s: layer_norm_epsilon %g is negative", where, c.LayerNormEpsilon)
	}
	if _, err := tensor.ParseActivation(c.ActivationFunction); err != nil {
		return nil, fmt.Errorf("gpt2: %s: activation_function: %w: %w", where, ErrUnsupported, err)
	}
	if c.AddCrossAttention {
		return nil, fmt.Errorf("gpt2: %s: add_cross_attention: %w: cross-attention (encoder-decoder use) is not implemented", where, ErrUnsupported)
	}
	return c, nil
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (*Config, error) {
	p := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	return ParseConfig(data, p)
}
