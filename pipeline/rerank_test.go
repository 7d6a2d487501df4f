package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tokenizer"
)

var updateTestdata = flag.Bool("update-testdata", false, "rewrite testdata/bert-rerank and testdata/bert-nli from testdata/bert-cls")

// deriveFolder writes into dst a copy of testdata/bert-cls whose config.json
// is edited by editConfig and whose classifier keeps only the first rows
// labels rows (all of them when rows is 0).
func deriveFolder(t *testing.T, dst string, rows int, editConfig func(cfg map[string]any)) {
	t.Helper()
	src := filepath.Join("testdata", "bert-cls")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cfg map[string]any
	data, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	editConfig(cfg)
	if data, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "config.json"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var views []safetensors.TensorView
	for _, n := range f.Names() {
		v, err := f.Tensor(n)
		if err != nil {
			t.Fatal(err)
		}
		if rows > 0 && (n == "classifier.weight" || n == "classifier.bias") {
			per := len(v.Data) / v.Shape[0]
			v.Data = v.Data[:rows*per]
			v.Shape = append([]int{rows}, v.Shape[1:]...)
		}
		views = append(views, v)
	}
	if err := safetensors.WriteFile(filepath.Join(dst, "model.safetensors"), views, f.Metadata()); err != nil {
		t.Fatal(err)
	}
}

// deriveReranker makes a cross-encoder out of testdata/bert-cls: its first
// label alone, with sentence-transformers' activation.
func deriveReranker(t *testing.T, dst string) {
	deriveFolder(t, dst, 1, func(cfg map[string]any) {
		cfg["id2label"] = map[string]any{"0": "LABEL_0"}
		cfg["label2id"] = map[string]any{"LABEL_0": 0}
		cfg["sentence_transformers"] = map[string]any{"activation_fn": "torch.nn.modules.activation.Sigmoid"}
	})
}

// deriveNLI makes an NLI model out of testdata/bert-cls by renaming its
// labels.
func deriveNLI(t *testing.T, dst string) {
	deriveFolder(t, dst, 0, func(cfg map[string]any) {
		cfg["id2label"] = map[string]any{"0": "contradiction", "1": "neutral", "2": "entailment"}
		cfg["label2id"] = map[string]any{"contradiction": 0, "neutral": 1, "entailment": 2}
	})
}

