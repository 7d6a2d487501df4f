package pipeline

import (
	"context"
	"encoding/json"
	"errors"
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

// A text longer than the model's positions is cut by default, and an error
// wrapping ErrTooLong (not a crash) with truncation off.
func TestClassifyTooLong(t *testing.T) {
	off, err := NewTextClassifier(context.Background(), filepath.Join("testdata", "bert-cls"), &Options{Truncation: TruncateOff})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	long := strings.Repeat("hello world ", 100)
	_, err = off.Classify(context.Background(), []string{"short", long}, ClassifyOptions{})
	if !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "text 1") {
		t.Fatalf("error %v", err)
	}
	tc, err := NewTextClassifier(context.Background(), filepath.Join("testdata", "bert-cls"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	res, infos, err := tc.ClassifyWithInfo(context.Background(), []string{"short", long}, ClassifyOptions{})
	if err != nil || len(res) != 2 || len(res[1]) != 3 {
		t.Fatalf("%v %v", res, err)
	}
	if infos[0] != (InputInfo{Windows: 1}) || infos[1] != (InputInfo{Truncated: true, Windows: 1}) {
		t.Errorf("infos %+v", infos)
	}
}
