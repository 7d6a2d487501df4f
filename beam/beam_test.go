package beam

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	beam "github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/tokenizer"
)

const (
	sentenceModel   = "../pipeline/testdata/minilm-st"
	classifierModel = "../pipeline/testdata/bert-cls"
)

func TestMain(m *testing.M) {
	// Prism in this process, with the SDK worker in loopback mode: the
	// sinks below see what the DoFns emit.
	ptest.MainWithDefault(m, "prism")
}

// The sinks collect a job's outputs in this process, by test name.
var (
	sinkMu  sync.Mutex
	gotEmb  = map[string][]Embedding{}
	gotCls  = map[string][]Classification{}
	gotDead = map[string][]DeadLetter{}
)

type embSink struct{ Key string }

func (f *embSink) ProcessElement(e Embedding) {
	sinkMu.Lock()
	defer sinkMu.Unlock()
	gotEmb[f.Key] = append(gotEmb[f.Key], e)
}

type clsSink struct{ Key string }

func (f *clsSink) ProcessElement(c Classification) {
	sinkMu.Lock()
	defer sinkMu.Unlock()
	gotCls[f.Key] = append(gotCls[f.Key], c)
}

type deadSink struct{ Key string }

func (f *deadSink) ProcessElement(d DeadLetter) {
	sinkMu.Lock()
	defer sinkMu.Unlock()
	gotDead[f.Key] = append(gotDead[f.Key], d)
}

func init() {
	register.DoFn1x0[Embedding](&embSink{})
	register.DoFn1x0[Classification](&clsSink{})
	register.DoFn1x0[DeadLetter](&deadSink{})
}

// corpus makes n records of varied lengths; every 97th is longer than the
// test model's 64 tokens.
func corpus(n int) []Record {
	words := strings.Fields("the quick brown fox jumps over a lazy dog while seven wizards quietly hex bold jugglers near river banks at dawn")
	recs := make([]Record, n)
	for i := range recs {
		k := 3 + (i*7)%23
		if i%97 == 5 {
			k = 90 + i%40
		}
		var b strings.Builder
		for j := 0; j < k; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[(i*13+j*5)%len(words)])
		}
		fmt.Fprintf(&b, " %d", i)
		recs[i] = Record{ID: fmt.Sprintf("doc-%04d", i), Text: b.String(), Metadata: map[string]string{"n": fmt.Sprint(i)}}
	}
	return recs
}

// badRecords are rejected whatever the truncation setting.
func badRecords() []Record {
	return []Record{
		{ID: "bad-utf8", Text: "caf\xe9 au lait"},
		{ID: "bad-empty", Text: ""},
		{ID: "bad-blank", Text: " \t\n"},
	}
}

func counters(t *testing.T, res beam.PipelineResult) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	if res == nil {
		t.Fatal("the runner returned no metrics")
	}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "embrace" {
			out[c.Name()] += c.Result()
		}
	}
	return out
}

// tokenCounts counts tokens with the model's tokenizer, untruncated.
func tokenCounts(t *testing.T, dir string, texts []string) []int {
	t.Helper()
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok = tok.WithTruncation(nil)
	out := make([]int, len(texts))
	for i, s := range texts {
		enc, err := tok.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = len(enc.IDs)
	}
	return out
}