// The committed testdata/bert-rerank and testdata/bert-nli (used by the
// examples) are exactly what deriveReranker and deriveNLI make of
// testdata/bert-cls; -update-testdata rewrites them.
func TestDerivedTestdata(t *testing.T) {
	for name, derive := range map[string]func(*testing.T, string){"bert-rerank": deriveReranker, "bert-nli": deriveNLI} {
		committed := filepath.Join("testdata", name)
		if *updateTestdata {
			derive(t, committed)
			continue
		}
		fresh := filepath.Join(t.TempDir(), name)
		derive(t, fresh)
		for _, file := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} {
			want, err := os.ReadFile(filepath.Join(fresh, file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(committed, file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s/%s differs from its derivation from testdata/bert-cls (go test -run TestDerivedTestdata -update-testdata)", committed, file)
			}
		}
	}
}

// pairLogits runs one (a, b) pair, unpadded and alone, through the model in
// dir without any pipeline: the reference the pipelines' batched results
// are held to.
func pairLogits(t *testing.T, dir, a, b string) []float32 {
	t.Helper()
	m, err := models.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tok.EncodePair(a, b, true)
	if err != nil {
		t.Fatal(err)
	}
	n := len(enc.IDs)
	in := &arch.EncoderInput{Batch: 1, Seq: n, InputIDs: enc.IDs, AttentionMask: slices.Repeat([]int{1}, n), TokenTypeIDs: enc.TypeIDs}
	out, err := m.(arch.Encoder).Encode(context.Background(), in, arch.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(out.Logits.Float32s())
}

var (
	testQuery    = "How many people live in Berlin?"
	testPassages = []string{
		"Berlin has a population of 3,520,031 registered inhabitants.",
		"New York City is famous for the Metropolitan Museum of Art.",
		"Berlin is the capital of Germany.",
		"The quick brown fox jumps over the lazy dog.",
		"Berlin is the capital of Germany.",
	}
)

func TestReranker(t *testing.T) {
	ctx := context.Background()
	full := filepath.Join("testdata", "bert-cls")
	dir := filepath.Join(t.TempDir(), "rerank")
	deriveReranker(t, dir)
	r, err := NewReranker(ctx, dir, &Options{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if act, err := r.Activation(); act != ActivationSigmoid || err != nil {
		t.Fatalf("activation %q %v", act, err)
	}
	// bert-cls has 64 positions and model_max_length 64.
	if n := r.MaxLength(); n != 64 {
		t.Errorf("MaxLength %d, want 64", n)
	}
	scored, err := r.Score(ctx, [][2]string{{testQuery, testPassages[0]}, {testQuery, testPassages[3]}}, RerankOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range []string{testPassages[0], testPassages[3]} {
		// The one-label head is the first row of bert-cls's.
		want := float64(pairLogits(t, full, testQuery, p)[0])
		s := scored[k]
		if s.Index != k || s.Text != p || math.Abs(s.Logit-want) > 1e-5 || math.Abs(s.Score-1/(1+math.Exp(-want))) > 1e-6 {
			t.Errorf("Score[%d] = %+v, want logit %v", k, s, want)
		}
	}

	got, err := r.Rerank(ctx, testQuery, testPassages, RerankOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(testPassages) {
		t.Fatalf("%d results for %d passages", len(got), len(testPassages))
	}
	seen := map[int]bool{}
	for k, g := range got {
		want := float64(pairLogits(t, full, testQuery, testPassages[g.Index])[0])
		if math.Abs(g.Logit-want) > 1e-5 || g.Text != testPassages[g.Index] {
			t.Errorf("result %d: %+v, want logit %v", k, g, want)
		}
		if k > 0 && g.Score > got[k-1].Score {
			t.Errorf("result %d scores %v above result %d's %v", k, g.Score, k-1, got[k-1].Score)
		}
		seen[g.Index] = true
	}
	if len(seen) != len(testPassages) {
		t.Errorf("indexes %v", got)
	}
	// The duplicate passages 2 and 4 tie and keep their input order. One
	// pair per batch makes their logits bit-identical (in batches of
	// different shapes they may differ in the last bit).
	one, err := NewReranker(ctx, dir, &Options{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	ties, err := one.Rerank(ctx, testQuery, testPassages, RerankOptions{})
	if err != nil {
		t.Fatal(err)
	}
	i2 := slices.IndexFunc(ties, func(g RerankResult) bool { return g.Index == 2 })
	if i2 < 0 || i2+1 >= len(ties) || ties[i2+1].Index != 4 || ties[i2].Score != ties[i2+1].Score {
		t.Errorf("tied passages 2 and 4: %v", ties)
	}

	top, err := r.Rerank(ctx, testQuery, testPassages, RerankOptions{TopK: 2})
	if err != nil || len(top) != 2 || top[0] != got[0] || top[1] != got[1] {
		t.Errorf("TopK 2: %v %v", top, err)
	}
	if _, err := r.Rerank(ctx, testQuery, testPassages, RerankOptions{TopK: -1}); err == nil {
		t.Error("negative TopK accepted")
	}
	none, err := r.Rerank(ctx, testQuery, nil, RerankOptions{})
	if err != nil || len(none) != 0 {
		t.Errorf("no passages: %v %v", none, err)
	}

	for _, act := range []Activation{ActivationIdentity, "torch.nn.modules.linear.Identity", ActivationTanh, ActivationReLU, ActivationLogSigmoid, "Tanh"} {
		res, err := r.Score(ctx, [][2]string{{testQuery, testPassages[0]}}, RerankOptions{Activation: act})
		if err != nil {
			t.Fatal(err)
		}
		x := res[0].Logit
		want := map[Activation]float64{"identity": x, "torch.nn.modules.linear.Identity": x, "tanh": math.Tanh(x), "Tanh": math.Tanh(x), "relu": max(x, 0), "logsigmoid": math.Log(1 / (1 + math.Exp(-x)))}[act]
		if math.Abs(res[0].Score-want) > 1e-9 {
			t.Errorf("%s: score %v, want %v", act, res[0].Score, want)
		}
	}
	if _, err := r.Score(ctx, [][2]string{{"a", "b"}}, RerankOptions{Activation: "gelu"}); !errors.Is(err, arch.ErrUnsupported) {
		t.Errorf("unknown activation: %v", err)
	}
}

// The activation comes from config.json as CrossEncoder reads it.
func TestRerankerActivationFromConfig(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		edit func(cfg map[string]any)
		want Activation // "" for an error at scoring time
	}{
		{"identity", func(cfg map[string]any) {
			cfg["sentence_transformers"] = map[string]any{"activation_fn": "torch.nn.modules.linear.Identity"}
		}, "identity"},
		{"absent", func(cfg map[string]any) { delete(cfg, "sentence_transformers") }, "sigmoid"},
		{"null", func(cfg map[string]any) { cfg["sentence_transformers"] = map[string]any{"activation_fn": nil} }, "sigmoid"},
		{"legacy key", func(cfg map[string]any) {
			delete(cfg, "sentence_transformers")
			cfg["sbert_ce_default_activation_function"] = "torch.nn.modules.activation.Tanh"
		}, "tanh"},
		// Without trust_remote_code CrossEncoder ignores a class outside
		// torch and uses the default.
		{"custom class", func(cfg map[string]any) {
			cfg["sentence_transformers"] = map[string]any{"activation_fn": "my_module.Scaled"}
		}, "sigmoid"},
		{"unknown torch class", func(cfg map[string]any) {
			cfg["sentence_transformers"] = map[string]any{"activation_fn": "torch.nn.modules.activation.GELU"}
		}, ""},
	} {
		dir := filepath.Join(t.TempDir(), "m")
		deriveFolder(t, dir, 1, func(cfg map[string]any) {
			cfg["id2label"] = map[string]any{"0": "LABEL_0"}
			cfg["label2id"] = map[string]any{"LABEL_0": 0}
			c.edit(cfg)
		})
		r, err := NewReranker(ctx, dir, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		act, err := r.Activation()
		res, serr := r.Score(ctx, [][2]string{{"a", "b"}}, RerankOptions{})
		if c.want == "" {
			if !errors.Is(err, arch.ErrUnsupported) || !errors.Is(serr, arch.ErrUnsupported) || !strings.Contains(serr.Error(), "GELU") {
				t.Errorf("%s: %q %v; Score: %v", c.name, act, err, serr)
			}
			// An explicit activation still works.
			if _, err := r.Score(ctx, [][2]string{{"a", "b"}}, RerankOptions{Activation: "sigmoid"}); err != nil {
				t.Errorf("%s: override: %v", c.name, err)
			}
		} else if act != c.want || err != nil || serr != nil || math.Abs(res[0].Score-activate(c.want, res[0].Logit)) > 1e-12 {
			t.Errorf("%s: activation %q %v, want %q; Score %v %v", c.name, act, err, c.want, res, serr)
		}
		r.Close()
	}
}

// A model that is not a one-label classifier is refused before use.
func TestRerankerRefuses(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []string{"bert-cls", "bert-mlm"} {
		r, err := NewReranker(ctx, filepath.Join("testdata", dir), nil)
		if !errors.Is(err, arch.ErrUnsupported) {
			t.Errorf("%s: %v", dir, err)
		}
		if r != nil {
			r.Close()
		}
	}
}

// Pairs longer than the model's 64 positions are cut, longest_first: the
// passage loses its end, so words past the cut change nothing.
func TestRerankerTruncates(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "rerank")
	deriveReranker(t, dir)
	r, err := NewReranker(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	long := strings.Repeat("Berlin is the capital of Germany. ", 30)
	res, err := r.Score(ctx, [][2]string{{testQuery, long}, {testQuery, long + "The quick brown fox jumps over the lazy dog."}, {testQuery, "Berlin"}}, RerankOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res[0].Logit-res[1].Logit) > 1e-5 {
		t.Errorf("the cut-off end changed the logit: %v vs %v", res[0].Logit, res[1].Logit)
	}
	if res[0].Logit == res[2].Logit {
		t.Error("the long passage scored as a short one")
	}
}

func TestRerankerConcurrentAndClosed(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "rerank")
	deriveReranker(t, dir)
	r, err := NewReranker(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.Rerank(ctx, testQuery, testPassages, RerankOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			got, err := r.Rerank(ctx, testQuery, testPassages, RerankOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			for k := range got {
				if got[k].Index != want[k].Index || math.Abs(got[k].Score-want[k].Score) > 1e-6 {
					t.Errorf("concurrent result %d: %+v, want %+v", k, got[k], want[k])
				}
			}
		})
	}
	wg.Wait()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Rerank(cctx, testQuery, testPassages, RerankOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
	r.Close()
	if _, err := r.Rerank(ctx, testQuery, testPassages, RerankOptions{}); !errors.Is(err, arch.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// Equal scores keep their input order (Python's stable sorted), compared
// as float32 like torch's scores.
func TestSortRerank(t *testing.T) {
	res := []RerankResult{{Index: 0, Score: 0.5}, {Index: 1, Score: 1}, {Index: 2, Score: 0.5}, {Index: 3, Score: 1 - 1e-12}, {Index: 4, Score: 0.9}}
	sortRerank(res)
	var order []int
	for _, r := range res {
		order = append(order, r.Index)
	}
	if !slices.Equal(order, []int{1, 3, 4, 0, 2}) {
		t.Errorf("order %v", order)
	}
}

func TestRerankFixture(t *testing.T) {
	dir := filepath.Join(fixturesDir(t), "models", "cross-encoder")
	var ref struct {
		Rerank []struct {
			Query     string    `json:"query"`
			Documents []string  `json:"documents"`
			Logits    []float64 `json:"logits"`
			Scores    []float64 `json:"scores"`
			Result    []struct {
				CorpusID int     `json:"corpus_id"`
				Score    float64 `json:"score"`
				Logit    float64 `json:"logit"`
				Text     string  `json:"text"`
			} `json:"result"`
		} `json:"rerank"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Skipf("no cross-encoder fixture in $EMBRACE_SHARED_FIXTURES or ../shared/fixtures: %v", err)
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := NewReranker(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(ref.Rerank) == 0 {
		t.Fatal("no rerank entries")
	}
	for i, e := range ref.Rerank {
		got, err := r.Rerank(ctx, e.Query, e.Documents, RerankOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(e.Result) {
			t.Fatalf("rerank[%d]: %d results, want %d", i, len(got), len(e.Result))
		}
		for k, w := range e.Result {
			g := got[k]
			if g.Index != w.CorpusID || g.Text != w.Text {
				t.Errorf("rerank[%d][%d]: %d %q, want %d", i, k, g.Index, g.Text, w.CorpusID)
			}
			closeScore(t, "score", g.Score, w.Score)
			closeScore(t, "logit", g.Logit, w.Logit)
			closeScore(t, "score in input order", g.Score, e.Scores[g.Index])
			closeScore(t, "logit in input order", g.Logit, e.Logits[g.Index])
		}
	}
}
