package modernbert

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tensor"
)

// Config is config.json of a ModernBERT checkpoint with transformers'
// ModernBertConfig defaults filled in. Both config styles are read: the
// Hub's (global_rope_theta, local_rope_theta, global_attn_every_n_layers)
// and transformers 5.x's (layer_types, rope_parameters per layer type).
type Config struct {
	ModelType              string                     `json:"model_type"`
	Architectures          []string                   `json:"architectures"`
	VocabSize              int                        `json:"vocab_size"`
	HiddenSize             int                        `json:"hidden_size"`
	IntermediateSize       int                        `json:"intermediate_size"`
	NumHiddenLayers        int                        `json:"num_hidden_layers"`
	NumAttentionHeads      int                        `json:"num_attention_heads"`
	HiddenActivation       string                     `json:"hidden_activation"`
	MaxPositionEmbeddings  int                        `json:"max_position_embeddings"`
	NormEps                float64                    `json:"norm_eps"`
	NormBias               bool                       `json:"norm_bias"`
	PadTokenID             int                        `json:"pad_token_id"`
	GlobalRopeTheta        float64                    `json:"global_rope_theta"`
	LocalRopeTheta         float64                    `json:"local_rope_theta"`
	GlobalAttnEveryNLayers int                        `json:"global_attn_every_n_layers"`
	LocalAttention         int                        `json:"local_attention"`
	AttentionBias          bool                       `json:"attention_bias"`
	MLPBias                bool                       `json:"mlp_bias"`
	DecoderBias            bool                       `json:"decoder_bias"`
	ClassifierPooling      string                     `json:"classifier_pooling"`
	ClassifierBias         bool                       `json:"classifier_bias"`
	ClassifierActivation   string                     `json:"classifier_activation"`
	TieWordEmbeddings      bool                       `json:"tie_word_embeddings"`
	LayerTypes             []string                   `json:"layer_types"`
	IsDecoder              bool                       `json:"is_decoder"`
	RopeParameters         map[string]json.RawMessage `json:"rope_parameters"`

	// Task is derived from architectures.
	Task arch.Task `json:"-"`
	// Labels are the class names by id (LABEL_i where id2label names none).
	Labels []string `json:"-"`
	// Global[i] tells whether layer i attends globally (else within the
	// sliding window).
	Global []bool `json:"-"`
	// Act and HeadAct are hidden_activation and classifier_activation parsed.
	Act, HeadAct tensor.Activation `json:"-"`
}

// Sizes a config may ask for: bounded so a hostile file cannot make the
// loader or a forward pass allocate without limit.
const (
	maxWidth     = 1 << 16
	maxLayers    = 1 << 10
	maxVocab     = 1 << 24
	maxPositions = 1 << 18
)

// ParseConfig reads a ModernBERT config.json.
func ParseConfig(hc *hfdir.Config) (*Config, error) {
	if hc.ModelType != "modernbert" {
		return nil, fmt.Errorf("%s: %w: model_type %q (want modernbert)", hc.Path, arch.ErrUnsupported, hc.ModelType)
	}
	// transformers' ModernBertConfig defaults; keys in the file override them.
	c := &Config{
		VocabSize: 50368, HiddenSize: 768, IntermediateSize: 1152, NumHiddenLayers: 22,
		NumAttentionHeads: 12, HiddenActivation: "gelu", MaxPositionEmbeddings: 8192,
		NormEps: 1e-5, PadTokenID: 50283, GlobalRopeTheta: 160000, LocalRopeTheta: 10000,
		GlobalAttnEveryNLayers: 3, LocalAttention: 128, DecoderBias: true,
		ClassifierPooling: "cls", ClassifierActivation: "gelu", TieWordEmbeddings: true,
	}
	if err := hc.Decode(c); err != nil {
		return nil, err
	}
	if err := c.derive(hc); err != nil {
		return nil, fmt.Errorf("%s: %w", hc.Path, err)
	}
	return c, nil
}

func (c *Config) derive(hc *hfdir.Config) error {
	var err error
	if c.Act, err = tensor.ParseActivation(c.HiddenActivation); err != nil {
		return fmt.Errorf("hidden_activation: %w: %v", arch.ErrUnsupported, err)
	}
	if c.HeadAct, err = tensor.ParseActivation(c.ClassifierActivation); err != nil {
		return fmt.Errorf("classifier_activation: %w: %v", arch.ErrUnsupported, err)
	}
	if c.Task, err = taskOf(c.Architectures); err != nil {
		return err
	}
	c.Labels = hc.ID2Label
	if len(c.Labels) == 0 {
		c.Labels = []string{"LABEL_0", "LABEL_1"} // PretrainedConfig's default num_labels 2
	}
	if err := c.validate(); err != nil {
		return err
	}
	if err := c.ropeThetas(); err != nil {
		return err
	}
	return c.layerKinds()
}

