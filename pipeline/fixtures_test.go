package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/embrace-go/embrace/safetensors"
)

// fixturesDir finds the shared reference fixtures, or skips the test.
func fixturesDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("EMBRACE_SHARED_FIXTURES"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "models")); err == nil {
			return d
		}
	}
	d := filepath.Join("..", "..", "shared", "fixtures")
	if _, err := os.Stat(d); err == nil {
		return d
	}
	t.Skip("no fixtures: set $EMBRACE_SHARED_FIXTURES or provide ../shared/fixtures next to the module root")
	return ""
}

type refFile struct {
	Texts    []string `json:"texts"`
	FillMask []struct {
		Input  string `json:"input"`
		TopK   int    `json:"top_k"`
		Result []struct {
			Score    float64 `json:"score"`
			Token    int     `json:"token"`
			TokenStr string  `json:"token_str"`
			Sequence string  `json:"sequence"`
		} `json:"result"`
	} `json:"fill_mask"`
	TextClassification []struct {
		Input  string `json:"input"`
		TopK   *int   `json:"top_k"`
		Result []struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		} `json:"result"`
	} `json:"text_classification"`
	TokenClassification []struct {
		Input       string `json:"input"`
		Aggregation string `json:"aggregation_strategy"`
		Result      []struct {
			Entity      string  `json:"entity"`
			EntityGroup string  `json:"entity_group"`
			Score       float64 `json:"score"`
			Index       *int    `json:"index"`
			Word        string  `json:"word"`
			Start       int     `json:"start"`
			End         int     `json:"end"`
		} `json:"result"`
	} `json:"token_classification"`
	QuestionAnswering []struct {
		Question     string `json:"question"`
		Context      string `json:"context"`
		TopK         int    `json:"top_k"`
		MaxAnswerLen int    `json:"max_answer_len"`
		Result       []struct {
			Score  float64 `json:"score"`
			Start  int     `json:"start"`
			End    int     `json:"end"`
			Answer string  `json:"answer"`
		} `json:"result"`
	} `json:"question_answering"`
}

func readRef(t *testing.T, name string) (string, *refFile) {
	dir := filepath.Join(fixturesDir(t), "models", name)
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r refFile
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return dir, &r
}

func closeScore(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-4 {
		t.Errorf("%s: score %v, want %v", what, got, want)
	}
}

