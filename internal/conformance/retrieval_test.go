package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// editReference rewrites a copied fixture's reference.json.
func editReference(t *testing.T, dir string, edit func(ref map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "reference.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]any
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	edit(ref)
	if data, err = json.Marshal(ref); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunnerRerank(t *testing.T) {
	if r := run(copyModel(t, "cross-encoder", nil), Options{}); r.Failed() {
		t.Fatal(r.Line())
	}
	// Swapping the first two results of the ranking is noticed.
	dir := copyModel(t, "cross-encoder", nil)
	editReference(t, dir, func(ref map[string]any) {
		res := ref["rerank"].([]any)[0].(map[string]any)["result"].([]any)
		res[0], res[1] = res[1], res[0]
	})
	if r := run(dir, Options{}); !r.Failed() || !strings.Contains(r.Line(), "rerank[0] result[0]") {
		t.Fatal(r.Line())
	}
	// So is a score off by more than the tolerance.
	dir = copyModel(t, "cross-encoder", nil)
	editReference(t, dir, func(ref map[string]any) {
		e := ref["rerank"].([]any)[1].(map[string]any)
		e["scores"].([]any)[2] = e["scores"].([]any)[2].(float64) + 1e-3
	})
	if r := run(dir, Options{}); !r.Failed() || !strings.Contains(r.Line(), "rerank[1] scores[2]") {
		t.Fatal(r.Line())
	}
}

// A cross-encoder saved with the Identity activation scores with the raw
// logits; a reference computed that way passes, and one computed with the
// sigmoid fails.
func TestRunnerRerankIdentity(t *testing.T) {
	dir := copyModel(t, "cross-encoder", nil)
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["sentence_transformers"] = map[string]any{"activation_fn": "torch.nn.modules.linear.Identity"}
	if data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(dir, Options{}); !r.Failed() || !strings.Contains(r.Line(), "activation") {
		t.Fatal(r.Line())
	}
	editReference(t, dir, func(ref map[string]any) {
		for _, e := range ref["rerank"].([]any) {
			e := e.(map[string]any)
			e["activation_fn"] = "torch.nn.modules.linear.Identity"
			e["scores"] = e["logits"]
			for _, res := range e["result"].([]any) {
				res := res.(map[string]any)
				res["score"] = res["logit"]
			}
		}
	})
	if r := run(dir, Options{}); r.Failed() {
		t.Fatal(r.Line())
	}
}

func TestRunnerZeroShot(t *testing.T) {
	if r := run(copyModel(t, "nli-zero-shot", nil), Options{}); r.Failed() {
		t.Fatal(r.Line())
	}
	// The multi-label result differs from the single-label one: running an
	// entry with the other mode fails.
	dir := copyModel(t, "nli-zero-shot", nil)
	editReference(t, dir, func(ref map[string]any) {
		e := ref["zero_shot_classification"].([]any)[1].(map[string]any)
		e["multi_label"] = false
	})
	if r := run(dir, Options{}); !r.Failed() || !strings.Contains(r.Line(), "zero_shot_classification[1]") {
		t.Fatal(r.Line())
	}
	// An unknown parameter is reported, not ignored.
	dir = copyModel(t, "nli-zero-shot", nil)
	editReference(t, dir, func(ref map[string]any) {
		ref["zero_shot_classification"].([]any)[0].(map[string]any)["batch_size"] = 2
	})
	if r := run(dir, Options{}); !r.Failed() || !strings.Contains(r.Line(), "unsupported") {
		t.Fatal(r.Line())
	}
}
