package main

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
	"github.com/embrace-go/embrace/pipeline"
)

type clsLine struct {
	Text   string          `json:"text"`
	Labels []classifyLabel `json:"labels"`
}

// TestMatchesTransformers checks the example against the text-classification
// results transformers gave for the fixture (reference.json) and against
// the library itself, with batches that do not divide the inputs evenly.
func TestClassifyMatchesTransformers(t *testing.T) {
	dir := clitest.Model(t, "bert-cls")
	var ref struct {
		TextClassification []struct {
			Input  string          `json:"input"`
			TopK   *int            `json:"top_k"`
			Result []classifyLabel `json:"result"`
		} `json:"text_classification"`
	}
	clitest.Reference(t, dir, &ref)
	if len(ref.TextClassification) == 0 {
		t.Fatal("no text_classification entries in reference.json")
	}
	for _, e := range ref.TextClassification {
		k := "0"
		if e.TopK != nil {
			k = strconv.Itoa(*e.TopK)
		}
		r := clitest.Run(t, runClassify, "", "-model", dir, "-json", "-top-k", k, e.Input)
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		got := clitest.JSONLines[clsLine](t, r.Stdout)
		if len(got) != 1 || got[0].Text != e.Input || len(got[0].Labels) != len(e.Result) {
			t.Fatalf("%q: got %+v, want %+v", e.Input, got, e.Result)
		}
		for i, w := range e.Result {
			g := got[0].Labels[i]
			if g.Label != w.Label || !clitest.ScoreClose(g.Score, w.Score) {
				t.Errorf("%q classifyLabel %d: %+v, transformers %+v", e.Input, i, g, w)
			}
		}
	}

	texts := []string{"I love it.", "I hate it.", "It is a table.", "Meh."}
	r := clitest.Run(t, runClassify, strings.Join(texts, "\n")+"\n", "-model", dir, "-json", "-top-k", "2", "-batch-size", "3")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	got := clitest.JSONLines[clsLine](t, r.Stdout)
	clf, err := pipeline.NewTextClassifier(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	want, err := clf.Classify(context.Background(), texts, pipeline.ClassifyOptions{TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(texts) {
		t.Fatalf("%d lines for %d texts", len(got), len(texts))
	}
	for i := range texts {
		if got[i].Text != texts[i] || len(got[i].Labels) != 2 {
			t.Fatalf("line %d: %+v", i, got[i])
		}
		for j, w := range want[i] {
			// Batches are padded differently here and in the library call,
			// which moves scores in the last float32 bits only.
			if g := got[i].Labels[j]; g.Label != w.Label || math.Abs(g.Score-w.Score) > 1e-6 {
				t.Errorf("text %d classifyLabel %d: %+v, library %+v", i, j, g, w)
			}
		}
	}

	// Text form: the text, then tab-separated "label (score)".
	r = clitest.Run(t, runClassify, "", "-model", dir, texts[0])
	if wantLine := texts[0] + "\t" + want[0][0].Label + " ("; r.Code != 0 || !strings.HasPrefix(r.Stdout, wantLine) || strings.Count(r.Stdout, "\t") != 1 {
		t.Errorf("text output %q, want it to start with %q and have one label", r.Stdout, wantLine)
	}
}

func TestClassifyErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	clitest.WantOneLineError(t, clitest.Run(t, runClassify, "", "-model", missing, "hi"), "embrace classify", "does not exist")
	clitest.WantOneLineError(t, clitest.Run(t, runClassify, "", "-top-k", "-1", "hi"), "embrace classify", "-top-k")
	// A folder whose model has no classification head.
	clitest.WantOneLineError(t, clitest.Run(t, runClassify, "", "-model", clitest.Model(t, "bert-ner"), "hi"), "embrace classify", "loading")
	r := clitest.Run(t, runClassify, "", "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "-top-k") || !strings.Contains(r.Stdout, classifyCommand.DefaultModel) {
		t.Errorf("-h: exit %d, %q", r.Code, r.Stdout)
	}
}

// TestHubRepoID: -model with a repo id downloads from a (fake) Hub into the
// Hugging Face cache and gives the same output as the local folder.
func TestClassifyHubRepoID(t *testing.T) {
	clitest.CheckHubRun(t, runClassify, clitest.Model(t, "bert-cls"), "test-org/tiny-classify", "-json", "I love it.")
}
