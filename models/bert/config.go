package bert

import (
	"encoding/json"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/embrace-go/embrace/tensor"
)

// Family is the kind of encoder a checkpoint holds. The three share one
// implementation: they differ in weight names, position ids and heads.
type Family string

// The supported families, named by config.json's model_type.
const (
	BERT       Family = "bert"
	RoBERTa    Family = "roberta" // also xlm-roberta and camembert, which share its modelling code
	DistilBERT Family = "distilbert"
)

// Config is config.json of a BERT, RoBERTa or DistilBERT checkpoint, with
// Hugging Face's defaults filled in. DistilBERT's own key names (dim,
// n_layers, ...) are read into the BERT-named fields.
type Config struct {
	ModelType             string            `json:"model_type"`
	Architectures         []string          `json:"architectures"`
	VocabSize             int               `json:"vocab_size"`
	HiddenSize            int               `json:"hidden_size"`
	NumHiddenLayers       int               `json:"num_hidden_layers"`
	NumAttentionHeads     int               `json:"num_attention_heads"`
	IntermediateSize      int               `json:"intermediate_size"`
	HiddenAct             string            `json:"hidden_act"`
	MaxPositionEmbeddings int               `json:"max_position_embeddings"`
	TypeVocabSize         int               `json:"type_vocab_size"`
	LayerNormEps          float64           `json:"layer_norm_eps"`
	PadTokenID            int               `json:"pad_token_id"`
	PositionEmbeddingType string            `json:"position_embedding_type"`
	TieWordEmbeddings     bool              `json:"tie_word_embeddings"`
	ID2Label              map[string]string `json:"id2label"`
	NumLabels             int               `json:"num_labels"`
	ProblemType           string            `json:"problem_type"`
	IsDecoder             bool              `json:"is_decoder"`

	// Family and Task are derived from model_type and architectures.
	Family Family    `json:"-"`
	Task   arch.Task `json:"-"`
	// Labels is id2label as a slice (LABEL_i where the config names none).
	Labels []string `json:"-"`
	// Act is hidden_act parsed.
	Act tensor.Activation `json:"-"`
}

// distilConfig holds DistilBERT's key names.
type distilConfig struct {
	Dim        *int    `json:"dim"`
	NLayers    *int    `json:"n_layers"`
	NHeads     *int    `json:"n_heads"`
	HiddenDim  *int    `json:"hidden_dim"`
	Activation *string `json:"activation"`
	Sinusoidal bool    `json:"sinusoidal_pos_embds"`
}

