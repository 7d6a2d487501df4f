package models

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
)

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir, nil); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing config: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("nope"), 0o644)
	if _, err := Load(dir, nil); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad JSON: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "t5"}`), 0o644)
	_, err := Load(dir, nil)
	if err == nil || !strings.Contains(err.Error(), `unsupported: model_type "t5"`) || !errors.Is(err, arch.ErrUnsupported) {
		t.Errorf("unknown type: %v", err)
	}
	// The error lists what is supported.
	if err != nil && !strings.Contains(err.Error(), "gpt2") {
		t.Errorf("unknown type: %v does not list the supported types", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "bert", "architectures": ["BertForMultipleChoice"]}`), 0o644)
	f, err := hfdir.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Task(f); !errors.Is(err, arch.ErrUnsupported) {
		t.Errorf("unknown head: %v", err)
	}
}

// Every model_type is registered once.
func TestRegistryUnique(t *testing.T) {
	seen := map[string]string{}
	for _, r := range registry() {
		if r.Name == "" || len(r.ModelTypes) == 0 || r.Load == nil || r.Task == nil {
			t.Errorf("incomplete registration %+v", r)
		}
		for _, mt := range r.ModelTypes {
			if other, ok := seen[mt]; ok {
				t.Errorf("model_type %q registered by %s and %s", mt, other, r.Name)
			}
			seen[mt] = r.Name
		}
	}
}

func TestCapabilities(t *testing.T) {
	f, err := hfdir.Read("bert/testdata/bert-cls")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCausalLM(f, nil); !errors.Is(err, arch.ErrUnsupported) {
		t.Errorf("an encoder loaded as a causal LM: %v", err)
	}
	e, err := LoadEncoder(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Encode(t.Context(), &arch.EncoderInput{Batch: 1, Seq: 1, InputIDs: []int{1}}, arch.EncodeOptions{}); !errors.Is(err, arch.ErrClosed) {
		t.Errorf("Encode after Close: %v", err)
	}
	if _, err := e.Encode(t.Context(), nil, arch.EncodeOptions{}); err == nil {
		t.Error("nil input accepted")
	}
}

// One sentinel: the standard library's errors.ErrUnsupported finds the
// registry's unsupported errors too.
func TestUnsupportedIsStandard(t *testing.T) {
	err := fmt.Errorf("x: %w: y", arch.ErrUnsupported)
	if !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, arch.ErrUnsupported) || err.Error() != "x: unsupported: y" {
		t.Fatalf("%v", err)
	}
	if errors.Is(errors.New("other"), arch.ErrUnsupported) {
		t.Fatal("an unrelated error matched")
	}
}
