package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
	"github.com/embrace-go/embrace/pipeline"
)

type nerLine struct {
	Text     string      `json:"text"`
	Entities []nerEntity `json:"entities"`
}

// refEntity is one result of reference.json; start and end are code points.
type refEntity struct {
	Entity      string  `json:"entity"`
	EntityGroup string  `json:"entity_group"`
	Score       float64 `json:"score"`
	Index       *int    `json:"index"`
	Word        string  `json:"word"`
	Start       int     `json:"start"`
	End         int     `json:"end"`
}

// TestMatchesTransformers runs every token_classification entry of the
// fixture (each aggregation strategy) through the example.
func TestNERMatchesTransformers(t *testing.T) {
	dir := clitest.Model(t, "bert-ner")
	var ref struct {
		TokenClassification []struct {
			Input       string      `json:"input"`
			Aggregation string      `json:"aggregation_strategy"`
			Result      []refEntity `json:"result"`
		} `json:"token_classification"`
	}
	clitest.Reference(t, dir, &ref)
	if len(ref.TokenClassification) == 0 {
		t.Fatal("no token_classification entries in reference.json")
	}
	for _, e := range ref.TokenClassification {
		r := clitest.Run(t, runNER, e.Input+"\n", "-model", dir, "-json", "-aggregation", e.Aggregation)
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		got := clitest.JSONLines[nerLine](t, r.Stdout)
		if len(got) != 1 || got[0].Text != e.Input || len(got[0].Entities) != len(e.Result) {
			t.Fatalf("%s %q: got %+v, want %+v", e.Aggregation, e.Input, got, e.Result)
		}
		for i, w := range e.Result {
			g := got[0].Entities[i]
			same := g.Entity == w.Entity && g.EntityGroup == w.EntityGroup && g.Word == w.Word &&
				g.CharStart == w.Start && g.CharEnd == w.End && clitest.ScoreClose(g.Score, w.Score) &&
				(w.Index == nil) == (g.Index == nil) && (w.Index == nil || *w.Index == *g.Index)
			if !same {
				t.Errorf("%s %q nerEntity %d: %+v, transformers %+v", e.Aggregation, e.Input, i, g, w)
			}
			if got := e.Input[g.Start:g.End]; len([]rune(got)) != g.CharEnd-g.CharStart {
				t.Errorf("byte span %d-%d (%q) disagrees with code points %d-%d", g.Start, g.End, got, g.CharStart, g.CharEnd)
			}
		}
	}
}

func TestNERMatchesLibraryAndTextForm(t *testing.T) {
	dir := clitest.Model(t, "bert-ner")
	text := "Angela Merkel visited Paris."
	tc, err := pipeline.NewTokenClassifier(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	want, err := tc.Classify(context.Background(), []string{text}, pipeline.TokenOptions{Aggregation: pipeline.AggregateSimple})
	if err != nil {
		t.Fatal(err)
	}
	r := clitest.Run(t, runNER, "", "-model", dir, text)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	if len(lines) != 2+len(want[0]) && !(len(want[0]) == 0 && len(lines) == 1) {
		t.Fatalf("%d lines for %d entities:\n%s", len(lines), len(want[0]), r.Stdout)
	}
	for i, e := range want[0] {
		f := strings.Fields(lines[2+i])
		if len(f) < 4 || f[0] != e.Label || f[2] != fmt.Sprintf("%d-%d", e.Start, e.End) || strings.Join(f[3:], " ") != e.Word {
			t.Errorf("row %d = %q, library %+v", i, lines[2+i], e)
		}
	}
}

func TestNERErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	clitest.WantOneLineError(t, clitest.Run(t, runNER, "", "-model", missing, "hi"), "embrace ner", "does not exist")
	clitest.WantOneLineError(t, clitest.Run(t, runNER, "", "-aggregation", "mean", "hi"), "embrace ner", `"mean"`)
	clitest.WantOneLineError(t, clitest.Run(t, runNER, "", "-model", clitest.Model(t, "bert-cls"), "hi"), "embrace ner", "loading")
	r := clitest.Run(t, runNER, "", "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "-aggregation") || !strings.Contains(r.Stdout, nerCommand.DefaultModel) {
		t.Errorf("-h: exit %d, %q", r.Code, r.Stdout)
	}
}

// TestHubRepoID: -model with a repo id downloads from a (fake) Hub into the
// Hugging Face cache and gives the same output as the local folder.
func TestNERHubRepoID(t *testing.T) {
	clitest.CheckHubRun(t, runNER, clitest.Model(t, "bert-ner"), "test-org/tiny-ner", "-json", "Clara lives in Berkeley.")
}
