package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
	"github.com/embrace-go/embrace/pipeline"
)

type fmLine struct {
	Text  string                 `json:"text"`
	Masks [][]fillMaskPrediction `json:"masks"`
}

// TestMatchesTransformers runs the fixture's fill_mask entries through the
// example, all on stdin at once.
func TestFillMaskMatchesTransformers(t *testing.T) {
	dir := clitest.Model(t, "bert-mlm")
	var ref struct {
		FillMask []struct {
			Input  string               `json:"input"`
			TopK   int                  `json:"top_k"`
			Result []fillMaskPrediction `json:"result"`
		} `json:"fill_mask"`
	}
	clitest.Reference(t, dir, &ref)
	if len(ref.FillMask) == 0 {
		t.Fatal("no fill_mask entries in reference.json")
	}
	for _, e := range ref.FillMask {
		r := clitest.Run(t, runFillMask, e.Input+"\n", "-model", dir, "-json", "-top-k", strconv.Itoa(e.TopK))
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		got := clitest.JSONLines[fmLine](t, r.Stdout)
		if len(got) != 1 || got[0].Text != e.Input || len(got[0].Masks) != 1 || len(got[0].Masks[0]) != len(e.Result) {
			t.Fatalf("%q: got %+v, want %+v", e.Input, got, e.Result)
		}
		for i, w := range e.Result {
			g := got[0].Masks[0][i]
			if g.Token != w.Token || g.TokenStr != w.TokenStr || g.Sequence != w.Sequence || !clitest.ScoreClose(g.Score, w.Score) {
				t.Errorf("%q candidate %d: %+v, transformers %+v", e.Input, i, g, w)
			}
		}
	}
}

func TestFillMaskTargetsAndTextForm(t *testing.T) {
	dir := clitest.Model(t, "bert-mlm")
	fm, err := pipeline.NewFillMask(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	text := "Paris is the " + fm.MaskToken() + " of " + fm.MaskToken() + "."
	opt := pipeline.FillMaskOptions{TopK: 2, Targets: []string{"paris", "france", "the"}}
	want, err := fm.Fill(context.Background(), []string{text}, opt)
	if err != nil {
		t.Fatal(err)
	}
	r := clitest.Run(t, runFillMask, "", "-model", dir, "-json", "-top-k", "2", "-targets", "paris, france,the", text)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	got := clitest.JSONLines[fmLine](t, r.Stdout)[0]
	if len(got.Masks) != 2 || len(want[0].Masks) != 2 {
		t.Fatalf("masks: got %d, library %d", len(got.Masks), len(want[0].Masks))
	}
	for m := range want[0].Masks {
		for i, w := range want[0].Masks[m].Predictions {
			if g := got.Masks[m][i]; g.Token != w.Token || g.Score != w.Score || g.Sequence != w.Sequence || g.TokenStr != w.TokenStr {
				t.Errorf("mask %d candidate %d: %+v, library %+v", m, i, g, w)
			}
		}
	}

	r = clitest.Run(t, runFillMask, "", "-model", dir, "-top-k", "2", "-targets", "paris,france,the", text)
	if r.Code != 0 || !strings.Contains(r.Stdout, "mask 2") || !strings.Contains(r.Stdout, want[0].Masks[1].Predictions[0].Sequence) {
		t.Errorf("text form: exit %d\n%s", r.Code, r.Stdout)
	}
}

func TestFillMaskErrors(t *testing.T) {
	dir := clitest.Model(t, "bert-mlm")
	missing := filepath.Join(t.TempDir(), "nope")
	clitest.WantOneLineError(t, clitest.Run(t, runFillMask, "", "-model", missing, "a [MASK]"), "embrace fill-mask", "does not exist")
	clitest.WantOneLineError(t, clitest.Run(t, runFillMask, "a [MASK].\nno mask here\n", "-model", dir), "embrace fill-mask", "stdin line 2", "mask")
	clitest.WantOneLineError(t, clitest.Run(t, runFillMask, "", "-top-k", "0"), "embrace fill-mask", "-top-k")
	clitest.WantOneLineError(t, clitest.Run(t, runFillMask, "", "-model", clitest.Model(t, "bert-cls"), "a [MASK]"), "embrace fill-mask", "loading")
	r := clitest.Run(t, runFillMask, "", "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "-targets") || !strings.Contains(r.Stdout, fillMaskCommand.DefaultModel) {
		t.Errorf("-h: exit %d, %q", r.Code, r.Stdout)
	}
}

// TestHubRepoID: -model with a repo id downloads from a (fake) Hub into the
// Hugging Face cache and gives the same output as the local folder.
func TestFillMaskHubRepoID(t *testing.T) {
	clitest.CheckHubRun(t, runFillMask, clitest.Model(t, "bert-mlm"), "test-org/tiny-fill-mask", "-json", "Paris is the [MASK] of France.")
}
