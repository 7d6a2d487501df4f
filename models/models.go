// Package models loads a Hugging Face checkpoint folder as a user downloads
// it: config.json's model_type picks the architecture (BERT family or GPT-2)
// and its architectures list picks the head.
package models

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/embrace-go/embrace/models/bert"
	"github.com/embrace-go/embrace/models/gpt2"
)

// Info is what config.json says about the model before it is loaded.
type Info struct {
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures"`
}

// Inspect reads dir/config.json's model_type and architectures.
func Inspect(dir string) (*Info, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w", path, err)
	}
	if info.ModelType == "" {
		return nil, fmt.Errorf("%s: no model_type", path)
	}
	return &info, nil
}

// IsEncoder reports whether the model type is one the bert package loads.
func (i *Info) IsEncoder() bool {
	switch i.ModelType {
	case "bert", "roberta", "xlm-roberta", "camembert", "distilbert":
		return true
	}
	return false
}

// Model is a loaded checkpoint: a *bert.Model or a *gpt2.Model.
type Model interface {
	Close() error
}

// Load loads the folder with the package its model_type names.
func Load(dir string) (Model, error) {
	info, err := Inspect(dir)
	if err != nil {
		return nil, err
	}
	switch {
	case info.IsEncoder():
		return bert.Load(dir)
	case info.ModelType == "gpt2":
		return gpt2.Load(dir)
	}
	return nil, fmt.Errorf("%s: unsupported: model_type %q", filepath.Join(dir, "config.json"), info.ModelType)
}

// LoadEncoder loads a BERT, RoBERTa or DistilBERT folder, with an error
// naming the model type when the folder holds something else.
func LoadEncoder(dir string) (*bert.Model, error) {
	info, err := Inspect(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsEncoder() {
		return nil, fmt.Errorf("%s: unsupported: model_type %q is not a BERT-family encoder", filepath.Join(dir, "config.json"), info.ModelType)
	}
	return bert.Load(dir)
}
