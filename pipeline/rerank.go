package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tokenizer"
)

// Reranker scores (query, passage) pairs with a cross-encoder: a checkpoint
// saved as *ForSequenceClassification with a single label, as
// sentence-transformers' CrossEncoder loads it. Each pair goes through the
// model as one input (query first, then passage, with the folder's
// tokenizer's pair template); the label's logit, put through the model's
// activation, is the pair's relevance score.
//
// Pairs longer than the model accepts (the smaller of its positions and the
// tokenizer's model_max_length) are truncated with the longest_first
// strategy (tokens come off the longer of query and passage first), as
// CrossEncoder does, and marked Truncated; with Options.Truncation off they
// are an error wrapping ErrTooLong.
type Reranker struct {
	enc *encoder
	// activation is the folder's activation; actErr is set instead when
	// config.json names one this package does not implement, and only
	// matters for calls that do not choose their own.
	activation Activation
	actErr     error
}

// RerankOptions tune Reranker.Rerank and Reranker.Score.
type RerankOptions struct {
	// TopK is how many passages Rerank returns, best first; 0 returns all
	// (CrossEncoder.rank's top_k=None). Score ignores it.
	TopK int
	// Activation overrides the activation applied to the logit (one of the
	// Activation constants, or a torch class path such as
	// "torch.nn.modules.linear.Identity"). Empty uses the folder's:
	// config.json's sentence_transformers.activation_fn (or the older
	// sbert_ce_default_activation_function), else sigmoid, as CrossEncoder
	// chooses it.
	Activation Activation
}

// Activation turns a cross-encoder's logit into its score, as
// sentence-transformers' CrossEncoder activation_fn.
type Activation string

// The activations: the torch.nn modules of the same names.
const (
	ActivationSigmoid    Activation = "sigmoid"  // CrossEncoder's default for one label
	ActivationIdentity   Activation = "identity" // the raw logit
	ActivationTanh       Activation = "tanh"
	ActivationReLU       Activation = "relu"
	ActivationLogSigmoid Activation = "logsigmoid"
)

// RerankResult is one passage's score.
type RerankResult struct {
	// Index is the passage's (or pair's) index in the input.
	Index int
	// Text is the passage (for Score, the pair's second text).
	Text string
	// Logit is the model's raw output; Score is Logit through the
	// activation.
	Logit float64
	Score float64
	// Truncated is true when the pair was cut to fit the model
	// (Options.Truncation).
	Truncated bool
}

// NewReranker loads a cross-encoder from a folder or Hub repo id. A model
// that is not a sequence classifier with exactly one label is refused with
// an error wrapping arch.ErrUnsupported.
func NewReranker(ctx context.Context, nameOrDir string, opt *Options) (*Reranker, error) {
	e, err := openEncoder(ctx, nameOrDir, opt, arch.TaskSequenceClassification)
	if err != nil {
		return nil, err
	}
	if n := len(e.info.Labels); n != 1 {
		e.Close()
		return nil, fmt.Errorf("pipeline: %s: %w: a reranker needs a one-label sequence classifier (a cross-encoder), the model has %d labels %q", e.dir, arch.ErrUnsupported, n, e.info.Labels)
	}
	if limit := e.pairLimit(); limit > 0 && e.truncate {
		e.tok = e.tok.WithTruncation(&tokenizer.TruncationParams{MaxLength: limit, Strategy: tokenizer.TruncateLongestFirst})
	}
	r := &Reranker{enc: e}
	r.activation, r.actErr = folderActivation(e.meta.Config)
	return r, nil
}

// Close releases the model.
func (r *Reranker) Close() error { return r.enc.Close() }

// MaxLength is the longest pair, in tokens, the reranker passes to the
// model (CrossEncoder's max_length); longer pairs are truncated
// longest_first. 0 means no limit is known.
func (r *Reranker) MaxLength() int { return r.enc.pairLimit() }

// Activation returns the activation the folder asks for, or an error when
// config.json names one this package does not implement.
func (r *Reranker) Activation() (Activation, error) { return r.activation, r.actErr }

// Rerank scores every passage against query and returns them best first
// (highest score first; passages with equal scores keep their input order,
// as CrossEncoder.rank's stable sort does), at most opt.TopK of them when it
// is positive.
func (r *Reranker) Rerank(ctx context.Context, query string, passages []string, opt RerankOptions) ([]RerankResult, error) {
	if opt.TopK < 0 {
		return nil, fmt.Errorf("pipeline: negative TopK %d", opt.TopK)
	}
	pairs := make([][2]string, len(passages))
	for i, p := range passages {
		pairs[i] = [2]string{query, p}
	}
	res, err := r.Score(ctx, pairs, opt)
	if err != nil {
		return nil, err
	}
	sortRerank(res)
	if opt.TopK > 0 && opt.TopK < len(res) {
		res = res[:opt.TopK]
	}
	return res, nil
}

