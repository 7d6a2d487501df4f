package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// problem_type multi_label_classification scores each label with a sigmoid
// of its logit instead of a softmax over labels.
func TestClassifySigmoid(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "bert-cls"))
	var cfg map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	soft, err := NewTextClassifier(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer soft.Close()
	cfg["problem_type"] = "multi_label_classification"
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	sig, err := NewTextClassifier(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	text := []string{"I love this library!"}
	raw, err := soft.Classify(ctx, text, ClassifyOptions{Function: "none"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := sig.Classify(ctx, text, ClassifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logit := map[string]float64{}
	for _, l := range raw[0] {
		logit[l.Label] = l.Score
	}
	sum := 0.0
	for _, l := range got[0] {
		want := 1 / (1 + math.Exp(-logit[l.Label]))
		if math.Abs(l.Score-want) > 1e-6 {
			t.Errorf("%s: %v, want sigmoid %v", l.Label, l.Score, want)
		}
		sum += l.Score
	}
	if math.Abs(sum-1) < 1e-6 {
		t.Error("sigmoid scores sum to 1")
	}
	if _, err := soft.Classify(ctx, text, ClassifyOptions{Function: "bogus"}); err == nil {
		t.Error("unknown function accepted")
	}
}

// A text longer than the model's positions is an error, not a crash.
func TestClassifyTooLong(t *testing.T) {
	c, err := NewTextClassifier(context.Background(), filepath.Join("testdata", "bert-cls"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	long := strings.Repeat("hello world ", 100)
	_, err = c.Classify(context.Background(), []string{"short", long}, ClassifyOptions{})
	if err == nil || !strings.Contains(err.Error(), "max_position_embeddings") {
		t.Fatalf("error %v", err)
	}
	// With Truncate the long text is cut to the model's length instead.
	tc, err := NewTextClassifier(context.Background(), filepath.Join("testdata", "bert-cls"), &Options{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	res, err := tc.Classify(context.Background(), []string{"short", long}, ClassifyOptions{})
	if err != nil || len(res) != 2 || len(res[1]) != 3 {
		t.Fatalf("%v %v", res, err)
	}
}