func (c *Config) validate() error {
	for _, f := range []struct {
		name   string
		v, max int
	}{{"vocab_size", c.VocabSize, maxVocab}, {"hidden_size", c.HiddenSize, maxWidth},
		{"num_hidden_layers", c.NumHiddenLayers, maxLayers}, {"num_attention_heads", c.NumAttentionHeads, maxWidth},
		{"intermediate_size", c.IntermediateSize, 4 * maxWidth}, {"max_position_embeddings", c.MaxPositionEmbeddings, maxPositions},
		{"local_attention", c.LocalAttention, 2 * maxPositions}} {
		if f.v <= 0 || f.v > f.max {
			return fmt.Errorf("%s is %d, want 1..%d", f.name, f.v, f.max)
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("hidden_size %d is not divisible by num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if c.HeadDim()%2 != 0 {
		return fmt.Errorf("%w: odd head size %d (rotary embeddings rotate halves)", arch.ErrUnsupported, c.HeadDim())
	}
	if c.NormEps <= 0 {
		return fmt.Errorf("norm_eps is %g, want > 0", c.NormEps)
	}
	if c.ClassifierPooling != "cls" && c.ClassifierPooling != "mean" {
		return fmt.Errorf("%w: classifier_pooling %q (want cls or mean)", arch.ErrUnsupported, c.ClassifierPooling)
	}
	if c.IsDecoder {
		return fmt.Errorf("%w: is_decoder true (ModernBERT is an encoder)", arch.ErrUnsupported)
	}
	if c.Task == arch.TaskQuestionAnswering && len(c.Labels) != 2 {
		return fmt.Errorf("question answering with %d labels (the classifier's two outputs are the start and end logits)", len(c.Labels))
	}
	return nil
}

// ropeThetas reads transformers 5.x's rope_parameters.{full_attention,
// sliding_attention} over the Hub's global_rope_theta and local_rope_theta.
func (c *Config) ropeThetas() error {
	for kind, dst := range map[string]*float64{"full_attention": &c.GlobalRopeTheta, "sliding_attention": &c.LocalRopeTheta} {
		raw, ok := c.RopeParameters[kind]
		if !ok || string(raw) == "null" {
			continue
		}
		var p struct {
			RopeType  string   `json:"rope_type"`
			RopeTheta *float64 `json:"rope_theta"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("rope_parameters.%s: %w", kind, err)
		}
		if p.RopeType != "" && p.RopeType != "default" {
			return fmt.Errorf("%w: rope_parameters.%s.rope_type %q (only default rotary embeddings)", arch.ErrUnsupported, kind, p.RopeType)
		}
		if p.RopeTheta != nil {
			*dst = *p.RopeTheta
		}
	}
	if !(c.GlobalRopeTheta > 0) || !(c.LocalRopeTheta > 0) {
		return fmt.Errorf("rope theta %g (global) / %g (local), want > 0", c.GlobalRopeTheta, c.LocalRopeTheta)
	}
	return nil
}

// layerKinds fills Global from layer_types, or else from
// global_attn_every_n_layers: layer i is global iff i % n == 0.
func (c *Config) layerKinds() error {
	c.Global = make([]bool, c.NumHiddenLayers)
	if c.LayerTypes != nil {
		if len(c.LayerTypes) != c.NumHiddenLayers {
			return fmt.Errorf("layer_types has %d entries for %d layers", len(c.LayerTypes), c.NumHiddenLayers)
		}
		for i, t := range c.LayerTypes {
			switch t {
			case "full_attention":
				c.Global[i] = true
			case "sliding_attention":
			default:
				return fmt.Errorf("%w: layer_types[%d] %q (want full_attention or sliding_attention)", arch.ErrUnsupported, i, t)
			}
		}
		return nil
	}
	if c.GlobalAttnEveryNLayers <= 0 {
		return fmt.Errorf("global_attn_every_n_layers is %d, want > 0", c.GlobalAttnEveryNLayers)
	}
	for i := range c.Global {
		c.Global[i] = i%c.GlobalAttnEveryNLayers == 0
	}
	return nil
}

var taskSuffixes = map[string]arch.Task{
	"Model": arch.TaskBase, "ForMaskedLM": arch.TaskMaskedLM,
	"ForSequenceClassification": arch.TaskSequenceClassification,
	"ForTokenClassification":    arch.TaskTokenClassification,
	"ForQuestionAnswering":      arch.TaskQuestionAnswering,
}

// taskOf picks the head from the first architecture (none means the base
// model).
func taskOf(archs []string) (arch.Task, error) {
	if len(archs) == 0 {
		return arch.TaskBase, nil
	}
	if rest, ok := strings.CutPrefix(archs[0], "ModernBert"); ok {
		if t, ok := taskSuffixes[rest]; ok {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w: architecture %s for model_type modernbert", arch.ErrUnsupported, strconv.Quote(archs[0]))
}

// HeadDim is the width of one attention head.
func (c *Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// Window is how far a sliding-window layer looks: position i attends j iff
// |i − j| <= Window.
func (c *Config) Window() int { return c.LocalAttention / 2 }
