package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// listSnapshot returns the files (slash paths) under a snapshot folder.
func listSnapshot(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func TestSnapshotSentenceTransformersSharded(t *testing.T) {
	h := newFakeHub(t)
	files := map[string]string{
		"config.json":                       `{"model_type":"bert"}`,
		"model.safetensors.index.json":      `{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}`,
		"model-00001-of-00002.safetensors":  "shard1",
		"model-00002-of-00002.safetensors":  "shard2",
		"tokenizer.json":                    "{}",
		"tokenizer_config.json":             "{}",
		"vocab.txt":                         "[PAD]\n",
		"modules.json":                      `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]`,
		"1_Pooling/config.json":             `{"pooling_mode_mean_tokens":true}`,
		"sentence_bert_config.json":         `{"max_seq_length":128}`,
		"config_sentence_transformers.json": "{}",
		"README.md":                         "not needed",
		"pytorch_model.bin":                 "not needed",
		"onnx/model.onnx":                   "not needed",
	}
	r := h.addRepo("sentence-transformers/mini", files, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
	c := h.client(t)
	dir, err := c.Snapshot(context.Background(), "sentence-transformers/mini", "")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != r.commit {
		t.Errorf("snapshot dir %s", dir)
	}
	want := []string{"1_Pooling/config.json", "config.json", "config_sentence_transformers.json",
		"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
		"modules.json", "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"}
	if got := listSnapshot(t, dir); !slices.Equal(got, want) {
		t.Errorf("snapshot holds\n %v\nwant\n %v", got, want)
	}
	if h.gets["pytorch_model.bin"] != 0 || h.gets["README.md"] != 0 {
		t.Error("fetched files the model does not need")
	}

	// Offline, the same snapshot is found with no server at all.
	off := &Client{Endpoint: "http://127.0.0.1:1", CacheDir: c.CacheDir, Offline: true}
	dir2, err := off.Snapshot(context.Background(), "sentence-transformers/mini", "main")
	if err != nil || dir2 != dir {
		t.Errorf("offline snapshot: %s %v", dir2, err)
	}
	// A second online snapshot re-checks only config.json: the rest is pinned
	// by commit and cached (including the absence of optional files).
	total := func() (n int) {
		for _, v := range h.gets {
			n += v
		}
		return n
	}
	before := total()
	if _, err := c.Snapshot(context.Background(), "sentence-transformers/mini", "main"); err != nil {
		t.Fatal(err)
	}
	if total() != before {
		t.Error("second snapshot downloaded again")
	}
}

func TestSnapshotSingleFileAndErrors(t *testing.T) {
	h := newFakeHub(t)
	h.addRepo("openai-community/gpt2", map[string]string{
		"config.json": "{}", "model.safetensors": "weights", "vocab.json": "{}", "merges.txt": "#v\n",
		"generation_config.json": "{}", "model.safetensors.index.json": "unused",
	}, "model.safetensors")
	h.addRepo("old/pt-only", map[string]string{"config.json": "{}", "pytorch_model.bin": "pickle"})
	h.addRepo("org/no-weights", map[string]string{"config.json": "{}"})
	h.addRepo("org/no-config", map[string]string{"model.safetensors": "w"})
	c := h.client(t)
	ctx := context.Background()

	dir, err := c.Snapshot(ctx, "openai-community/gpt2", "main")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"config.json", "generation_config.json", "merges.txt", "model.safetensors", "vocab.json"}
	if got := listSnapshot(t, dir); !slices.Equal(got, want) {
		t.Errorf("snapshot %v, want %v", got, want)
	}

	_, err = c.Snapshot(ctx, "old/pt-only", "")
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "unsupported: pytorch_model.bin; convert to safetensors") {
		t.Errorf("pytorch-only: %v", err)
	}
	if h.gets["pytorch_model.bin"] != 0 {
		t.Error("downloaded pytorch_model.bin")
	}
	if _, err = c.Snapshot(ctx, "org/no-weights", ""); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("no weights: %v", err)
	}
	if _, err = c.Snapshot(ctx, "org/no-config", ""); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("no config: %v", err)
	}
	off := &Client{CacheDir: t.TempDir(), Offline: true}
	if _, err := off.Snapshot(ctx, "openai-community/gpt2", ""); !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("offline empty cache: %v", err)
	}
}

func TestSnapshotRejectsEscapingShards(t *testing.T) {
	h := newFakeHub(t)
	h.addRepo("org/evil", map[string]string{
		"config.json":                  "{}",
		"model.safetensors.index.json": `{"weight_map":{"a":"../../../../etc/passwd"}}`,
	})
	h.addRepo("org/evil2", map[string]string{
		"config.json": "{}", "model.safetensors": "w",
		"modules.json": `[{"path":"../../outside"}]`,
	})
	c := h.client(t)
	for _, repo := range []string{"org/evil", "org/evil2"} {
		if _, err := c.Snapshot(context.Background(), repo, ""); err == nil || !strings.Contains(err.Error(), "invalid file name") {
			t.Errorf("%s: %v", repo, err)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	if got, err := Resolve(context.Background(), dir); err != nil || got != dir {
		t.Errorf("local folder: %s %v", got, err)
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := Resolve(context.Background(), f); err == nil {
		t.Error("Resolve of a file succeeded")
	}
	if _, err := Resolve(context.Background(), filepath.Join(dir, "no", "such")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing path: %v", err)
	}

	h := newFakeHub(t)
	r := h.addRepo("org/model", map[string]string{"config.json": "{}", "model.safetensors": "w"})
	r.branches["v1"] = r.commit
	t.Setenv("HF_ENDPOINT", h.srv.URL)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	got, err := Resolve(context.Background(), "org/model@v1")
	if err != nil || filepath.Base(got) != r.commit {
		t.Errorf("hub repo: %s %v", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(os.Getenv("HF_HUB_CACHE"), "models--org--model", "refs", "v1")); string(b) != r.commit {
		t.Errorf("refs/v1 = %q", b)
	}
}
