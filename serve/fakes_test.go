package serve

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embrace-go/embrace/chat"
	"github.com/embrace-go/embrace/pipeline"
)

// The fakes stand in for the pipelines so that the HTTP layer is tested on
// its own; the fixture tests (fixtures_test.go) run the real ones.

// fakeTokens counts one token per word plus two special tokens.
type fakeTokens struct{ max int }

func (f fakeTokens) CountTokens(text string) (int, error) { return len(strings.Fields(text)) + 2, nil }
func (f fakeTokens) MaxTokens() int                       { return f.max }

// fakeEmbedder makes a vector from a hash of the text.
type fakeEmbedder struct {
	dim       int
	delay     time.Duration // per batch
	normalize bool

	mu       sync.Mutex
	batches  []int // sizes seen
	calls    atomic.Int64
	canceled atomic.Int64
}

func (f *fakeEmbedder) Dim() int         { return f.dim }
func (f *fakeEmbedder) Normalized() bool { return f.normalize }

func (f *fakeEmbedder) vector(text string) []float32 {
	h := fnv.New64a()
	h.Write([]byte(text))
	r := rand.New(rand.NewPCG(h.Sum64(), 1))
	v := make([]float32, f.dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	if f.normalize {
		l2normalize(v)
	}
	return v
}

func (f *fakeEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.batches = append(f.batches, len(texts))
	f.mu.Unlock()
	for _, t := range texts {
		if t == "PANIC" {
			panic("fake embedder asked to panic")
		}
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			f.canceled.Add(1)
			return nil, ctx.Err()
		}
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = f.vector(t)
	}
	return out, nil
}

func (f *fakeEmbedder) maxBatch() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := 0
	for _, b := range f.batches {
		m = max(m, b)
	}
	return m
}

// fakeGenerator emits words drawn from the seed (or fixed words at
// temperature 0), honouring max tokens and stop strings.
type fakeGenerator struct {
	fakeTokens
	delay    time.Duration // per piece
	started  atomic.Int64
	canceled atomic.Int64
}

var fakeWords = []string{" the", " cat", " sat", " on", " a", " mat", " and", " purred", " é", "!"}

func (f *fakeGenerator) Generate(ctx context.Context, prompt string, p genParams, emit func(string) error) (genResult, error) {
	f.started.Add(1)
	if prompt == "PANIC" {
		panic("fake generator asked to panic")
	}
	n, _ := f.CountTokens(prompt)
	res := genResult{PromptTokens: n, FinishReason: "length"}
	r := rand.New(rand.NewPCG(p.Seed, 7))
	var text strings.Builder
	for i := 0; i < p.MaxTokens; i++ {
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-ctx.Done():
				f.canceled.Add(1)
				return res, ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			f.canceled.Add(1)
			return res, err
		}
		w := fakeWords[i%len(fakeWords)]
		if p.Temperature > 0 {
			w = fakeWords[r.IntN(len(fakeWords))]
		}
		res.CompletionTokens++
		before := text.Len()
		text.WriteString(w)
		full := text.String()
		for _, s := range p.Stop {
			if k := strings.Index(full, s); k >= 0 {
				res.FinishReason = "stop"
				if k > before {
					if err := emit(full[before:k]); err != nil {
						return res, err
					}
				}
				return res, nil
			}
		}
		if err := emit(w); err != nil {
			return res, err
		}
	}
	return res, nil
}

type fakeClassifier struct{}

func (fakeClassifier) Classify(ctx context.Context, texts []string, topK int) ([][]label, error) {
	out := make([][]label, len(texts))
	for i, t := range texts {
		switch t {
		case "PANIC":
			panic("fake classifier asked to panic")
		case "TOOLONG":
			return nil, fmt.Errorf("fake: input %d: %w", i, pipeline.ErrTooLong)
		case "CLOSED":
			return nil, fmt.Errorf("fake: %w", pipeline.ErrClosed)
		case "UNSUPPORTED":
			return nil, fmt.Errorf("fake: %w: a feature", errors.ErrUnsupported)
		}
		ls := []label{{"POSITIVE", 0.7}, {"NEGATIVE", 0.2}, {"NEUTRAL", 0.1}}
		if topK > 0 && topK < len(ls) {
			ls = ls[:topK]
		}
		out[i] = ls
	}
	return out, nil
}

type fakeTagger struct{}

func (fakeTagger) Tag(ctx context.Context, texts []string, agg string) ([][]entity, error) {
	out := make([][]entity, len(texts))
	for i, t := range texts {
		if k := strings.Index(t, "Paris"); k >= 0 {
			e := entity{Score: 0.9, Word: "Paris", Start: len([]rune(t[:k])), End: len([]rune(t[:k])) + 5}
			if agg == "none" {
				e.Entity = "B-LOC"
			} else {
				e.EntityGroup = "LOC"
			}
			out[i] = []entity{e}
		}
	}
	return out, nil
}

type fakeAnswerer struct{}

func (fakeAnswerer) Answer(ctx context.Context, q, c string, topK, maxLen int) ([]answer, error) {
	var out []answer
	for i, w := range strings.Fields(c) {
		if len(out) == topK {
			break
		}
		k := strings.Index(c, w)
		out = append(out, answer{Answer: w, Score: 1 / float64(i+2), Start: k, End: k + len(w)})
	}
	return out, nil
}

type fakeFiller struct{}

func (fakeFiller) MaskToken() string { return "[MASK]" }
func (fakeFiller) Fill(ctx context.Context, texts []string, topK int, targets []string) ([][]maskFill, error) {
	cands := []string{"paris", "london", "rome"}
	if len(targets) > 0 {
		cands = targets
	}
	out := make([][]maskFill, len(texts))
	for i, t := range texts {
		for j, c := range cands {
			if j == topK {
				break
			}
			out[i] = append(out[i], maskFill{Score: 0.5 / float64(j+1), Token: 100 + j, TokenStr: c, Sequence: strings.Replace(t, "[MASK]", c, 1)})
		}
	}
	return out, nil
}

// fakeModel serves every capability.
func fakeModel() *backend {
	return &backend{
		ID:         "fake/model",
		Tokens:     fakeTokens{max: 16},
		Embedder:   &fakeEmbedder{dim: 8, normalize: true},
		Generator:  &fakeGenerator{fakeTokens: fakeTokens{max: 64}},
		Classifier: fakeClassifier{},
		Tagger:     fakeTagger{},
		Answerer:   fakeAnswerer{},
		MaskFiller: fakeFiller{},
	}
}

func fakeLoader(m *backend) loader {
	return func(ctx context.Context, ref string, _ loadOptions) (*backend, error) {
		if m == nil {
			return nil, errors.New("fake load failure")
		}
		return m, nil
	}
}

var _ = fmt.Sprint

// ChatTokens renders the fake template: each message's content on its
// own, then the generation prompt.
func (f *fakeGenerator) ChatTokens(messages []chat.Message) (int, error) {
	return f.CountTokens(fakeChatPrompt(messages))
}

func fakeChatPrompt(messages []chat.Message) string {
	var b strings.Builder
	for _, m := range messages {
		b.WriteString(m.Role + ": " + m.Content + "\n")
	}
	return b.String() + "assistant:"
}

func (f *fakeGenerator) Chat(ctx context.Context, messages []chat.Message, p genParams, emit func(string) error) (genResult, error) {
	for _, m := range messages {
		if m.Role == "refuse" {
			return genResult{}, badRequest("messages", "the template refuses the role %q", m.Role)
		}
	}
	return f.Generate(ctx, fakeChatPrompt(messages), p, emit)
}
