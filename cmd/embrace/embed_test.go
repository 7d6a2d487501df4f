package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/safetensors"
)

type embLine struct {
	Text      string    `json:"text"`
	Embedding []float32 `json:"embedding"`
}

func embedParseLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var got []T
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("output line %q is not JSON: %v", line, err)
		}
		got = append(got, v)
	}
	return got
}

// TestMatchesSentenceTransformers runs the reference texts through stdin in
// batches that do not divide them evenly and checks the embeddings against
// sentence-transformers' own (reference.safetensors) and the library's.
func TestEmbedMatchesSentenceTransformers(t *testing.T) {
	dir := clitest.Model(t, "minilm-st")
	var ref struct {
		Texts []string `json:"texts"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tv, err := f.Tensor("embeddings")
	if err != nil {
		t.Fatal(err)
	}
	want, err := tv.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	// Texts with tabs or newlines cannot travel one per line; send the rest.
	var texts []int
	var stdin strings.Builder
	for i, s := range ref.Texts {
		if strings.ContainsAny(s, "\n\r") || strings.TrimSpace(s) == "" {
			continue
		}
		texts = append(texts, i)
		stdin.WriteString(s + "\n")
	}
	if len(texts) < 3 {
		t.Fatalf("only %d usable reference texts", len(texts))
	}
	r := clitest.Run(t, runEmbed, stdin.String(), "-model", dir, "-json", "-batch-size", "2")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	got := embedParseLines[embLine](t, r.Stdout)
	if len(got) != len(texts) {
		t.Fatalf("%d lines for %d texts", len(got), len(texts))
	}
	dim := tv.Shape[1]
	for k, i := range texts {
		if got[k].Text != ref.Texts[i] || len(got[k].Embedding) != dim {
			t.Fatalf("line %d: text %q, %d dims; want %q, %d", k, got[k].Text, len(got[k].Embedding), ref.Texts[i], dim)
		}
		for j, x := range got[k].Embedding {
			w := want[i*dim+j]
			if d := math.Abs(float64(x - w)); d > 1e-4+1e-4*math.Abs(float64(w)) {
				t.Fatalf("text %d value %d: %g, sentence-transformers %g", i, j, x, w)
			}
		}
	}

	// Exactly what the library gives for the same texts.
	emb, err := pipeline.NewSentenceEmbedder(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	lib, err := emb.Embed(context.Background(), []string{got[0].Text, got[1].Text})
	if err != nil {
		t.Fatal(err)
	}
	for k := range lib {
		for j := range lib[k] {
			if lib[k][j] != got[k].Embedding[j] {
				t.Fatalf("text %d value %d: example %g, library %g", k, j, got[k].Embedding[j], lib[k][j])
			}
		}
	}
}

func TestEmbedSimilarity(t *testing.T) {
	dir := clitest.Model(t, "minilm-st")
	texts := []string{"Hello world!", "The quick brown fox jumps over the lazy dog.", "Hello world!"}
	r := clitest.Run(t, runEmbed, "", append([]string{"-model", dir, "-json"}, texts...)...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	vecs := embedParseLines[embLine](t, r.Stdout)
	r = clitest.Run(t, runEmbed, "", append([]string{"-model", dir, "-json", "-similarity"}, texts...)...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	var sim struct {
		Texts      []string    `json:"texts"`
		Similarity [][]float64 `json:"similarity"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &sim); err != nil {
		t.Fatalf("%q: %v", r.Stdout, err)
	}
	if len(sim.Similarity) != 3 || len(sim.Texts) != 3 {
		t.Fatalf("similarity %v", sim)
	}
	for i := range 3 {
		for j := range 3 {
			var dot, na, nb float64
			for k := range vecs[i].Embedding {
				a, b := float64(vecs[i].Embedding[k]), float64(vecs[j].Embedding[k])
				dot, na, nb = dot+a*b, na+a*a, nb+b*b
			}
			if want := dot / math.Sqrt(na*nb); math.Abs(sim.Similarity[i][j]-want) > 1e-6 {
				t.Errorf("sim[%d][%d] = %g, want %g", i, j, sim.Similarity[i][j], want)
			}
		}
	}
	if math.Abs(sim.Similarity[0][2]-1) > 1e-6 || sim.Similarity[0][1] > 0.999999 {
		t.Errorf("same texts %g, different texts %g", sim.Similarity[0][2], sim.Similarity[0][1])
	}

	// Text form: a matrix row per text and the legend.
	r = clitest.Run(t, runEmbed, "", append([]string{"-model", dir, "-similarity"}, texts...)...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "1.0000") || !strings.Contains(r.Stdout, "[2] "+texts[1]) {
		t.Errorf("text similarity: exit %d\n%s", r.Code, r.Stdout)
	}
}