// ReadConfig reads and validates dir/config.json.
func ReadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses and validates the contents of a config.json.
func ParseConfig(data []byte) (*Config, error) {
	var probe struct {
		ModelType string `json:"model_type"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	// Defaults of transformers' BertConfig / RobertaConfig / DistilBertConfig;
	// keys present in the file override them.
	c := &Config{
		VocabSize: 30522, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12,
		IntermediateSize: 3072, HiddenAct: "gelu", MaxPositionEmbeddings: 512,
		TypeVocabSize: 2, LayerNormEps: 1e-12, PositionEmbeddingType: "absolute",
		TieWordEmbeddings: true,
	}
	switch probe.ModelType {
	case "bert":
		c.Family = BERT
	case "roberta", "xlm-roberta", "camembert":
		c.Family = RoBERTa
		c.PadTokenID = 1
		c.VocabSize = 50265
	case "distilbert":
		c.Family = DistilBERT
	case "":
		return nil, fmt.Errorf("no model_type")
	default:
		return nil, fmt.Errorf("%w: model_type %q (want bert, roberta, xlm-roberta, camembert or distilbert)", arch.ErrUnsupported, probe.ModelType)
	}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("bad field: %w", err)
	}
	if c.Family == DistilBERT {
		var d distilConfig
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("bad field: %w", err)
		}
		set := func(dst *int, src *int, def int) {
			*dst = def
			if src != nil {
				*dst = *src
			}
		}
		set(&c.HiddenSize, d.Dim, 768)
		set(&c.NumHiddenLayers, d.NLayers, 6)
		set(&c.NumAttentionHeads, d.NHeads, 12)
		set(&c.IntermediateSize, d.HiddenDim, 3072)
		c.HiddenAct = "gelu"
		if d.Activation != nil {
			c.HiddenAct = *d.Activation
		}
		c.TypeVocabSize = 0
		c.LayerNormEps = 1e-12 // fixed in DistilBERT's modelling code
	}
	var err error
	if c.Act, err = tensor.ParseActivation(c.HiddenAct); err != nil {
		return nil, err
	}
	if c.Task, err = taskOf(c.Family, c.Architectures); err != nil {
		return nil, err
	}
	if err := c.labels(); err != nil {
		return nil, err
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	pos := func(name string, v int) error {
		if v <= 0 {
			return fmt.Errorf("%s is %d, want > 0", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads}, {"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings}} {
		if err := pos(f.name, f.v); err != nil {
			return err
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("hidden size %d is not divisible by the number of attention heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if c.TypeVocabSize < 0 {
		return fmt.Errorf("type_vocab_size is %d", c.TypeVocabSize)
	}
	if c.PositionEmbeddingType != "absolute" && c.PositionEmbeddingType != "" {
		return fmt.Errorf("%w: position_embedding_type %q", arch.ErrUnsupported, c.PositionEmbeddingType)
	}
	if c.IsDecoder {
		return fmt.Errorf("%w: is_decoder true (only encoders are supported)", arch.ErrUnsupported)
	}
	if c.LayerNormEps <= 0 {
		return fmt.Errorf("layer_norm_eps is %g, want > 0", c.LayerNormEps)
	}
	if c.Family == RoBERTa && (c.PadTokenID < 0 || c.PadTokenID+1 >= c.MaxPositionEmbeddings) {
		return fmt.Errorf("pad_token_id %d leaves no positions below max_position_embeddings %d", c.PadTokenID, c.MaxPositionEmbeddings)
	}
	return nil
}

// labels fills Labels from id2label (or num_labels), checking the ids are
// 0..n-1.
func (c *Config) labels() error {
	n := len(c.ID2Label)
	if n == 0 {
		n = c.NumLabels
		if n == 0 {
			n = 2 // transformers' PretrainedConfig default
		}
		c.Labels = make([]string, n)
		for i := range c.Labels {
			c.Labels[i] = "LABEL_" + strconv.Itoa(i)
		}
		return nil
	}
	c.Labels = make([]string, n)
	keys := make([]string, 0, n)
	for k := range c.ID2Label {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= n {
			return fmt.Errorf("id2label key %q is not an id in 0..%d", k, n-1)
		}
		c.Labels[i] = c.ID2Label[k]
	}
	return nil
}

var familyPrefixes = map[string]Family{
	"Bert": BERT, "Roberta": RoBERTa, "XLMRoberta": RoBERTa, "Camembert": RoBERTa, "DistilBert": DistilBERT,
}

var taskSuffixes = map[string]arch.Task{
	"Model": arch.TaskBase, "ForMaskedLM": arch.TaskMaskedLM, "ForSequenceClassification": arch.TaskSequenceClassification,
	"ForTokenClassification": arch.TaskTokenClassification, "ForQuestionAnswering": arch.TaskQuestionAnswering,
	"ForPreTraining": arch.TaskPreTraining,
}

// taskOf picks the head from the first architecture (none means the base model).
func taskOf(f Family, archs []string) (arch.Task, error) {
	if len(archs) == 0 {
		return arch.TaskBase, nil
	}
	a := archs[0]
	for p, fam := range familyPrefixes {
		rest, ok := strings.CutPrefix(a, p)
		if !ok || fam != f {
			continue
		}
		if t, ok := taskSuffixes[rest]; ok {
			if t == arch.TaskPreTraining && f != BERT {
				break
			}
			return t, nil
		}
	}
	return "", fmt.Errorf("%w: architecture %q for model_type %s", arch.ErrUnsupported, a, f)
}

// HeadDim is the width of one attention head.
func (c *Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }
