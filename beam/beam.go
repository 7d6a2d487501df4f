// Package beam runs Embrace's encoder pipelines as Apache Beam transforms,
// for corpus-scale jobs on any Beam runner: Prism locally, Dataflow, Flink
// and Spark through their job servers.
//
// Embed turns a PCollection of Record into a PCollection of Embedding, and
// Classify into a PCollection of Classification. Each also returns a
// PCollection of DeadLetter: records that cannot be processed (invalid
// UTF-8, empty text, a text longer than the model takes while truncation
// is off) go there with the reason, and the job goes on.
//
// A worker process loads each model once, on first use by a DoFn's Setup,
// and shares it between all its bundles and threads; the last DoFn
// instance to tear down closes it. Inside a bundle, texts are batched up to
// a batch size and a token budget before they go through the model, and
// tokenized with the model's own tokenizer and truncation.
//
// Beam counters in the namespace "embrace" report, per transform, the texts
// that went through the model ("texts"), their tokens after truncation
// ("tokens"), the texts truncated ("truncated_texts") and the records sent
// to the dead letters ("dead_letters").
package beam

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"unicode/utf8"

	beam "github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/embrace-go/embrace/pipeline"
)

// Record is one document to process.
type Record struct {
	// ID identifies the record in the outputs; Embrace does not check that
	// IDs are unique.
	ID string `json:"id"`
	// Text is the document, valid UTF-8.
	Text string `json:"text"`
	// Metadata is carried through to the outputs unchanged.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Embedding is a record's sentence embedding.
type Embedding struct {
	ID       string            `json:"id"`
	Vector   []float32         `json:"vector"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Tokens is how many tokens the model saw (after truncation, special
	// tokens included); Truncated says whether the text was cut to fit.
	Tokens    int  `json:"tokens"`
	Truncated bool `json:"truncated,omitempty"`
}

// LabelScore is one label with its score.
type LabelScore struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// Classification is a record's labels, best first.
type Classification struct {
	ID        string            `json:"id"`
	Labels    []LabelScore      `json:"labels"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Tokens    int               `json:"tokens"`
	Truncated bool              `json:"truncated,omitempty"`
}

// DeadLetter is a record that could not be processed, with the reason.
type DeadLetter struct {
	ID       string            `json:"id"`
	Text     string            `json:"text"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Reason   string            `json:"reason"`
}

// Defaults of ModelConfig.
const (
	DefaultBatchSize   = 32
	DefaultTokenBudget = 8192
)

// ModelConfig says which model a transform runs and how it batches.
type ModelConfig struct {
	// Model is a local folder or a Hugging Face Hub repo id ("org/name",
	// optionally "org/name@revision"), resolved on each worker: a folder
	// must exist there (baked into the worker's container or on a mounted
	// disk); a Hub id is fetched into the worker's Hugging Face cache
	// (HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE apply).
	Model string
	// BatchSize is the most texts one forward pass takes (default
	// DefaultBatchSize).
	BatchSize int
	// TokenBudget bounds a forward pass's padded size: texts × the longest
	// text's tokens (default DefaultTokenBudget). A text longer than the
	// budget goes through alone.
	TokenBudget int
	// Truncate cuts texts longer than the model takes to its limit, as the
	// library does; false sends them to the dead letters instead.
	Truncate bool
}

func (c ModelConfig) check(what string) error {
	switch {
	case strings.TrimSpace(c.Model) == "":
		return fmt.Errorf("embrace/beam: %s: no model given", what)
	case c.BatchSize < 0:
		return fmt.Errorf("embrace/beam: %s: negative batch size %d", what, c.BatchSize)
	case c.TokenBudget < 0:
		return fmt.Errorf("embrace/beam: %s: negative token budget %d", what, c.TokenBudget)
	}
	return nil
}

func (c ModelConfig) batchSize() int {
	if c.BatchSize == 0 {
		return DefaultBatchSize
	}
	return c.BatchSize
}

func (c ModelConfig) tokenBudget() int {
	if c.TokenBudget == 0 {
		return DefaultTokenBudget
	}
	return c.TokenBudget
}

// EmbedConfig configures Embed.
type EmbedConfig struct {
	ModelConfig
}

// ClassifyConfig configures Classify.
type ClassifyConfig struct {
	ModelConfig
	// TopK is how many labels to keep per record, best first; 0 keeps all.
	TopK int
	// Function turns logits into scores: "softmax", "sigmoid", "none", or
	// empty to pick it from the model's config as the library does.
	Function string
}

// Counters, in the namespace "embrace".
var (
	textsCounter     = beam.NewCounter("embrace", "texts")
	tokensCounter    = beam.NewCounter("embrace", "tokens")
	truncatedCounter = beam.NewCounter("embrace", "truncated_texts")
	deadCounter      = beam.NewCounter("embrace", "dead_letters")
)

func init() {
	register.DoFn4x1[context.Context, Record, func(Embedding), func(DeadLetter), error](&embedFn{})
	register.DoFn4x1[context.Context, Record, func(Classification), func(DeadLetter), error](&classifyFn{})
	register.Emitter1[Embedding]()
	register.Emitter1[Classification]()
	register.Emitter1[DeadLetter]()
	beam.RegisterType(reflect.TypeOf((*Record)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Embedding)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Classification)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*DeadLetter)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*LabelScore)(nil)).Elem())
}

var recordType = reflect.TypeOf(Record{})

func checkInput(what string, records beam.PCollection) error {
	if !records.IsValid() {
		return fmt.Errorf("embrace/beam: %s: invalid input PCollection", what)
	}
	if t := records.Type().Type(); t != recordType {
		return fmt.Errorf("embrace/beam: %s: the input holds %v, want beam.Record", what, t)
	}
	return nil
}

// Embed gives every record its sentence embedding, as
// pipeline.SentenceEmbedder.Embed computes it. records is a PCollection of
// Record; embedded holds Embedding values and dead DeadLetter values.
func Embed(s beam.Scope, records beam.PCollection, cfg EmbedConfig) (embedded, dead beam.PCollection, err error) {
	if err := cfg.check("Embed"); err != nil {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	if err := checkInput("Embed", records); err != nil {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	s = s.Scope("embrace.Embed")
	outs, err := beam.TryParDo(s, &embedFn{Cfg: cfg}, records)
	if err != nil {
		return beam.PCollection{}, beam.PCollection{}, fmt.Errorf("embrace/beam: Embed: %w", err)
	}
	return outs[0], outs[1], nil
}

// Classify labels every record, as pipeline.TextClassifier.Classify does.
// records is a PCollection of Record; classified holds Classification
// values and dead DeadLetter values.
func Classify(s beam.Scope, records beam.PCollection, cfg ClassifyConfig) (classified, dead beam.PCollection, err error) {
	if err := cfg.check("Classify"); err != nil {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	switch cfg.Function {
	case "", "softmax", "sigmoid", "none":
	default:
		return beam.PCollection{}, beam.PCollection{}, fmt.Errorf("embrace/beam: Classify: unknown function %q (want softmax, sigmoid or none)", cfg.Function)
	}
	if cfg.TopK < 0 {
		return beam.PCollection{}, beam.PCollection{}, fmt.Errorf("embrace/beam: Classify: negative TopK %d", cfg.TopK)
	}
	if err := checkInput("Classify", records); err != nil {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	s = s.Scope("embrace.Classify")
	outs, err := beam.TryParDo(s, &classifyFn{Cfg: cfg}, records)
	if err != nil {
		return beam.PCollection{}, beam.PCollection{}, fmt.Errorf("embrace/beam: Classify: %w", err)
	}
	return outs[0], outs[1], nil
}

// item is a record admitted to a batch.
type item struct {
	rec       Record
	tokens    int // after truncation
	truncated bool
}

// batcher collects a bundle's admitted records into batches bounded by the
// batch size and the token budget.
type batcher struct {
	m       *loaded
	cfg     ModelConfig
	buf     []item
	longest int
}

// admit checks a record and counts its tokens; a record that cannot be
// processed goes to dead and admit returns false.
func (b *batcher) admit(ctx context.Context, r Record, dead func(DeadLetter)) (item, bool) {
	reject := func(reason string) (item, bool) {
		deadCounter.Inc(ctx, 1)
		dead(DeadLetter{ID: r.ID, Text: r.Text, Metadata: r.Metadata, Reason: reason})
		return item{}, false
	}
	switch {
	case !utf8.ValidString(r.Text):
		return reject("invalid UTF-8 in the text")
	case strings.TrimSpace(r.Text) == "":
		return reject("empty text")
	}
	n, err := b.m.countTokens(r.Text)
	if err != nil {
		return reject("tokenizer: " + err.Error())
	}
	it := item{rec: r, tokens: n}
	if n > b.m.maxLen {
		if !b.cfg.Truncate {
			return reject(fmt.Sprintf("too long: %d tokens, the model takes at most %d and truncation is off", n, b.m.maxLen))
		}
		it.tokens, it.truncated = b.m.maxLen, true
	}
	return it, true
}

// add queues it, and returns the batch to run first when it does not fit
// beside the queued ones, or the queue when it is full.
func (b *batcher) add(it item) (ready []item) {
	budget := b.cfg.tokenBudget()
	if len(b.buf) > 0 && (len(b.buf)+1)*max(b.longest, it.tokens) > budget {
		ready = b.take()
	}
	b.buf = append(b.buf, it)
	b.longest = max(b.longest, it.tokens)
	if ready == nil && len(b.buf) >= b.cfg.batchSize() {
		ready = b.take()
	}
	return ready
}

// take empties the queue and returns what it held.
func (b *batcher) take() []item {
	out := b.buf
	b.buf, b.longest = nil, 0
	return out
}

// run sends batch through fn; when a batch fails, each record is retried
// alone so that only the ones that fail by themselves go to dead. A
// cancelled context fails the bundle instead.
func run(ctx context.Context, batch []item, fn func([]item) error, dead func(DeadLetter)) error {
	if len(batch) == 0 {
		return nil
	}
	err := fn(batch)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if len(batch) == 1 {
		r := batch[0].rec
		deadCounter.Inc(ctx, 1)
		dead(DeadLetter{ID: r.ID, Text: r.Text, Metadata: r.Metadata, Reason: "model: " + err.Error()})
		return nil
	}
	for i := range batch {
		if err := run(ctx, batch[i:i+1], fn, dead); err != nil {
			return err
		}
	}
	return nil
}

// forwardSlots bounds the forward passes running at once in this process
// to GOMAXPROCS, whatever the number of bundles the runner runs in
// parallel: the library already spreads each pass over the cores, and more
// passes at once only make them contend.
var forwardSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// forward runs fn in a forward-pass slot.
func forward(ctx context.Context, fn func() error) error {
	select {
	case forwardSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-forwardSlots }()
	return fn()
}

// truncated takes each text's truncation from the library's own report
// (the token count decided it beforehand only to refuse texts when
// truncation is off).
func truncated(batch []item, infos []pipeline.InputInfo) {
	for i := range batch {
		if i < len(infos) {
			batch[i].truncated = infos[i].Truncated
		}
	}
}

func count(ctx context.Context, batch []item) {
	textsCounter.Inc(ctx, int64(len(batch)))
	var tokens, truncated int64
	for _, it := range batch {
		tokens += int64(it.tokens)
		if it.truncated {
			truncated++
		}
	}
	tokensCounter.Inc(ctx, tokens)
	if truncated > 0 {
		truncatedCounter.Inc(ctx, truncated)
	}
}

func texts(batch []item) []string {
	out := make([]string, len(batch))
	for i, it := range batch {
		out[i] = it.rec.Text
	}
	return out
}

var errNotSetUp = errors.New("embrace/beam: DoFn used before Setup")

// embedFn is Embed's DoFn. Cfg is serialized with the pipeline; the rest
// lives in the worker.
type embedFn struct {
	Cfg EmbedConfig
	b   batcher
}

// Setup takes the model from the process cache, loading it on first use.
func (f *embedFn) Setup(ctx context.Context) error {
	m, err := acquire(ctx, kindEmbed, f.Cfg.Model)
	if err != nil {
		return err
	}
	f.b = batcher{m: m, cfg: f.Cfg.ModelConfig}
	return nil
}

// StartBundle drops whatever a failed bundle left queued.
func (f *embedFn) StartBundle(context.Context, func(Embedding), func(DeadLetter)) {
	f.b.take()
}

// ProcessElement queues a record and runs a batch when one is ready.
func (f *embedFn) ProcessElement(ctx context.Context, r Record, emit func(Embedding), dead func(DeadLetter)) error {
	if f.b.m == nil {
		return errNotSetUp
	}
	it, ok := f.b.admit(ctx, r, dead)
	if !ok {
		return nil
	}
	return f.flush(ctx, f.b.add(it), emit, dead)
}

// FinishBundle runs the last, partial batch.
func (f *embedFn) FinishBundle(ctx context.Context, emit func(Embedding), dead func(DeadLetter)) error {
	return f.flush(ctx, f.b.take(), emit, dead)
}

func (f *embedFn) flush(ctx context.Context, batch []item, emit func(Embedding), dead func(DeadLetter)) error {
	return run(ctx, batch, func(batch []item) error {
		var vecs [][]float32
		var infos []pipeline.InputInfo
		err := forward(ctx, func() (err error) {
			vecs, infos, err = f.b.m.embedder.EmbedWithInfo(ctx, texts(batch))
			return err
		})
		if err != nil {
			return err
		}
		truncated(batch, infos)
		count(ctx, batch)
		for i, it := range batch {
			emit(Embedding{ID: it.rec.ID, Vector: vecs[i], Metadata: it.rec.Metadata, Tokens: it.tokens, Truncated: it.truncated})
		}
		return nil
	}, dead)
}

// Teardown returns the model to the process cache.
func (f *embedFn) Teardown() error {
	if f.b.m != nil {
		f.b.m = nil
		release(kindEmbed, f.Cfg.Model)
	}
	return nil
}

// classifyFn is Classify's DoFn.
type classifyFn struct {
	Cfg ClassifyConfig
	b   batcher
}

// Setup takes the model from the process cache, loading it on first use.
func (f *classifyFn) Setup(ctx context.Context) error {
	m, err := acquire(ctx, kindClassify, f.Cfg.Model)
	if err != nil {
		return err
	}
	f.b = batcher{m: m, cfg: f.Cfg.ModelConfig}
	return nil
}

// StartBundle drops whatever a failed bundle left queued.
func (f *classifyFn) StartBundle(context.Context, func(Classification), func(DeadLetter)) {
	f.b.take()
}

// ProcessElement queues a record and runs a batch when one is ready.
func (f *classifyFn) ProcessElement(ctx context.Context, r Record, emit func(Classification), dead func(DeadLetter)) error {
	if f.b.m == nil {
		return errNotSetUp
	}
	it, ok := f.b.admit(ctx, r, dead)
	if !ok {
		return nil
	}
	return f.flush(ctx, f.b.add(it), emit, dead)
}

// FinishBundle runs the last, partial batch.
func (f *classifyFn) FinishBundle(ctx context.Context, emit func(Classification), dead func(DeadLetter)) error {
	return f.flush(ctx, f.b.take(), emit, dead)
}

func (f *classifyFn) flush(ctx context.Context, batch []item, emit func(Classification), dead func(DeadLetter)) error {
	opt := pipeline.ClassifyOptions{TopK: f.Cfg.TopK, Function: pipeline.ClassifyFunction(f.Cfg.Function)}
	return run(ctx, batch, func(batch []item) error {
		var res [][]pipeline.LabelScore
		var infos []pipeline.InputInfo
		err := forward(ctx, func() (err error) {
			res, infos, err = f.b.m.classifier.ClassifyWithInfo(ctx, texts(batch), opt)
			return err
		})
		if err != nil {
			return err
		}
		truncated(batch, infos)
		count(ctx, batch)
		for i, it := range batch {
			labels := make([]LabelScore, len(res[i]))
			for j, l := range res[i] {
				labels[j] = LabelScore{Label: l.Label, Score: l.Score}
			}
			emit(Classification{ID: it.rec.ID, Labels: labels, Metadata: it.rec.Metadata, Tokens: it.tokens, Truncated: it.truncated})
		}
		return nil
	}, dead)
}

// Teardown returns the model to the process cache.
func (f *classifyFn) Teardown() error {
	if f.b.m != nil {
		f.b.m = nil
		release(kindClassify, f.Cfg.Model)
	}
	return nil
}