// Score scores each (query, passage) pair and returns the results in input
// order.
func (r *Reranker) Score(ctx context.Context, pairs [][2]string, opt RerankOptions) ([]RerankResult, error) {
	act := r.activation
	if opt.Activation != "" {
		a, err := parseActivation(string(opt.Activation))
		if err != nil {
			return nil, err
		}
		act = a
	} else if r.actErr != nil {
		return nil, r.actErr
	}
	// Tokenize everything first, then batch the pairs longest first, as
	// CrossEncoder.predict does: pairs of similar length share a batch, so
	// little of it is padding.
	encs := make([]*tokenizer.Encoding, len(pairs))
	cut := make([]bool, len(pairs))
	for i, p := range pairs {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		enc, err := r.enc.tok.EncodePair(p[0], p[1], true)
		if err != nil {
			return nil, fmt.Errorf("pipeline: pair %d: %w", i, err)
		}
		info, err := r.enc.fit("pair", i, enc)
		if err != nil {
			return nil, err
		}
		encs[i], cut[i] = enc, info.Truncated
	}
	order := make([]int, len(pairs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(encs[order[a]].IDs) > len(encs[order[b]].IDs) })
	out := make([]RerankResult, len(pairs))
	err := chunks(ctx, len(pairs), r.enc.batch, func(lo, hi int) error {
		batch := make([]*tokenizer.Encoding, 0, hi-lo)
		for _, i := range order[lo:hi] {
			batch = append(batch, encs[i])
		}
		res, _, err := r.enc.forward(ctx, batch)
		if err != nil {
			return err
		}
		logits := res.Logits.Float32s()
		if len(logits) != hi-lo {
			return fmt.Errorf("pipeline: the model returned %d logits for %d pairs", len(logits), hi-lo)
		}
		for k, i := range order[lo:hi] {
			l := float64(logits[k])
			out[i] = RerankResult{Index: i, Text: pairs[i][1], Logit: l, Score: activate(act, l), Truncated: cut[i]}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sortRerank orders results by score, highest first, keeping equal scores
// in input order: CrossEncoder.rank's stable sorted(..., reverse=True). It
// sorts the float32 scores torch computed, so float32 roundings are
// compared, which keeps its ties (saturated sigmoids) as ties.
func sortRerank(res []RerankResult) {
	sort.SliceStable(res, func(a, b int) bool { return float32(res[a].Score) > float32(res[b].Score) })
}

// pairLimit is the longest pair the pair pipelines let through: the
// smaller of the model's positions and the tokenizer's model_max_length
// (0 when neither is known).
func (e *encoder) pairLimit() int {
	limit := e.info.MaxPositions
	if e.modelMaxLength > 0 && (limit <= 0 || e.modelMaxLength < limit) {
		limit = e.modelMaxLength
	}
	return limit
}

// folderActivation reads the activation a cross-encoder folder was saved
// with, the way CrossEncoder does: sentence_transformers.activation_fn,
// else the pre-v4 sbert_ce_default_activation_function, else sigmoid (the
// default for one label). Like CrossEncoder without trust_remote_code, a
// class outside torch is ignored in favour of the default.
func folderActivation(cfg *hfdir.Config) (Activation, error) {
	var path string
	if raw, ok := cfg.Raw["sentence_transformers"]; ok {
		var st struct {
			ActivationFn *string `json:"activation_fn"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return "", fmt.Errorf("pipeline: %s: sentence_transformers: %w", cfg.Path, err)
		}
		if st.ActivationFn != nil {
			path = *st.ActivationFn
		}
	}
	if path == "" {
		// A null or absent value leaves the default.
		path, _ = cfg.String("sbert_ce_default_activation_function", "")
	}
	if path == "" || !strings.HasPrefix(path, "torch.") {
		return ActivationSigmoid, nil
	}
	name, err := parseActivation(path)
	if err != nil {
		return "", fmt.Errorf("pipeline: %s: %w (set RerankOptions.Activation to override)", cfg.Path, err)
	}
	return name, nil
}

// errActivation is wrapped by every unknown activation.
var errActivation = fmt.Errorf("%w: activation", arch.ErrUnsupported)

// parseActivation reads "sigmoid" or "torch.nn.modules.activation.Sigmoid"
// (any case) as an Activation.
func parseActivation(s string) (Activation, error) {
	a := Activation(strings.ToLower(s[strings.LastIndexByte(s, '.')+1:]))
	switch a {
	case ActivationSigmoid, ActivationIdentity, ActivationTanh, ActivationReLU, ActivationLogSigmoid:
		return a, nil
	case "none":
		return ActivationIdentity, nil
	}
	return "", fmt.Errorf("%w %q (want sigmoid, identity, tanh, relu or logsigmoid)", errActivation, s)
}

// activate applies an activation to a logit.
func activate(a Activation, x float64) float64 {
	switch a {
	case ActivationSigmoid:
		return sigmoid(x)
	case ActivationTanh:
		return math.Tanh(x)
	case ActivationReLU:
		return max(x, 0)
	case ActivationLogSigmoid:
		// log(sigmoid(x)) = -log1p(exp(-x)), written to stay finite for
		// large |x|.
		if x >= 0 {
			return -math.Log1p(math.Exp(-x))
		}
		return x - math.Log1p(math.Exp(x))
	}
	return x
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
