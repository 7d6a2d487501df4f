package beam

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/hub"
	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/tokenizer"
)

// kind says which pipeline a cached model was loaded as.
type kind string

const (
	kindEmbed    kind = "sentence-embedding"
	kindClassify kind = "text-classification"
)

// loaded is one model in the process cache, with what the transforms need
// besides the pipeline: a tokenizer without truncation to count tokens, the
// token limit the pipeline truncates to and the lowercasing it applies.
type loaded struct {
	embedder   *pipeline.SentenceEmbedder
	classifier *pipeline.TextClassifier
	tok        *tokenizer.Tokenizer
	maxLen     int
	lower      bool
}

// countTokens returns the number of tokens text has before truncation,
// special tokens included, as the pipeline's tokenizer sees it.
func (m *loaded) countTokens(text string) (int, error) {
	if m.lower {
		text = strings.ToLower(text)
	}
	enc, err := m.tok.Encode(text, true)
	if err != nil {
		return 0, err
	}
	return len(enc.IDs), nil
}

// entry is a cache slot: the model once loaded, and how many DoFn
// instances hold it.
type entry struct {
	ready chan struct{} // closed when loading ends
	m     *loaded
	err   error
	refs  int
}

// The process-level model cache: every DoFn instance of a worker process
// that asks for the same model shares one copy, whatever bundle or thread
// it runs in.
var (
	cacheMu sync.Mutex
	cache   = map[string]*entry{}
	// loads counts model loads in this process (read by the tests).
	loads int
)

func cacheKey(k kind, model string) string { return string(k) + "\x00" + model }

// acquire returns the cached model, loading it on first use. Concurrent
// callers wait for one load. A failed load is not cached, so a retried
// bundle tries again.
func acquire(ctx context.Context, k kind, model string) (*loaded, error) {
	key := cacheKey(k, model)
	cacheMu.Lock()
	e, ok := cache[key]
	if ok {
		e.refs++
		cacheMu.Unlock()
		<-e.ready
		if e.err != nil {
			release(k, model)
			return nil, e.err
		}
		return e.m, nil
	}
	e = &entry{ready: make(chan struct{}), refs: 1}
	cache[key] = e
	loads++
	cacheMu.Unlock()

	e.m, e.err = load(ctx, k, model)
	close(e.ready)
	if e.err != nil {
		release(k, model)
		return nil, e.err
	}
	return e.m, nil
}

// release drops one reference; the last one closes the model and empties
// the slot.
func release(k kind, model string) {
	key := cacheKey(k, model)
	cacheMu.Lock()
	e, ok := cache[key]
	if !ok {
		cacheMu.Unlock()
		return
	}
	e.refs--
	if e.refs > 0 {
		cacheMu.Unlock()
		return
	}
	delete(cache, key)
	cacheMu.Unlock()
	if e.m != nil {
		e.m.close()
	}
}

// modelLoads returns how many times this process has loaded a model.
func modelLoads() int {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	return loads
}

// noChunking is the pipeline batch size the transforms load models with:
// they form their own batches, so the pipeline must run each in one pass.
const noChunking = 1 << 20

// load resolves model (a folder, or a Hub id fetched into the worker's
// Hugging Face cache) and opens it as the pipeline of kind k.
func load(ctx context.Context, k kind, model string) (*loaded, error) {
	dir, err := hub.Resolve(ctx, model)
	if err != nil {
		return nil, fmt.Errorf("embrace/beam: model %q: %w", model, err)
	}
	f, err := hfdir.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("embrace/beam: model %q: %w", model, err)
	}
	m := &loaded{}
	// Truncation on (the library's default for sentence embeddings too):
	// the transforms send texts over the limit to the dead letters
	// themselves when their own truncation is off.
	opt := &pipeline.Options{BatchSize: noChunking, Truncation: pipeline.TruncateOn}
	tokDir := dir
	switch k {
	case kindEmbed:
		s, err := pipeline.NewSentenceEmbedder(ctx, dir, opt)
		if err != nil {
			return nil, fmt.Errorf("embrace/beam: model %q: %w", model, err)
		}
		m.embedder, m.maxLen = s, s.MaxSeqLength()
		// The pipeline reads the tokenizer from the transformer module's
		// folder and lowercases as sentence_bert_config.json says.
		if st := f.SentenceTransformers; st != nil {
			for _, mod := range st.Modules {
				if mod.Kind == "Transformer" {
					tokDir = filepath.Join(dir, mod.Path)
				}
			}
			m.lower = st.DoLowerCase
		}
	case kindClassify:
		c, err := pipeline.NewTextClassifier(ctx, dir, opt)
		if err != nil {
			return nil, fmt.Errorf("embrace/beam: model %q: %w", model, err)
		}
		m.classifier = c
		// The limit the pipeline truncates to: the smaller of the model's
		// positions and the tokenizer's model_max_length.
		if m.maxLen, err = f.Config.Int("max_position_embeddings", 0); err != nil {
			c.Close()
			return nil, fmt.Errorf("embrace/beam: model %q: %w", model, err)
		}
		if f.Tokenizer != nil && f.Tokenizer.ModelMaxLength > 0 && (m.maxLen == 0 || f.Tokenizer.ModelMaxLength < m.maxLen) {
			m.maxLen = f.Tokenizer.ModelMaxLength
		}
	}
	tok, err := tokenizer.FromDir(tokDir)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("embrace/beam: model %q: %w", model, err)
	}
	m.tok = tok.WithTruncation(nil).WithPadding(nil)
	if m.maxLen <= 0 {
		m.close()
		return nil, fmt.Errorf("embrace/beam: model %q: no maximum sequence length in its config", model)
	}
	return m, nil
}

func (m *loaded) close() {
	if m.embedder != nil {
		m.embedder.Close()
	}
	if m.classifier != nil {
		m.classifier.Close()
	}
}
