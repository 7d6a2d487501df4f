package hfdir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
)

// TokenizerConfig is tokenizer_config.json with special_tokens_map.json and
// chat_template.jinja folded in: what transformers' AutoTokenizer reads
// besides tokenizer.json.
type TokenizerConfig struct {
	// Path is tokenizer_config.json's path ("" when only the other files
	// exist).
	Path string
	// Class is tokenizer_class (e.g. "BertTokenizer").
	Class string
	// ModelMaxLength is model_max_length; 0 when absent or when it is
	// transformers' "no limit" sentinel (1e30).
	ModelMaxLength int
	// SpecialTokens maps bos_token, eos_token, unk_token, sep_token,
	// pad_token, cls_token and mask_token to their text, from
	// tokenizer_config.json, else special_tokens_map.json. A value may be
	// a string or an AddedToken object; its content is kept.
	SpecialTokens map[string]string
	// ChatTemplate is the default chat template: chat_template.jinja when
	// the folder has it, else tokenizer_config.json's chat_template string,
	// else the template named "default" in its list ("" when there is none).
	ChatTemplate string
	// ChatTemplates holds the named templates of a chat_template list and of
	// the additional_chat_templates folder.
	ChatTemplates map[string]string
	// Raw holds every top-level key of tokenizer_config.json.
	Raw map[string]json.RawMessage
}

// specialTokenKeys are the special-token attributes transformers knows.
var specialTokenKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// ReadTokenizerConfig reads dir/tokenizer_config.json,
// special_tokens_map.json and chat_template.jinja. It returns nil, nil when
// none of them exists.
func ReadTokenizerConfig(dir string) (*TokenizerConfig, error) {
	tc := &TokenizerConfig{SpecialTokens: map[string]string{}, ChatTemplates: map[string]string{}}
	found := false
	path := filepath.Join(dir, "tokenizer_config.json")
	if f, err := readOptional(path); err != nil {
		return nil, err
	} else if f != nil {
		found = true
		tc.Path = path
		if err := tc.parse(f); err != nil {
			return nil, err
		}
	}
	// special_tokens_map.json fills what tokenizer_config.json leaves out.
	if f, err := readOptional(filepath.Join(dir, "special_tokens_map.json")); err != nil {
		return nil, err
	} else if f != nil {
		found = true
		var m map[string]json.RawMessage
		if err := unmarshal(f.Path, f.Data, &m); err != nil {
			return nil, err
		}
		for _, k := range specialTokenKeys {
			if _, ok := tc.SpecialTokens[k]; ok {
				continue
			}
			if s, ok := tokenContent(m[k]); ok {
				tc.SpecialTokens[k] = s
			}
		}
	}
	// chat_template.jinja takes precedence over the JSON string, as in
	// transformers since templates moved to their own file.
	jinja := filepath.Join(dir, "chat_template.jinja")
	if data, err := ReadFile(jinja); err == nil {
		found = true
		tc.ChatTemplate = string(data)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	extra, err := filepath.Glob(filepath.Join(dir, "additional_chat_templates", "*.jinja"))
	if err != nil {
		return nil, err
	}
	for _, p := range extra {
		data, err := ReadFile(p)
		if err != nil {
			return nil, err
		}
		found = true
		name := filepath.Base(p)
		tc.ChatTemplates[name[:len(name)-len(".jinja")]] = string(data)
	}
	if tc.ChatTemplate == "" {
		tc.ChatTemplate = tc.ChatTemplates["default"]
	}
	if !found {
		return nil, nil
	}
	return tc, nil
}

func (tc *TokenizerConfig) parse(f *File) error {
	if err := unmarshal(f.Path, f.Data, &tc.Raw); err != nil {
		return err
	}
	var c struct {
		Class          string          `json:"tokenizer_class"`
		ModelMaxLength float64         `json:"model_max_length"`
		ChatTemplate   json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(f.Data, &c); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	tc.Class = c.Class
	// transformers writes int(1e30) for "no limit".
	if c.ModelMaxLength > 0 && c.ModelMaxLength < 1e9 {
		tc.ModelMaxLength = int(c.ModelMaxLength)
	}
	for _, k := range specialTokenKeys {
		if s, ok := tokenContent(tc.Raw[k]); ok {
			tc.SpecialTokens[k] = s
		}
	}
	if len(c.ChatTemplate) > 0 && string(c.ChatTemplate) != "null" {
		var one string
		if err := json.Unmarshal(c.ChatTemplate, &one); err == nil {
			tc.ChatTemplate = one
		} else {
			var list []struct {
				Name     string `json:"name"`
				Template string `json:"template"`
			}
			if err := json.Unmarshal(c.ChatTemplate, &list); err != nil {
				return fmt.Errorf("%s: chat_template is neither a string nor a list of {name, template}", f.Path)
			}
			for _, t := range list {
				tc.ChatTemplates[t.Name] = t.Template
			}
		}
	}
	return nil
}

// tokenContent reads a special token given as a string or as an AddedToken
// object ({"content": ...}).
func tokenContent(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Content != nil {
		return *obj.Content, true
	}
	return "", false
}

// Template returns the chat template to use: the named one, or the default
// when name is "". The error lists the names available.
func (tc *TokenizerConfig) Template(name string) (string, error) {
	if tc == nil {
		return "", errors.New("the folder has no tokenizer_config.json or chat_template.jinja, so no chat template")
	}
	if name == "" {
		if tc.ChatTemplate != "" {
			return tc.ChatTemplate, nil
		}
		if len(tc.ChatTemplates) == 0 {
			return "", fmt.Errorf("%s: no chat_template", tc.where())
		}
		return "", fmt.Errorf("%s: no default chat template; named templates: %v", tc.where(), tc.templateNames())
	}
	if t, ok := tc.ChatTemplates[name]; ok {
		return t, nil
	}
	return "", fmt.Errorf("%s: no chat template named %q; named templates: %v", tc.where(), name, tc.templateNames())
}

func (tc *TokenizerConfig) where() string {
	if tc.Path != "" {
		return tc.Path
	}
	return "tokenizer_config.json"
}

func (tc *TokenizerConfig) templateNames() []string {
	names := make([]string, 0, len(tc.ChatTemplates))
	for k := range tc.ChatTemplates {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Bool returns a boolean field of tokenizer_config.json, or def.
func (tc *TokenizerConfig) Bool(key string, def bool) bool {
	if tc == nil {
		return def
	}
	raw, ok := tc.Raw[key]
	if !ok {
		return def
	}
	var v bool
	if json.Unmarshal(raw, &v) != nil {
		return def
	}
	return v
}
