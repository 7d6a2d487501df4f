package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Inspect(dir); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing config: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("nope"), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad JSON: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "t5"}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), `unsupported: model_type "t5"`) {
		t.Errorf("unknown type: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "gpt2"}`), 0o644)
	if _, err := LoadEncoder(dir); err == nil || !strings.Contains(err.Error(), "not a BERT-family encoder") {
		t.Errorf("gpt2 as encoder: %v", err)
	}
}
