package mpnet

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tensor"
)

// Config is config.json of an MPNet checkpoint with transformers'
// MPNetConfig defaults filled in.
type Config struct {
	ModelType             string   `json:"model_type"`
	Architectures         []string `json:"architectures"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	IntermediateSize      int      `json:"intermediate_size"`
	HiddenAct             string   `json:"hidden_act"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	LayerNormEps          float64  `json:"layer_norm_eps"`
	PadTokenID            int      `json:"pad_token_id"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	// RelativeAttentionNumBuckets is the number of rows of the shared
	// relative position bias table. The bucket function itself always uses
	// 32 buckets (see RelativeBuckets), as modeling_mpnet.py does.
	RelativeAttentionNumBuckets int  `json:"relative_attention_num_buckets"`
	IsDecoder                   bool `json:"is_decoder"`

	// Task is derived from architectures.
	Task arch.Task `json:"-"`
	// Labels are the class names by id (LABEL_i where id2label names none).
	Labels []string `json:"-"`
	// Act is hidden_act parsed.
	Act tensor.Activation `json:"-"`
}

// PaddingIdx is the padding index MPNetEmbeddings hard-codes for position
// ids (whatever pad_token_id says): position ids start at PaddingIdx + 1.
const PaddingIdx = 1

// RelativeBuckets and RelativeMaxDistance are the bucket function's
// parameters, fixed in modeling_mpnet.py's compute_position_bias whatever
// the config says.
const (
	RelativeBuckets     = 32
	RelativeMaxDistance = 128
)

// Sizes a config may ask for: bounded so a hostile file cannot make the
// loader allocate without limit before the checkpoint is checked.
const (
	maxWidth     = 1 << 16
	maxLayers    = 1 << 10
	maxVocab     = 1 << 24
	maxPositions = 1 << 20
)

// ParseConfig reads an MPNet config.json.
func ParseConfig(hc *hfdir.Config) (*Config, error) {
	if hc.ModelType != "mpnet" {
		return nil, fmt.Errorf("%s: %w: model_type %q (want mpnet)", hc.Path, arch.ErrUnsupported, hc.ModelType)
	}
	// transformers' MPNetConfig defaults; keys in the file override them.
	c := &Config{
		VocabSize: 30527, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12,
		IntermediateSize: 3072, HiddenAct: "gelu", MaxPositionEmbeddings: 514,
		LayerNormEps: 1e-12, PadTokenID: 1, TieWordEmbeddings: true,
		RelativeAttentionNumBuckets: 32,
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
	if c.Act, err = tensor.ParseActivation(c.HiddenAct); err != nil {
		return fmt.Errorf("hidden_act: %w: %v", arch.ErrUnsupported, err)
	}
	if c.Task, err = taskOf(c.Architectures); err != nil {
		return err
	}
	c.Labels = hc.ID2Label
	if len(c.Labels) == 0 {
		c.Labels = []string{"LABEL_0", "LABEL_1"} // PretrainedConfig's default num_labels 2
	}
	return c.validate()
}

func (c *Config) validate() error {
	for _, f := range []struct {
		name   string
		v, max int
	}{{"vocab_size", c.VocabSize, maxVocab}, {"hidden_size", c.HiddenSize, maxWidth},
		{"num_hidden_layers", c.NumHiddenLayers, maxLayers}, {"num_attention_heads", c.NumAttentionHeads, maxWidth},
		{"intermediate_size", c.IntermediateSize, 4 * maxWidth}, {"max_position_embeddings", c.MaxPositionEmbeddings, maxPositions},
		{"relative_attention_num_buckets", c.RelativeAttentionNumBuckets, maxWidth}} {
		if f.v <= 0 || f.v > f.max {
			return fmt.Errorf("%s is %d, want 1..%d", f.name, f.v, f.max)
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("hidden_size %d is not divisible by num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if c.RelativeAttentionNumBuckets < RelativeBuckets {
		// The bucket function yields ids up to 31 whatever the table size;
		// transformers fails with an index error on such a model.
		return fmt.Errorf("%w: relative_attention_num_buckets %d (modeling_mpnet.py indexes %d buckets)",
			arch.ErrUnsupported, c.RelativeAttentionNumBuckets, RelativeBuckets)
	}
	if c.MaxPositionEmbeddings <= PaddingIdx+1 {
		return fmt.Errorf("max_position_embeddings %d leaves no positions after the padding index %d", c.MaxPositionEmbeddings, PaddingIdx)
	}
	if c.LayerNormEps <= 0 {
		return fmt.Errorf("layer_norm_eps is %g, want > 0", c.LayerNormEps)
	}
	if c.IsDecoder {
		return fmt.Errorf("%w: is_decoder true (MPNet is an encoder)", arch.ErrUnsupported)
	}
	if len(c.Labels) > maxVocab {
		return fmt.Errorf("%d labels", len(c.Labels))
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
	if rest, ok := strings.CutPrefix(archs[0], "MPNet"); ok {
		if t, ok := taskSuffixes[rest]; ok {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w: architecture %s for model_type mpnet", arch.ErrUnsupported, strconv.Quote(archs[0]))
}

// HeadDim is the width of one attention head.
func (c *Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// MaxPositions is the longest sequence the position table covers: the table
// less the padding offset (position ids start at PaddingIdx + 1).
func (c *Config) MaxPositions() int { return c.MaxPositionEmbeddings - PaddingIdx - 1 }
