package chat

import (
	"encoding/json"
	"fmt"
	"github.com/embrace-go/embrace/hfdir"
	"slices"
	"strings"
)

// specialTokenKeys are the tokenizer_config.json entries transformers puts in a
// template's variables (its special_tokens_map), besides
// additional_special_tokens.
var specialTokenKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// FromTokenizerConfig compiles the chat template of a tokenizer_config.json
// and gives it the config's special tokens (bos_token, eos_token, ...,
// additional_special_tokens) as default variables, as apply_chat_template
// does.
//
// "chat_template" may be a string (the template, whose name is "default") or
// a list of {"name", "template"} objects. name chooses one of a list; an empty
// name means "default", and a missing name is an error that lists the names
// there are. (transformers also picks "tool_use" by itself when tools are
// passed and the list has one: ask for it by name.) A model folder that keeps
// its templates in chat_template.jinja and additional_chat_templates/*.jinja is read by
// LoadDir.
func FromTokenizerConfig(config []byte, name string) (*Template, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, fmt.Errorf("chat: tokenizer_config.json: %w", err)
	}
	return fromConfig(cfg, nil, name)
}

// LoadDir compiles the chat template of a model folder, as
// AutoTokenizer.from_pretrained finds it: chat_template.jinja (the "default"
// template) and additional_chat_templates/NAME.jinja (named ones) when present, else the
// "chat_template" of tokenizer_config.json, whose special tokens the template
// gets in every case. name is as for FromTokenizerConfig.
func LoadDir(dir, name string) (*Template, error) {
	tc, err := hfdir.ReadTokenizerConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return FromFolder(tc, name)
}

// FromFolder is LoadDir over a folder's tokenizer metadata already read by
// package hfdir (nil when the folder has none).
func FromFolder(tc *hfdir.TokenizerConfig, name string) (*Template, error) {
	cfg := map[string]json.RawMessage{}
	files := map[string]string{}
	if tc != nil {
		for k, v := range tc.Raw {
			if k != "chat_template" {
				cfg[k] = v
			}
		}
		for n, src := range tc.ChatTemplates {
			files[n] = src
		}
		if tc.ChatTemplate != "" {
			files["default"] = tc.ChatTemplate
		}
	}
	return fromConfig(cfg, files, name)
}

// fromConfig reads config's templates, lets files (name to source) replace
// them, and compiles the one called name.
func fromConfig(cfg map[string]json.RawMessage, files map[string]string, name string) (*Template, error) {
	special, err := specialTokens(cfg)
	if err != nil {
		return nil, err
	}
	templates := map[string]string{}
	if raw, ok := cfg["chat_template"]; ok && string(raw) != "null" {
		var one string
		var list []struct {
			Name     string `json:"name"`
			Template string `json:"template"`
		}
		switch {
		case json.Unmarshal(raw, &one) == nil:
			templates["default"] = one
		case json.Unmarshal(raw, &list) == nil:
			for _, e := range list {
				templates[e.Name] = e.Template
			}
		default:
			return nil, fmt.Errorf("chat: tokenizer_config.json: chat_template is neither a string nor a list of {name, template}")
		}
	}
	for n, src := range files {
		templates[n] = src
	}
	if len(templates) == 0 {
		return nil, fmt.Errorf("chat: the tokenizer has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja)")
	}
	if name == "" {
		name = "default"
	}
	src, ok := templates[name]
	if !ok {
		names := make([]string, 0, len(templates))
		for n := range templates {
			names = append(names, n)
		}
		slices.Sort(names)
		if name == "default" {
			return nil, fmt.Errorf("chat: the tokenizer has several chat templates and none is named \"default\": choose one of %s", strings.Join(names, ", "))
		}
		return nil, fmt.Errorf("chat: the tokenizer has no chat template named %q: it has %s", name, strings.Join(names, ", "))
	}
	t, err := Parse(name, src)
	if err != nil {
		return nil, err
	}
	t.special = special
	return t, nil
}

// specialTokens reads the special tokens of a tokenizer_config.json: each is a
// string or an AddedToken object {"content": ...}; null ones are left out, as
// transformers leaves them out of special_tokens_map.
func specialTokens(cfg map[string]json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	for _, k := range specialTokenKeys {
		raw, ok := cfg[k]
		if !ok {
			continue
		}
		s, present, err := tokenContent(raw)
		if err != nil {
			return nil, fmt.Errorf("chat: tokenizer_config.json: %s: %w", k, err)
		}
		if present {
			out[k] = s
		}
	}
	if raw, ok := cfg["additional_special_tokens"]; ok && string(raw) != "null" {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("chat: tokenizer_config.json: additional_special_tokens: %w", err)
		}
		tokens := make([]any, 0, len(list))
		for _, e := range list {
			s, present, err := tokenContent(e)
			if err != nil {
				return nil, fmt.Errorf("chat: tokenizer_config.json: additional_special_tokens: %w", err)
			}
			if present {
				tokens = append(tokens, s)
			}
		}
		out["additional_special_tokens"] = tokens
	}
	return out, nil
}

// tokenContent reads a token given as a string, an AddedToken object or null.
func tokenContent(raw json.RawMessage) (string, bool, error) {
	if string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true, nil
	}
	var added struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &added); err != nil || added.Content == nil {
		return "", false, fmt.Errorf("neither a string nor an object with a string \"content\"")
	}
	return *added.Content, true, nil
}
