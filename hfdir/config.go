package hfdir

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
)

// Config is config.json: the fields every transformers PretrainedConfig has,
// typed, and the whole file for the architecture's own fields (Decode).
type Config struct {
	// Path is the file's path, for error messages.
	Path string
	// ModelType is model_type, the key the architecture registry looks up.
	ModelType string
	// Architectures is the architectures list (e.g. "BertForMaskedLM"): it
	// names the head.
	Architectures []string
	// ID2Label is id2label as a slice indexed by label id (nil when the file
	// has none). Ids missing from the map are named LABEL_i, as transformers
	// names them.
	ID2Label []string
	// Label2ID is label2id as the file gives it (nil when absent).
	Label2ID map[string]int
	// TieWordEmbeddings is tie_word_embeddings; nil when the file leaves it
	// to the architecture's default.
	TieWordEmbeddings *bool
	// BOSTokenID, PadTokenID are the ids when set (nil for null or absent);
	// EOSTokenIDs is eos_token_id as a list (it may be one id or a list).
	BOSTokenID, PadTokenID *int
	EOSTokenIDs            []int
	// Dtype is torch_dtype (or transformers 5's dtype): the precision the
	// checkpoint was saved in, informational.
	Dtype string

	// Raw holds every top-level key.
	Raw map[string]json.RawMessage
	// Data is the file's bytes.
	Data []byte
}

// ReadConfig reads dir/config.json.
func ReadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data, path)
}

// ParseConfig parses the contents of a config.json; path names it in errors.
func ParseConfig(data []byte, path string) (*Config, error) {
	c := &Config{Path: path, Data: data}
	if err := unmarshal(path, data, &c.Raw); err != nil {
		return nil, err
	}
	var common struct {
		ModelType     string            `json:"model_type"`
		Architectures []string          `json:"architectures"`
		ID2Label      map[string]string `json:"id2label"`
		Label2ID      map[string]int    `json:"label2id"`
		NumLabels     int               `json:"num_labels"`
		Tie           *bool             `json:"tie_word_embeddings"`
		BOS           *int              `json:"bos_token_id"`
		Pad           *int              `json:"pad_token_id"`
		EOS           json.RawMessage   `json:"eos_token_id"`
		TorchDtype    string            `json:"torch_dtype"`
		Dtype         string            `json:"dtype"`
	}
	if err := json.Unmarshal(data, &common); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.ModelType, c.Architectures = common.ModelType, common.Architectures
	c.Label2ID, c.TieWordEmbeddings = common.Label2ID, common.Tie
	c.BOSTokenID, c.PadTokenID = common.BOS, common.Pad
	c.Dtype = common.Dtype
	if c.Dtype == "" {
		c.Dtype = common.TorchDtype
	}
	eos, err := IntOrList(common.EOS)
	if err != nil {
		return nil, fmt.Errorf("%s: eos_token_id: %w", path, err)
	}
	c.EOSTokenIDs = eos
	labels, err := labelsFrom(common.ID2Label, common.NumLabels)
	if err != nil {
		return nil, fmt.Errorf("%s: id2label: %w", path, err)
	}
	c.ID2Label = labels
	return c, nil
}

// maxLabels bounds the label count a config can ask for.
const maxLabels = 1 << 20

// labelsFrom turns id2label into a slice, filling gaps up to num_labels with
// LABEL_i.
func labelsFrom(m map[string]string, numLabels int) ([]string, error) {
	if len(m) == 0 && numLabels <= 0 {
		return nil, nil
	}
	n := max(numLabels, 0)
	ids := make(map[int]string, len(m))
	for k, v := range m {
		id, err := strconv.Atoi(k)
		if err != nil || id < 0 || id >= maxLabels {
			return nil, fmt.Errorf("key %q is not a label id", k)
		}
		ids[id] = v
		n = max(n, id+1)
	}
	if n > maxLabels {
		return nil, fmt.Errorf("%d labels exceed the limit of %d", n, maxLabels)
	}
	out := make([]string, n)
	for i := range out {
		if v, ok := ids[i]; ok {
			out[i] = v
		} else {
			out[i] = "LABEL_" + strconv.Itoa(i)
		}
	}
	return out, nil
}

// IntOrList reads a JSON value that is an integer, a list of integers, or
// null/absent (nil).
func IntOrList(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%s is neither an integer nor a list of integers", raw)
	}
	return list, nil
}

// Decode unmarshals the whole file into v: an architecture's own config
// struct.
func (c *Config) Decode(v any) error {
	return unmarshal(c.Path, c.Data, v)
}

// Has reports whether the file has the key and it is not null.
func (c *Config) Has(key string) bool {
	raw, ok := c.Raw[key]
	return ok && string(raw) != "null"
}

// Int returns an integer field, or def when it is absent or null.
func (c *Config) Int(key string, def int) (int, error) {
	raw, ok := c.Raw[key]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%s: %s: %s is not an integer", c.Path, key, raw)
	}
	return v, nil
}

// Float returns a number field, or def when it is absent or null.
func (c *Config) Float(key string, def float64) (float64, error) {
	raw, ok := c.Raw[key]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%s: %s: %s is not a number", c.Path, key, raw)
	}
	return v, nil
}

// String returns a string field, or def when it is absent or null.
func (c *Config) String(key string, def string) (string, error) {
	raw, ok := c.Raw[key]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("%s: %s: %s is not a string", c.Path, key, raw)
	}
	return v, nil
}

// HasArchitecture reports whether architectures lists name.
func (c *Config) HasArchitecture(name string) bool { return slices.Contains(c.Architectures, name) }

// LabelID returns the id of a label by name (from label2id, else id2label).
func (c *Config) LabelID(name string) (int, bool) {
	if id, ok := c.Label2ID[name]; ok {
		return id, true
	}
	i := slices.Index(c.ID2Label, name)
	return i, i >= 0
}

// Keys returns the file's top-level keys, sorted.
func (c *Config) Keys() []string {
	keys := make([]string, 0, len(c.Raw))
	for k := range c.Raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
