// Package models loads a Hugging Face checkpoint folder as a user downloads
// it: config.json's model_type picks the architecture package from the
// registry, and its architectures list picks the head. The loaded model is
// used through the capability interfaces of package arch (arch.Encoder,
// arch.CausalLM), never through its concrete type.
//
// Adding an architecture is a new package under models/ and one line in
// registry.go; see docs/adding-an-architecture.md.
package models

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
)

// Lookup returns the registration that loads a model_type.
func Lookup(modelType string) (arch.Registration, bool) {
	for _, r := range registry() {
		if slices.Contains(r.ModelTypes, modelType) {
			return r, true
		}
	}
	return arch.Registration{}, false
}

// ModelTypes lists every model_type value some registered package loads,
// sorted.
func ModelTypes() []string {
	var all []string
	for _, r := range registry() {
		all = append(all, r.ModelTypes...)
	}
	slices.Sort(all)
	return all
}

// registration finds the package for a folder's config.json, or an error
// naming the file and the supported types.
func registration(hc *hfdir.Config) (arch.Registration, error) {
	if hc.ModelType == "" {
		return arch.Registration{}, fmt.Errorf("%s: no model_type", hc.Path)
	}
	r, ok := Lookup(hc.ModelType)
	if !ok {
		return arch.Registration{}, fmt.Errorf("%s: %w: model_type %q (supported: %s)",
			hc.Path, arch.ErrUnsupported, hc.ModelType, strings.Join(ModelTypes(), ", "))
	}
	return r, nil
}

// Task reads the head of a folder's model from config.json without loading
// any weights.
func Task(f *hfdir.Folder) (arch.Task, error) {
	hc, err := f.RequireConfig()
	if err != nil {
		return "", err
	}
	r, err := registration(hc)
	if err != nil {
		return "", err
	}
	return r.Task(hc)
}

// Load loads the model in dir with opt (nil: the defaults).
func Load(dir string, opt *arch.LoadOptions) (arch.Model, error) {
	f, err := hfdir.Read(dir)
	if err != nil {
		return nil, err
	}
	return LoadFolder(f, opt)
}

// LoadFolder loads the model of a folder whose metadata is already read.
func LoadFolder(f *hfdir.Folder, opt *arch.LoadOptions) (arch.Model, error) {
	hc, err := f.RequireConfig()
	if err != nil {
		return nil, err
	}
	r, err := registration(hc)
	if err != nil {
		return nil, err
	}
	var o arch.LoadOptions
	if opt != nil {
		o = *opt
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return r.Load(f, o)
}

// LoadEncoder loads a folder whose model is an arch.Encoder.
func LoadEncoder(f *hfdir.Folder, opt *arch.LoadOptions) (arch.Encoder, error) {
	m, err := LoadFolder(f, opt)
	if err != nil {
		return nil, err
	}
	e, ok := m.(arch.Encoder)
	if !ok {
		m.Close()
		return nil, notA(f, m, "an encoder")
	}
	return e, nil
}

// LoadCausalLM loads a folder whose model is an arch.CausalLM.
func LoadCausalLM(f *hfdir.Folder, opt *arch.LoadOptions) (arch.CausalLM, error) {
	m, err := LoadFolder(f, opt)
	if err != nil {
		return nil, err
	}
	lm, ok := m.(arch.CausalLM)
	if !ok {
		m.Close()
		return nil, notA(f, m, "a causal language model")
	}
	return lm, nil
}

func notA(f *hfdir.Folder, m arch.Model, what string) error {
	info := m.Info()
	return fmt.Errorf("%s: %w: the model (model_type %q, architectures %v, head %s) is not %s",
		f.Config.Path, arch.ErrUnsupported, info.ModelType, info.Architectures, info.Task, what)
}

// IsUnsupported reports whether err says something is not supported.
func IsUnsupported(err error) bool { return errors.Is(err, arch.ErrUnsupported) }