func runEmbed(t *testing.T, key string, recs []Record, cfg EmbedConfig) beam.PipelineResult {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	col := beam.Reshuffle(s, beam.CreateList(s, recs))
	emb, dead, err := Embed(s, col, cfg)
	if err != nil {
		t.Fatal(err)
	}
	beam.ParDo0(s, &embSink{Key: key}, emb)
	beam.ParDo0(s, &deadSink{Key: key}, dead)
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEmbedMatchesLibrary(t *testing.T) {
	ctx := context.Background()
	good := corpus(1000)
	recs := append(append([]Record(nil), good...), badRecords()...)
	loadsBefore := modelLoads()
	res := runEmbed(t, t.Name(), recs, EmbedConfig{ModelConfig{Model: sentenceModel, BatchSize: 16, TokenBudget: 600, Truncate: true}})
	if n := modelLoads() - loadsBefore; n > 1 {
		t.Errorf("the model was loaded %d times in one process, want once", n)
	}

	lib, err := pipeline.NewSentenceEmbedder(ctx, sentenceModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	texts := make([]string, len(good))
	for i, r := range good {
		texts[i] = r.Text
	}
	want, err := lib.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}

	sinkMu.Lock()
	got, dead := gotEmb[t.Name()], gotDead[t.Name()]
	sinkMu.Unlock()
	if len(got) != len(good) {
		t.Fatalf("%d embeddings out of %d good records", len(got), len(good))
	}
	byID := map[string]Embedding{}
	for _, e := range got {
		if _, dup := byID[e.ID]; dup {
			t.Fatalf("ID %s twice in the output", e.ID)
		}
		byID[e.ID] = e
	}
	counts := tokenCounts(t, sentenceModel, texts)
	maxLen := lib.MaxSeqLength()
	var wantTokens, wantTruncated int64
	for i, r := range good {
		e, ok := byID[r.ID]
		if !ok {
			t.Fatalf("no embedding for %s", r.ID)
		}
		if len(e.Vector) != len(want[i]) {
			t.Fatalf("%s: vector of %d, want %d", r.ID, len(e.Vector), len(want[i]))
		}
		for j := range e.Vector {
			if d := math.Abs(float64(e.Vector[j] - want[i][j])); d > 1e-6 {
				t.Fatalf("%s: vector[%d] = %g, the library gives %g", r.ID, j, e.Vector[j], want[i][j])
			}
		}
		if e.Metadata["n"] != r.Metadata["n"] {
			t.Errorf("%s: metadata %v, want %v", r.ID, e.Metadata, r.Metadata)
		}
		wantTok := min(counts[i], maxLen)
		if e.Tokens != wantTok || e.Truncated != (counts[i] > maxLen) {
			t.Errorf("%s: tokens %d truncated %v, want %d %v", r.ID, e.Tokens, e.Truncated, wantTok, counts[i] > maxLen)
		}
		wantTokens += int64(wantTok)
		if counts[i] > maxLen {
			wantTruncated++
		}
	}
	if wantTruncated == 0 {
		t.Fatal("the corpus has no text over the model's limit: the truncation path is untested")
	}
	checkDead(t, dead, map[string]string{"bad-utf8": "invalid UTF-8", "bad-empty": "empty text", "bad-blank": "empty text"})

	c := counters(t, res)
	wantC := map[string]int64{"texts": int64(len(good)), "tokens": wantTokens, "truncated_texts": wantTruncated, "dead_letters": 3}
	for name, v := range wantC {
		if c[name] != v {
			t.Errorf("counter %s = %d, want %d", name, c[name], v)
		}
	}
}

func checkDead(t *testing.T, dead []DeadLetter, want map[string]string) {
	t.Helper()
	if len(dead) != len(want) {
		t.Errorf("%d dead letters, want %d: %+v", len(dead), len(want), dead)
	}
	for _, d := range dead {
		w, ok := want[d.ID]
		if !ok {
			t.Errorf("unexpected dead letter %+v", d)
			continue
		}
		if !strings.Contains(d.Reason, w) {
			t.Errorf("dead letter %s: reason %q, want it to say %q", d.ID, d.Reason, w)
		}
	}
}

func TestEmbedTooLongWithoutTruncation(t *testing.T) {
	recs := corpus(200)
	counts := tokenCounts(t, sentenceModel, func() []string {
		out := make([]string, len(recs))
		for i, r := range recs {
			out[i] = r.Text
		}
		return out
	}())
	wantDead := map[string]string{}
	for i, r := range recs {
		if counts[i] > 64 {
			wantDead[r.ID] = "too long"
		}
	}
	if len(wantDead) == 0 {
		t.Fatal("no long text in the corpus")
	}
	res := runEmbed(t, t.Name(), recs, EmbedConfig{ModelConfig{Model: sentenceModel, Truncate: false}})
	sinkMu.Lock()
	got, dead := gotEmb[t.Name()], gotDead[t.Name()]
	sinkMu.Unlock()
	if len(got)+len(dead) != len(recs) || len(got) != len(recs)-len(wantDead) {
		t.Errorf("%d embedded and %d dead of %d records, want %d dead", len(got), len(dead), len(recs), len(wantDead))
	}
	for _, e := range got {
		if e.Truncated || e.Tokens > 64 {
			t.Errorf("%s: tokens %d truncated %v with truncation off", e.ID, e.Tokens, e.Truncated)
		}
	}
	checkDead(t, dead, wantDead)
	c := counters(t, res)
	if c["truncated_texts"] != 0 || c["dead_letters"] != int64(len(wantDead)) || c["texts"] != int64(len(got)) {
		t.Errorf("counters %v, want %d texts, %d dead letters, no truncated text", c, len(got), len(wantDead))
	}
}

func TestClassifyMatchesLibrary(t *testing.T) {
	ctx := context.Background()
	good := corpus(120)
	recs := append(append([]Record(nil), good...), badRecords()...)
	p, s := beam.NewPipelineWithRoot()
	cls, dead, err := Classify(s, beam.CreateList(s, recs), ClassifyConfig{ModelConfig: ModelConfig{Model: classifierModel, BatchSize: 8, Truncate: true}, TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	beam.ParDo0(s, &clsSink{Key: t.Name()}, cls)
	beam.ParDo0(s, &deadSink{Key: t.Name()}, dead)
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}

	lib, err := pipeline.NewTextClassifier(ctx, classifierModel, &pipeline.Options{Truncation: pipeline.TruncateOn})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	texts := make([]string, len(good))
	for i, r := range good {
		texts[i] = r.Text
	}
	want, err := lib.Classify(ctx, texts, pipeline.ClassifyOptions{TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	sinkMu.Lock()
	got, gotDeadL := gotCls[t.Name()], gotDead[t.Name()]
	sinkMu.Unlock()
	byID := map[string]Classification{}
	for _, c := range got {
		byID[c.ID] = c
	}
	if len(got) != len(good) || len(byID) != len(good) {
		t.Fatalf("%d classifications (%d IDs) of %d good records", len(got), len(byID), len(good))
	}
	for i, r := range good {
		c := byID[r.ID]
		if len(c.Labels) != len(want[i]) {
			t.Fatalf("%s: %d labels, want %d", r.ID, len(c.Labels), len(want[i]))
		}
		for j, l := range c.Labels {
			if l.Label != want[i][j].Label || math.Abs(l.Score-want[i][j].Score) > 1e-6 {
				t.Fatalf("%s: label %d = %+v, the library gives %+v", r.ID, j, l, want[i][j])
			}
		}
	}
	checkDead(t, gotDeadL, map[string]string{"bad-utf8": "invalid UTF-8", "bad-empty": "empty text", "bad-blank": "empty text"})
	if c := counters(t, res); c["texts"] != int64(len(good)) || c["dead_letters"] != 3 || c["truncated_texts"] == 0 {
		t.Errorf("counters %v, want %d texts, 3 dead letters, some truncated", c, len(good))
	}
}

func TestConfigErrors(t *testing.T) {
	_, s := beam.NewPipelineWithRoot()
	recs := beam.CreateList(s, corpus(2))
	strs := beam.CreateList(s, []string{"a"})
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"no model", func() error { _, _, err := Embed(s, recs, EmbedConfig{}); return err }, "no model"},
		{"negative batch", func() error {
			_, _, err := Embed(s, recs, EmbedConfig{ModelConfig{Model: sentenceModel, BatchSize: -1}})
			return err
		}, "negative batch size"},
		{"wrong input", func() error {
			_, _, err := Embed(s, strs, EmbedConfig{ModelConfig{Model: sentenceModel}})
			return err
		}, "want beam.Record"},
		{"bad function", func() error {
			_, _, err := Classify(s, recs, ClassifyConfig{ModelConfig: ModelConfig{Model: classifierModel}, Function: "relu"})
			return err
		}, "unknown function"},
	}
	for _, c := range cases {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}

func TestMissingModelFailsTheJob(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	emb, _, err := Embed(s, beam.CreateList(s, corpus(3)), EmbedConfig{ModelConfig{Model: "testdata/no-such-model"}})
	if err != nil {
		t.Fatal(err)
	}
	beam.ParDo0(s, &embSink{Key: t.Name()}, emb)
	if err := ptest.Run(p); err == nil || !strings.Contains(err.Error(), "no-such-model") {
		t.Errorf("job error %v, want one naming the model", err)
	}
}

func TestCacheSharesOneLoad(t *testing.T) {
	ctx := context.Background()
	before := modelLoads()
	var wg sync.WaitGroup
	ms := make([]*loaded, 8)
	errs := make([]error, 8)
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms[i], errs[i] = acquire(ctx, kindEmbed, sentenceModel+"/")
		}()
	}
	wg.Wait()
	for i := range ms {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if ms[i] != ms[0] {
			t.Fatal("two copies of one model in the cache")
		}
	}
	if n := modelLoads() - before; n != 1 {
		t.Errorf("%d loads for 8 concurrent users, want 1", n)
	}
	for range ms {
		release(kindEmbed, sentenceModel+"/")
	}
	cacheMu.Lock()
	_, still := cache[cacheKey(kindEmbed, sentenceModel+"/")]
	cacheMu.Unlock()
	if still {
		t.Error("the model stays cached after its last user released it")
	}
	if _, err := acquire(ctx, kindEmbed, "testdata/no-such-model"); err == nil {
		t.Error("acquire of a missing folder succeeded")
	}
	cacheMu.Lock()
	_, cached := cache[cacheKey(kindEmbed, "testdata/no-such-model")]
	cacheMu.Unlock()
	if cached {
		t.Error("a failed load stays in the cache")
	}
}

func TestBatcherBounds(t *testing.T) {
	b := batcher{cfg: ModelConfig{BatchSize: 4, TokenBudget: 100}}
	var batches [][]int
	add := func(tokens int) {
		if ready := b.add(item{tokens: tokens}); ready != nil {
			var ts []int
			for _, it := range ready {
				ts = append(ts, it.tokens)
			}
			batches = append(batches, ts)
		}
	}
	for _, n := range []int{10, 10, 10, 10, 30, 30, 30, 150, 5} {
		add(n)
	}
	got := fmt.Sprint(batches, len(b.take()))
	// Four of 10 fill the batch size; three of 30 would pad to 90, a
	// fourth to 120 > 100; 150 goes alone; 5 is left for FinishBundle.
	if want := "[[10 10 10 10] [30 30 30] [150]] 1"; got != want {
		t.Errorf("batches %s, want %s", got, want)
	}
}
