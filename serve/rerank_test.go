package serve

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/pipeline"
)

type rankJSON struct {
	Index int     `json:"index"`
	Score float64 `json:"score"`
	Text  *string `json:"text"`
}

// rerankServer serves a cross-encoder folder through the real loader.
func rerankServer(t *testing.T, dir string) *testServer {
	t.Helper()
	ts := newTestServer(t, Options{}, nil)
	ts.s.cfg.Model = dir
	if err := ts.s.loadWith(context.Background(), loadModel); err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestRerankTinyCrossEncoder serves the committed one-label classifier
// (pipeline/testdata/bert-rerank): /rerank answers TEI's shape, best first,
// with the pipeline's sigmoid scores (raw_scores: the logits), and the
// other routes say the model serves reranking.
func TestRerankTinyCrossEncoder(t *testing.T) {
	dir := filepath.Join("..", "pipeline", "testdata", "bert-rerank")
	ts := rerankServer(t, dir)
	query := "How many people live in Berlin?"
	texts := []string{"Berlin has 3.5 million inhabitants.", "New York is famous for its museums.", "Berlin is the capital of Germany.", "The quick brown fox."}

	lib, err := pipeline.NewReranker(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	want, err := lib.Score(context.Background(), [][2]string{{query, texts[0]}, {query, texts[1]}, {query, texts[2]}, {query, texts[3]}}, pipeline.RerankOptions{})
	if err != nil {
		t.Fatal(err)
	}

	for _, raw := range []bool{false, true} {
		code, body := ts.post(t, "/rerank", map[string]any{"query": query, "texts": texts, "raw_scores": raw})
		if code != 200 {
			t.Fatalf("raw_scores %v: %d %s", raw, code, body)
		}
		got := decode[[]rankJSON](t, body)
		if len(got) != len(texts) {
			t.Fatalf("%d results for %d texts: %s", len(got), len(texts), body)
		}
		seen := map[int]bool{}
		for i, g := range got {
			if g.Index < 0 || g.Index >= len(texts) || seen[g.Index] {
				t.Fatalf("bad or repeated index %d: %s", g.Index, body)
			}
			seen[g.Index] = true
			if i > 0 && g.Score > got[i-1].Score {
				t.Errorf("not sorted by score descending: %s", body)
			}
			logit := want[g.Index].Logit
			wantScore := 1 / (1 + math.Exp(-logit))
			if raw {
				wantScore = logit
			}
			if math.Abs(g.Score-wantScore) > 1e-6 {
				t.Errorf("raw_scores %v: text %d scored %v, want %v", raw, g.Index, g.Score, wantScore)
			}
			if g.Text != nil {
				t.Errorf("text returned without return_text")
			}
		}
	}
	code, body := ts.post(t, "/rerank", map[string]any{"query": query, "texts": texts[:2], "return_text": true})
	if got := decode[[]rankJSON](t, body); code != 200 || len(got) != 2 || got[0].Text == nil || *got[0].Text != texts[got[0].Index] {
		t.Errorf("return_text: %d %s", code, body)
	}

	code, body = ts.post(t, "/classify", map[string]any{"inputs": "x"})
	wantError(t, code, body, 404, "rerank")
	code, body = ts.post(t, "/rerank", map[string]any{"texts": texts})
	wantError(t, code, body, 400, "query is required")
	code, body = ts.post(t, "/rerank", map[string]any{"query": query, "texts": []string{}})
	wantError(t, code, body, 400, "texts is an empty list")
	code, body = ts.post(t, "/rerank", map[string]any{"query": query, "texts": "a single string"})
	if code != 200 {
		t.Errorf("one text as a string: %d %s", code, body)
	}
	long := strings.Repeat("berlin ", 100)
	code, body = ts.post(t, "/rerank", map[string]any{"query": query, "texts": []string{"short", long}})
	wantError(t, code, body, 413, "texts[1] with the query has")
	if code, body := ts.post(t, "/rerank", map[string]any{"query": query, "texts": []string{"short", long}, "truncate": true}); code != 200 {
		t.Errorf("truncate: %d %s", code, body)
	}

	// A model that is not a cross-encoder does not serve /rerank.
	other := newTestServer(t, Options{}, fakeModel())
	code, body = other.post(t, "/rerank", map[string]any{"query": query, "texts": texts})
	wantError(t, code, body, 404, "cross-encoder")
}

// TestFixtureRerank checks /rerank against sentence-transformers'
// CrossEncoder.rank on the cross-encoder fixture.
func TestFixtureRerank(t *testing.T) {
	dir := filepath.Join(fixtures(t), "models", "cross-encoder")
	ref := readJSON[struct {
		Rerank []struct {
			Query     string    `json:"query"`
			Documents []string  `json:"documents"`
			Logits    []float64 `json:"logits"`
		} `json:"rerank"`
	}](t, filepath.Join(dir, "reference.json"))
	if len(ref.Rerank) == 0 {
		t.Fatal("reference.json has no rerank cases")
	}
	ts := rerankServer(t, dir)
	for _, c := range ref.Rerank {
		for _, raw := range []bool{false, true} {
			code, body := ts.post(t, "/rerank", map[string]any{"query": c.Query, "texts": c.Documents, "raw_scores": raw})
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			for _, g := range decode[[]rankJSON](t, body) {
				want := c.Logits[g.Index]
				if !raw {
					want = 1 / (1 + math.Exp(-want))
				}
				if !close4(g.Score, want) {
					t.Errorf("%q, text %d, raw %v: %v, want %v", c.Query, g.Index, raw, g.Score, want)
				}
			}
		}
	}
}