func TestEmbedTextOutput(t *testing.T) {
	dir := clitest.Model(t, "minilm-st")
	r := clitest.Run(t, runEmbed, "", "-model", dir, "Hello world!")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, `"Hello world!" (`) || !strings.Contains(r.Stdout, "...]") {
		t.Errorf("exit %d, stdout %q", r.Code, r.Stdout)
	}
	if one := clitest.Run(t, runEmbed, "", "-model", dir, "-threads", "1", "Hello world!"); one.Stdout != r.Stdout {
		t.Errorf("-threads 1 printed %q, without it %q", one.Stdout, r.Stdout)
	}
	full := clitest.Run(t, runEmbed, "", "-model", dir, "-full", "Hello world!")
	js := embedParseLines[embLine](t, clitest.Run(t, runEmbed, "", "-model", dir, "-json", "Hello world!").Stdout)
	if n := len(strings.Fields(full.Stdout[strings.Index(full.Stdout, "[")+1:])); n != len(js[0].Embedding) {
		t.Errorf("-full printed %d values, want %d", n, len(js[0].Embedding))
	}
}

func TestEmbedErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	clitest.WantOneLineError(t, clitest.Run(t, runEmbed, "", "-model", missing, "hi"), "embrace embed", "does not exist")
	clitest.WantOneLineError(t, clitest.Run(t, runEmbed, "", "-model", t.TempDir(), "hi"), "embrace embed", "loading")
	clitest.WantOneLineError(t, clitest.Run(t, runEmbed, "", "-batch-size", "0", "hi"), "embrace embed", "-batch-size")
	clitest.WantOneLineError(t, clitest.Run(t, runEmbed, "", "-json=maybe"), "embrace embed", "json")
	clitest.WantOneLineError(t, clitest.Run(t, runEmbed, "", "-model", "../../pipeline/testdata/minilm-st", "-threads", "-1", "hi"), "embrace embed", "threads -1")
	r := clitest.Run(t, runEmbed, "", "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "-similarity") || !strings.Contains(r.Stdout, embedCommand.DefaultModel) {
		t.Errorf("-h: exit %d, %q", r.Code, r.Stdout)
	}
}

// TestDefaultModelOffline: without -model and with the Hub unreachable the
// error names the default model and tells how to run offline.
func TestEmbedDefaultModelOffline(t *testing.T) {
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	clitest.WantOneLineError(t, clitest.Run(t, runEmbed, "", "hi"), "embrace embed", embedCommand.DefaultModel, "-model")
}

// TestHubRepoID runs the example with a repo id against a fake Hub: the
// model is downloaded into the Hugging Face cache, then used; a second run
// is served from the cache.
func TestEmbedHubRepoID(t *testing.T) {
	dir := clitest.Model(t, "minilm-st")
	hub := clitest.StartFakeHub(t, "sentence-transformers/tiny-test", dir)
	local := clitest.Run(t, runEmbed, "", "-model", dir, "-json", "Hello world!")
	for i := range 2 {
		r := clitest.Run(t, runEmbed, "", "-model", "sentence-transformers/tiny-test", "-json", "Hello world!")
		if r.Code != 0 || r.Stdout != local.Stdout {
			t.Fatalf("run %d: exit %d, stdout %q, stderr %s; want the local folder's output", i, r.Code, r.Stdout, r.Stderr)
		}
	}
	if n := hub.Gets("model.safetensors"); n != 1 {
		t.Errorf("model.safetensors downloaded %d times, want once", n)
	}
	if n := hub.Gets("1_Pooling/config.json"); n != 1 {
		t.Errorf("1_Pooling/config.json downloaded %d times, want once", n)
	}
	snap := filepath.Join(hub.Cache, "models--sentence-transformers--tiny-test", "snapshots")
	if _, err := os.Stat(snap); err != nil {
		t.Errorf("no snapshot in the Hugging Face cache layout: %v", err)
	}
	r := clitest.Run(t, runEmbed, "", "-model", "sentence-transformers/missing", "hi")
	clitest.WantOneLineError(t, r, "embrace embed", "sentence-transformers/missing", "-model")
}
