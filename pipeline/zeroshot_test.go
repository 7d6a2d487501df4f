package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
)

// The scores are transformers' formulas applied to logits computed pair by
// pair without the pipeline.
func TestZeroShot(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nli")
	deriveNLI(t, dir)
	z, err := NewZeroShotClassifier(ctx, dir, &Options{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if z.EntailmentID() != 2 || z.ContradictionID() != 0 || z.MaxLength() != 64 {
		t.Fatalf("entailment %d contradiction %d max length %d", z.EntailmentID(), z.ContradictionID(), z.MaxLength())
	}
	seq := "I have a problem with my iphone that needs to be resolved asap!!"
	labels := []string{"urgent", "not urgent", "phone", "tablet", "computer"}
	logits := make([][]float32, len(labels))
	for i, l := range labels {
		logits[i] = pairLogits(t, dir, seq, "This example is "+l+".")
	}
	// Single label: a softmax over the labels' entailment logits.
	var sum float64
	single := make(map[string]float64)
	for i, l := range labels {
		single[l] = math.Exp(float64(logits[i][2]))
		sum += single[l]
	}
	for l := range single {
		single[l] /= sum
	}
	// Multi-label: each label's entailment against its contradiction.
	multi := make(map[string]float64)
	for i, l := range labels {
		multi[l] = 1 / (1 + math.Exp(float64(logits[i][0]-logits[i][2])))
	}
	for _, c := range []struct {
		multi bool
		want  map[string]float64
	}{{false, single}, {true, multi}} {
		got, err := z.Classify(ctx, seq, labels, ZeroShotOptions{MultiLabel: c.multi})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(labels) {
			t.Fatalf("multi %v: %v", c.multi, got)
		}
		total := 0.0
		for k, g := range got {
			if math.Abs(g.Score-c.want[g.Label]) > 1e-5 {
				t.Errorf("multi %v: %s %v, want %v", c.multi, g.Label, g.Score, c.want[g.Label])
			}
			if k > 0 && g.Score > got[k-1].Score {
				t.Errorf("multi %v: not sorted: %v", c.multi, got)
			}
			total += g.Score
		}
		if !c.multi && math.Abs(total-1) > 1e-9 {
			t.Errorf("single-label scores sum to %v", total)
		}
	}
	// One candidate label is scored on its own, whatever MultiLabel says.
	one, err := z.Classify(ctx, seq, labels[2:3], ZeroShotOptions{})
	if err != nil || len(one) != 1 || math.Abs(one[0].Score-multi[labels[2]]) > 1e-5 {
		t.Errorf("one label: %v %v, want %v", one, err, multi[labels[2]])
	}
	// The template puts the label where {} is.
	tmpl, err := z.Classify(ctx, seq, labels[:2], ZeroShotOptions{HypothesisTemplate: "{{Topic}}: {}.", MultiLabel: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range tmpl {
		l := pairLogits(t, dir, seq, "{Topic}: "+g.Label+".")
		if want := 1 / (1 + math.Exp(float64(l[0]-l[2]))); math.Abs(g.Score-want) > 1e-5 {
			t.Errorf("template: %s %v, want %v", g.Label, g.Score, want)
		}
	}
	for _, bad := range []string{"no field", "{label}", "{1}", "a } b {}"} {
		if _, err := z.Classify(ctx, seq, labels, ZeroShotOptions{HypothesisTemplate: bad}); err == nil || !strings.Contains(err.Error(), "template") {
			t.Errorf("template %q: %v", bad, err)
		}
	}
	if _, err := z.Classify(ctx, seq, nil, ZeroShotOptions{}); err == nil {
		t.Error("no labels accepted")
	}
	// A long sequence is cut (only_first), never the hypothesis.
	long := strings.Repeat("My phone is broken again. ", 40)
	a, err := z.Classify(ctx, long, labels, ZeroShotOptions{MultiLabel: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := z.Classify(ctx, long+"Totally unrelated ending.", labels, ZeroShotOptions{MultiLabel: true})
	if err != nil {
		t.Fatal(err)
	}
	for k := range a {
		if a[k].Label != b[k].Label || math.Abs(a[k].Score-b[k].Score) > 1e-6 {
			t.Errorf("truncation: %v vs %v", a, b)
			break
		}
	}
	z.Close()
	if _, err := z.Classify(ctx, seq, labels, ZeroShotOptions{}); !errors.Is(err, arch.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// The entailment label is found by name; contradiction is id 0, or the last
// id when entailment is 0.
func TestZeroShotLabelIDs(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		id2label            map[string]any
		label2id            map[string]any
		entail, contradicts int
	}{
		{map[string]any{"0": "ENTAILMENT", "1": "neutral", "2": "contradiction"}, nil, 0, 2},
		{map[string]any{"0": "contradiction", "1": "Entails", "2": "neutral"}, map[string]any{"contradiction": 0, "Entails": 1, "neutral": 2}, 1, 0},
	} {
		dir := filepath.Join(t.TempDir(), "nli")
		deriveFolder(t, dir, 0, func(cfg map[string]any) {
			cfg["id2label"] = c.id2label
			if c.label2id == nil {
				delete(cfg, "label2id")
			} else {
				cfg["label2id"] = c.label2id
			}
		})
		z, err := NewZeroShotClassifier(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if z.EntailmentID() != c.entail || z.ContradictionID() != c.contradicts {
			t.Errorf("%v: entailment %d contradiction %d, want %d %d", c.id2label, z.EntailmentID(), z.ContradictionID(), c.entail, c.contradicts)
		}
		z.Close()
	}
	// No entailment label, or not a sequence classifier: refused.
	for _, dir := range []string{"bert-cls", "bert-mlm"} {
		z, err := NewZeroShotClassifier(ctx, filepath.Join("testdata", dir), nil)
		if !errors.Is(err, arch.ErrUnsupported) {
			t.Errorf("%s: %v", dir, err)
		}
		if z != nil {
			z.Close()
		}
	}
}

// label2id is searched in the file's order, as transformers iterates it.
func TestEntailmentIDOrder(t *testing.T) {
	cfg, err := hfdir.ParseConfig([]byte(`{"id2label": {"0": "a", "1": "entail_b", "2": "entailment"},
		"label2id": {"entailment": 2, "a": 0, "entail_b": 1}}`), "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok, err := entailmentID(cfg); id != 2 || !ok || err != nil {
		t.Errorf("got %d %v %v, want 2", id, ok, err)
	}
	for _, bad := range []string{`[1]`, `{"a": 1.5}`, `{"a": -1}`, `{"a": "zero"}`, `{"a": 1`} {
		if _, _, err := orderedLabel2ID([]byte(bad)); err == nil {
			t.Errorf("label2id %s accepted", bad)
		}
	}
}

// Equal scores come out last index first, as reversed(np.argsort) gives.
func TestRankScores(t *testing.T) {
	got := rankScores([]float64{0.2, 0.5, 0.2, 0.1, 0.5 + 1e-12})
	if want := []int{4, 1, 2, 0, 3}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestFormatHypothesis(t *testing.T) {
	for tmpl, want := range map[string]string{
		"This example is {}.":  "This example is sports.",
		"{0} or not {0}?":      "sports or not sports?",
		"{{literal}} {}":       "{literal} sports",
		"{}":                   "sports",
		"Das Thema ist {}. }}": "Das Thema ist sports. }",
	} {
		got, err := formatHypothesis(tmpl, "sports")
		if got != want || err != nil {
			t.Errorf("%q: %q %v, want %q", tmpl, got, err, want)
		}
	}
}

func TestZeroShotFixture(t *testing.T) {
	dir := filepath.Join(fixturesDir(t), "models", "nli-zero-shot")
	var ref struct {
		ZeroShot []struct {
			Sequence        string   `json:"sequence"`
			CandidateLabels []string `json:"candidate_labels"`
			Template        string   `json:"hypothesis_template"`
			MultiLabel      bool     `json:"multi_label"`
			EntailmentID    int      `json:"entailment_id"`
			Result          struct {
				Labels []string  `json:"labels"`
				Scores []float64 `json:"scores"`
			} `json:"result"`
		} `json:"zero_shot_classification"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Skipf("no nli-zero-shot fixture in $EMBRACE_SHARED_FIXTURES or ../shared/fixtures: %v", err)
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.ZeroShot) == 0 {
		t.Fatal("no zero_shot_classification entries")
	}
	ctx := context.Background()
	z, err := NewZeroShotClassifier(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	for i, e := range ref.ZeroShot {
		if z.EntailmentID() != e.EntailmentID {
			t.Errorf("entailment id %d, want %d", z.EntailmentID(), e.EntailmentID)
		}
		got, err := z.Classify(ctx, e.Sequence, e.CandidateLabels, ZeroShotOptions{HypothesisTemplate: e.Template, MultiLabel: e.MultiLabel})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(e.Result.Labels) {
			t.Fatalf("[%d]: %v", i, got)
		}
		for k, g := range got {
			if g.Label != e.Result.Labels[k] {
				t.Errorf("[%d][%d]: %q, want %q", i, k, g.Label, e.Result.Labels[k])
			}
			closeScore(t, "zero-shot", g.Score, e.Result.Scores[k])
		}
	}
}

func TestTasksRetrieval(t *testing.T) {
	ctx := context.Background()
	for dir, want := range map[string][]Task{
		"bert-rerank": {TaskRerank, TaskTextClassification},
		"bert-nli":    {TaskTextClassification, TaskZeroShotClassification},
		"bert-cls":    {TaskTextClassification},
	} {
		got, err := Tasks(ctx, filepath.Join("testdata", dir), nil)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", dir, got, err, want)
		}
	}
}
