// Package llama runs Llama-family decoders from Hugging Face checkpoints:
// `llama` (Llama 2, 3, 3.1, 3.2, TinyLlama, SmolLM2), `mistral` (with its
// sliding window), `qwen2` (q/k/v biases) and `qwen3` (per-head q/k norms,
// explicit head_dim), as causal language models (*ForCausalLM) or as base
// models (LlamaModel, Qwen3Model, ...) that encode a batch into hidden
// states (Qwen3-Embedding's last-token pooling reads them).
//
// The code follows transformers' modeling_llama.py and its Mistral and Qwen
// siblings: RMSNorm, rotary position embeddings (rotate-half layout, every
// rope_type of modeling_rope_utils.py this family uses), grouped-query
// attention and a SwiGLU feed-forward. Weights stay in their stored
// precision (F32, F16 or BF16); the building blocks live in package nn.
package llama

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/tensor"
)

// Config is the part of a Llama-family config.json the model needs, with
// transformers' defaults filled in by ParseConfig.
type Config struct {
	ModelType             string   `json:"model_type"`
	Architectures         []string `json:"architectures"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	NumKeyValueHeads      int      `json:"num_key_value_heads"` // 0 in the file: = heads
	HeadDim               int      `json:"head_dim"`            // 0 in the file: hidden / heads
	RMSNormEps            float64  `json:"rms_norm_eps"`
	HiddenAct             string   `json:"hidden_act"`
	AttentionBias         bool     `json:"attention_bias"`
	MLPBias               bool     `json:"mlp_bias"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	SlidingWindow         int      `json:"sliding_window"` // 0: none
	UseSlidingWindow      *bool    `json:"use_sliding_window"`
	MaxWindowLayers       int      `json:"max_window_layers"`
	LayerTypes            []string `json:"layer_types"`
	// TieWordEmbeddings: the LM head is the token embedding table.
	TieWordEmbeddings bool `json:"-"`
	// Rope is the rotary embedding setting (both config forms).
	Rope nn.RopeConfig `json:"-"`
	// PadTokenID is pad_token_id, or 0.
	PadTokenID int `json:"-"`
}

// ParseConfig reads a Llama-family config.json.
func ParseConfig(hc *hfdir.Config) (*Config, error) {
	c := &Config{}
	// JSON null leaves a field at its zero value, which is what every
	// optional field here means by absence.
	if err := hc.Decode(c); err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	if c.ModelType == "" {
		c.ModelType = hc.ModelType
	}
	if hc.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *hc.TieWordEmbeddings
	}
	if hc.PadTokenID != nil {
		c.PadTokenID = *hc.PadTokenID
	}
	if c.HiddenAct == "" {
		c.HiddenAct = "silu"
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	if c.MaxPositionEmbeddings == 0 {
		c.MaxPositionEmbeddings = 2048
	}
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	bad := func(format string, args ...any) (*Config, error) {
		return nil, fmt.Errorf("llama: %s: "+format, append([]any{hc.Path}, args...)...)
	}
	const limit = 1 << 20
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers}, {"num_attention_heads", c.NumAttentionHeads},
		{"num_key_value_heads", c.NumKeyValueHeads}} {
		if f.v <= 0 || f.v > limit*64 {
			return bad("%s is %d", f.name, f.v)
		}
	}
	if c.HeadDim == 0 {
		if c.HiddenSize%c.NumAttentionHeads != 0 {
			return bad("hidden_size %d is not a multiple of num_attention_heads %d and head_dim is not set", c.HiddenSize, c.NumAttentionHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if c.HeadDim <= 0 || c.HeadDim > 4096 || c.NumAttentionHeads*c.HeadDim > limit {
		return bad("head_dim %d with %d heads is out of range", c.HeadDim, c.NumAttentionHeads)
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return bad("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if c.NumHiddenLayers > 4096 {
		return bad("num_hidden_layers %d is out of range", c.NumHiddenLayers)
	}
	if c.MaxPositionEmbeddings < 0 || c.SlidingWindow < 0 {
		return bad("max_position_embeddings %d / sliding_window %d", c.MaxPositionEmbeddings, c.SlidingWindow)
	}
	if !(c.RMSNormEps > 0 && c.RMSNormEps < 1) {
		return bad("rms_norm_eps %v is out of range", c.RMSNormEps)
	}
	if _, err := tensor.ParseActivation(c.HiddenAct); err != nil {
		return nil, fmt.Errorf("llama: %s: hidden_act: %w", hc.Path, errorsJoinUnsupported(err))
	}
	if c.LayerTypes != nil && len(c.LayerTypes) != c.NumHiddenLayers {
		return bad("layer_types has %d entries for %d layers", len(c.LayerTypes), c.NumHiddenLayers)
	}
	for i, t := range c.LayerTypes {
		if t != "full_attention" && t != "sliding_attention" {
			return nil, fmt.Errorf("llama: %s: layer_types[%d] = %q: %w", hc.Path, i, t, arch.ErrUnsupported)
		}
	}
	var err error
	raw := hc.Raw
	if raw == nil {
		raw = map[string]json.RawMessage{}
	}
	if c.Rope, err = nn.ParseRopeConfig(raw, c.HeadDim, c.MaxPositionEmbeddings); err != nil {
		if strings.HasPrefix(err.Error(), "unsupported") {
			return nil, fmt.Errorf("llama: %s: %v: %w", hc.Path, err, arch.ErrUnsupported)
		}
		return nil, fmt.Errorf("llama: %s: %w", hc.Path, err)
	}
	return c, nil
}

func errorsJoinUnsupported(err error) error { return fmt.Errorf("%v: %w", err, arch.ErrUnsupported) }

// Window returns the sliding window of layer i (0: full attention), as each
// model type decides it: Mistral slides every layer when sliding_window is
// set; Qwen2 and Qwen3 slide the layers layer_types marks (or, without
// layer_types, those from max_window_layers on when use_sliding_window).
func (c *Config) Window(i int) int {
	if c.SlidingWindow <= 0 {
		return 0
	}
	// Qwen2Config and Qwen3Config drop sliding_window unless
	// use_sliding_window is true.
	qwen := c.ModelType == "qwen2" || c.ModelType == "qwen3"
	if qwen && (c.UseSlidingWindow == nil || !*c.UseSlidingWindow) {
		return 0
	}
	if c.LayerTypes != nil {
		if c.LayerTypes[i] == "sliding_attention" {
			return c.SlidingWindow
		}
		return 0
	}
	switch c.ModelType {
	case "mistral":
		return c.SlidingWindow
	case "qwen2", "qwen3":
		if i >= c.MaxWindowLayers {
			return c.SlidingWindow
		}
	}
	return 0
}

// biases reports which attention projections carry a bias: Qwen2 always
// has q/k/v biases and none on o_proj; Llama and Qwen3 follow
// attention_bias for all four; Mistral has none.
func (c *Config) biases() (qkv, o bool) {
	switch c.ModelType {
	case "qwen2":
		return true, false
	case "mistral":
		return false, false
	}
	return c.AttentionBias, c.AttentionBias
}