func TestFillMaskFixture(t *testing.T) {
	dir, ref := readRef(t, "bert-mlm")
	fm, err := NewFillMask(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	if len(ref.FillMask) == 0 {
		t.Fatal("no fill_mask entries")
	}
	for _, e := range ref.FillMask {
		res, err := fm.Fill(context.Background(), []string{e.Input}, FillMaskOptions{TopK: e.TopK})
		if err != nil {
			t.Fatal(err)
		}
		got := res[0].Masks[0].Predictions
		if len(got) != len(e.Result) {
			t.Fatalf("%q: %d predictions, want %d", e.Input, len(got), len(e.Result))
		}
		for k, w := range e.Result {
			if got[k].Token != w.Token || got[k].TokenStr != w.TokenStr || got[k].Sequence != w.Sequence {
				t.Errorf("%q[%d]: %+v, want %+v", e.Input, k, got[k], w)
			}
			closeScore(t, e.Input, got[k].Score, w.Score)
		}
	}
	// Targets restrict the candidates to the given words.
	want := ref.FillMask[0].Result[1]
	res, err := fm.Fill(context.Background(), []string{ref.FillMask[0].Input}, FillMaskOptions{Targets: []string{want.TokenStr}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Masks[0].Predictions; len(got) != 1 || got[0].Token != want.Token {
		t.Errorf("with target %q: %+v", want.TokenStr, got)
	} else {
		closeScore(t, "target", got[0].Score, want.Score)
	}
	if _, err := fm.Fill(context.Background(), []string{"no mask here"}, FillMaskOptions{}); err == nil {
		t.Error("a text without a mask token gave no error")
	}
}

func TestTextClassificationFixtures(t *testing.T) {
	for _, name := range []string{"bert-cls", "distilbert-cls", "roberta-cls"} {
		t.Run(name, func(t *testing.T) {
			dir, ref := readRef(t, name)
			tc, err := NewTextClassifier(context.Background(), dir, &Options{BatchSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer tc.Close()
			var texts []string
			for _, e := range ref.TextClassification {
				texts = append(texts, e.Input)
			}
			// All inputs in one call: batched (and padded) two at a time.
			res, err := tc.Classify(context.Background(), texts, ClassifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range ref.TextClassification {
				if len(res[i]) != len(e.Result) {
					t.Fatalf("%q: %d labels, want %d", e.Input, len(res[i]), len(e.Result))
				}
				for k, w := range e.Result {
					if res[i][k].Label != w.Label {
						t.Errorf("%q[%d]: %s, want %s", e.Input, k, res[i][k].Label, w.Label)
					}
					closeScore(t, e.Input, res[i][k].Score, w.Score)
				}
			}
			top, err := tc.Classify(context.Background(), texts[:1], ClassifyOptions{TopK: 1})
			if err != nil || len(top[0]) != 1 || top[0][0].Label != res[0][0].Label {
				t.Fatalf("top_k 1: %v %v", top, err)
			}
			closeScore(t, "top_k 1", top[0][0].Score, res[0][0].Score)
		})
	}
}

func TestTokenClassificationFixture(t *testing.T) {
	dir, ref := readRef(t, "bert-ner")
	tc, err := NewTokenClassifier(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if len(ref.TokenClassification) == 0 {
		t.Fatal("no entries")
	}
	for _, e := range ref.TokenClassification {
		res, err := tc.Classify(context.Background(), []string{e.Input}, TokenOptions{Aggregation: Aggregation(e.Aggregation)})
		if err != nil {
			t.Fatal(err)
		}
		got := res[0]
		if len(got) != len(e.Result) {
			t.Fatalf("%s %q: %d entities, want %d: %+v", e.Aggregation, e.Input, len(got), len(e.Result), got)
		}
		for k, w := range e.Result {
			g := got[k]
			label := w.Entity + w.EntityGroup
			if g.Label != label || g.Word != w.Word || g.StartRune != w.Start || g.EndRune != w.End ||
				(w.Index != nil && g.Index != *w.Index) {
				t.Errorf("%s %q[%d]: %+v, want %+v", e.Aggregation, e.Input, k, g, w)
			}
			// Byte offsets address the same text as the rune offsets.
			if g.Start > g.End || g.End > len(e.Input) {
				t.Errorf("byte offsets %d..%d", g.Start, g.End)
			}
			closeScore(t, e.Input, g.Score, w.Score)
		}
	}
}

func TestQuestionAnsweringFixture(t *testing.T) {
	dir, ref := readRef(t, "bert-qa")
	qa, err := NewQuestionAnswerer(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qa.Close()
	var in []QAInput
	for _, e := range ref.QuestionAnswering {
		in = append(in, QAInput{e.Question, e.Context})
	}
	if len(in) == 0 {
		t.Fatal("no entries")
	}
	e0 := ref.QuestionAnswering[0]
	res, err := qa.Answer(context.Background(), in, QAOptions{TopK: e0.TopK, MaxAnswerLen: e0.MaxAnswerLen})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range ref.QuestionAnswering {
		if len(res[i]) != len(e.Result) {
			t.Fatalf("%q: %d answers, want %d", e.Question, len(res[i]), len(e.Result))
		}
		for k, w := range e.Result {
			g := res[i][k]
			if g.Answer != w.Answer || g.StartRune != w.Start || g.EndRune != w.End || e.Context[g.Start:g.End] != g.Answer {
				t.Errorf("%q[%d]: %+v, want %+v", e.Question, k, g, w)
			}
			closeScore(t, e.Question, g.Score, w.Score)
		}
	}
}

// A context longer than one window is split with stride; every answer still
// points into the context, and the windows' best answers are merged.
func TestQuestionAnsweringLongContext(t *testing.T) {
	dir, ref := readRef(t, "bert-qa")
	qa, err := NewQuestionAnswerer(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qa.Close()
	e := ref.QuestionAnswering[0]
	long := e.Context
	for len(long) < 600 {
		long += " " + e.Context
	}
	res, err := qa.Answer(context.Background(), []QAInput{{e.Question, long}}, QAOptions{TopK: 5, MaxSeqLen: 48, DocStride: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0]) != 5 {
		t.Fatalf("%d answers", len(res[0]))
	}
	for i, a := range res[0] {
		if long[a.Start:a.End] != a.Answer || a.Score <= 0 || (i > 0 && a.Score > res[0][i-1].Score) {
			t.Errorf("answer %d: %+v", i, a)
		}
	}
	// The best answer of the short context reappears (same tokens, same
	// neighbourhood in the first window) among the long context's spans.
	if _, err := qa.Answer(context.Background(), []QAInput{{e.Question, long}}, QAOptions{MaxSeqLen: 48, DocStride: 48}); err == nil {
		t.Error("a stride as long as the window gave no error")
	}
}

func TestSentenceEmbeddingsFixture(t *testing.T) {
	dir, ref := readRef(t, "minilm-st")
	st, err := NewSentenceEmbedder(context.Background(), dir, &Options{BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := readEmbeddings(t, dir)
	got, err := st.Embed(context.Background(), ref.Texts[:len(want)])
	if err != nil {
		t.Fatal(err)
	}
	compareEmbeddings(t, got, want)
}

func readEmbeddings(t *testing.T, dir string) [][]float32 {
	f, err := safetensors.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := f.Tensor("embeddings")
	if err != nil {
		t.Fatal(err)
	}
	xs, err := v.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]float32
	for i := 0; i < v.Shape[0]; i++ {
		out = append(out, xs[i*v.Shape[1]:(i+1)*v.Shape[1]])
	}
	return out
}

func compareEmbeddings(t *testing.T, got, want [][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d embeddings, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("embedding %d has %d values, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-4+1e-4*math.Abs(float64(want[i][j])) {
				t.Fatalf("embedding %d[%d] = %v, want %v", i, j, got[i][j], want[i][j])
			}
		}
	}
}
