package hfdir

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// SentenceTransformers is the layout sentence-transformers saves: the
// module list, the transformer's sentence_bert_config.json and the
// folder's config_sentence_transformers.json.
type SentenceTransformers struct {
	// Modules is modules.json in order.
	Modules []Module
	// MaxSeqLength is sentence_bert_config.json's max_seq_length (0 when
	// absent); DoLowerCase its do_lower_case.
	MaxSeqLength int
	DoLowerCase  bool
	// Prompts are config_sentence_transformers.json's named prompts, and
	// DefaultPromptName its default_prompt_name.
	Prompts           map[string]string
	DefaultPromptName string
	// SimilarityFn is config_sentence_transformers.json's
	// similarity_fn_name ("" when absent: cosine).
	SimilarityFn string
}

// Module is one entry of modules.json.
type Module struct {
	Idx  int
	Name string
	// Path is the module's folder relative to the model folder ("" for the
	// transformer at the root).
	Path string
	// Type is the Python class path, e.g.
	// "sentence_transformers.models.Pooling"; Kind is its last part.
	Type, Kind string
	// Pooling is the module's config.json when Kind is "Pooling".
	Pooling *Pooling
}

// Pooling is a Pooling module's config.json, in both forms
// sentence-transformers writes: the classic pooling_mode_* flags and the
// newer pooling_mode string or list.
type Pooling struct {
	Path string
	// Modes are the pooling modes in sentence-transformers' fixed
	// concatenation order, with its spellings normalised to "cls", "max",
	// "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken".
	Modes []string
	// Dim is word_embedding_dimension (or embedding_dimension); 0 when
	// absent.
	Dim int
	// IncludePrompt is include_prompt (default true).
	IncludePrompt bool
}

// ReadSentenceTransformers reads modules.json and the configs it names; nil,
// nil when the folder has no modules.json.
func ReadSentenceTransformers(dir string) (*SentenceTransformers, error) {
	f, err := readOptional(filepath.Join(dir, "modules.json"))
	if err != nil || f == nil {
		return nil, err
	}
	var mods []struct {
		Idx  int    `json:"idx"`
		Name string `json:"name"`
		Path string `json:"path"`
		Type string `json:"type"`
	}
	if err := unmarshal(f.Path, f.Data, &mods); err != nil {
		return nil, err
	}
	st := &SentenceTransformers{}
	transformerPath := ""
	for i, m := range mods {
		if strings.Contains(m.Path, "..") || filepath.IsAbs(m.Path) {
			return nil, fmt.Errorf("%s: module %d: path %q leaves the folder", f.Path, i, m.Path)
		}
		mod := Module{Idx: m.Idx, Name: m.Name, Path: m.Path, Type: m.Type, Kind: m.Type[strings.LastIndex(m.Type, ".")+1:]}
		switch mod.Kind {
		case "Pooling":
			p, err := readPooling(filepath.Join(dir, m.Path, "config.json"))
			if err != nil {
				return nil, err
			}
			mod.Pooling = p
		case "Transformer":
			transformerPath = m.Path
		}
		st.Modules = append(st.Modules, mod)
	}
	if sb, err := readOptional(filepath.Join(dir, transformerPath, "sentence_bert_config.json")); err != nil {
		return nil, err
	} else if sb != nil {
		var c struct {
			MaxSeqLength *int `json:"max_seq_length"`
			DoLowerCase  bool `json:"do_lower_case"`
		}
		if err := unmarshal(sb.Path, sb.Data, &c); err != nil {
			return nil, err
		}
		if c.MaxSeqLength != nil && *c.MaxSeqLength > 0 {
			st.MaxSeqLength = *c.MaxSeqLength
		}
		st.DoLowerCase = c.DoLowerCase
	}
	if cs, err := readOptional(filepath.Join(dir, "config_sentence_transformers.json")); err != nil {
		return nil, err
	} else if cs != nil {
		var c struct {
			Prompts           map[string]string `json:"prompts"`
			DefaultPromptName *string           `json:"default_prompt_name"`
			SimilarityFn      *string           `json:"similarity_fn_name"`
		}
		if err := unmarshal(cs.Path, cs.Data, &c); err != nil {
			return nil, err
		}
		st.Prompts = c.Prompts
		if c.DefaultPromptName != nil {
			st.DefaultPromptName = *c.DefaultPromptName
		}
		if c.SimilarityFn != nil {
			st.SimilarityFn = *c.SimilarityFn
		}
	}
	return st, nil
}

// The pooling modes, in sentence-transformers' concatenation order.
var poolingOrder = []string{"cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"}

func readPooling(path string) (*Pooling, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c struct {
		PoolingMode   json.RawMessage `json:"pooling_mode"`
		Dim           int             `json:"embedding_dimension"`
		WordDim       int             `json:"word_embedding_dimension"`
		CLS           bool            `json:"pooling_mode_cls_token"`
		Max           bool            `json:"pooling_mode_max_tokens"`
		Mean          bool            `json:"pooling_mode_mean_tokens"`
		MeanSqrt      bool            `json:"pooling_mode_mean_sqrt_len_tokens"`
		WeightedMean  bool            `json:"pooling_mode_weightedmean_tokens"`
		LastToken     bool            `json:"pooling_mode_lasttoken"`
		IncludePrompt *bool           `json:"include_prompt"`
	}
	if err := unmarshal(path, data, &c); err != nil {
		return nil, err
	}
	var names []string
	if len(c.PoolingMode) > 0 && string(c.PoolingMode) != "null" {
		var one string
		if err := json.Unmarshal(c.PoolingMode, &one); err == nil {
			names = []string{one}
		} else if err := json.Unmarshal(c.PoolingMode, &names); err != nil {
			return nil, fmt.Errorf("%s: pooling_mode is neither a string nor a list of strings", path)
		}
	} else {
		for i, on := range []bool{c.CLS, c.Max, c.Mean, c.MeanSqrt, c.WeightedMean, c.LastToken} {
			if on {
				names = append(names, poolingOrder[i])
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no pooling mode is set", path)
	}
	set := map[string]bool{}
	for _, n := range names {
		switch n {
		case "cls", "cls_token":
			set["cls"] = true
		case "max", "max_tokens":
			set["max"] = true
		case "mean", "mean_tokens":
			set["mean"] = true
		case "mean_sqrt_len_tokens", "mean_sqrt_len":
			set["mean_sqrt_len_tokens"] = true
		case "weightedmean", "weightedmean_tokens":
			set["weightedmean"] = true
		case "lasttoken":
			set["lasttoken"] = true
		default:
			return nil, fmt.Errorf("%s: unsupported: pooling mode %q", path, n)
		}
	}
	p := &Pooling{Path: path, Dim: max(c.Dim, c.WordDim), IncludePrompt: c.IncludePrompt == nil || *c.IncludePrompt}
	for _, n := range poolingOrder {
		if set[n] {
			p.Modes = append(p.Modes, n)
		}
	}
	return p, nil
}

// Transformer returns the folder of the Transformer module (the model
// folder itself for the usual path ""), or "" when modules.json has none.
func (st *SentenceTransformers) Transformer() (Module, bool) {
	for _, m := range st.Modules {
		if m.Kind == "Transformer" {
			return m, true
		}
	}
	return Module{}, false
}
