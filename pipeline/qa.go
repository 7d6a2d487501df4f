package pipeline

import (
	"context"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"sort"

	"github.com/embrace-go/embrace/tokenizer"
)

// QuestionAnswerer is the extractive question-answering pipeline, for
// checkpoints saved as *ForQuestionAnswering. Long contexts are split into
// overlapping windows, each holding the whole question.
type QuestionAnswerer struct {
	enc *encoder
}

// QAInput is one question about one context.
type QAInput struct {
	Question, Context string
}

// Answer is a span of the context.
type Answer struct {
	Score float64
	// Start and End are byte offsets into the context; StartRune and
	// EndRune the same in code points.
	Start, End         int
	StartRune, EndRune int
	Answer             string
}

// QAOptions tune QuestionAnswerer.Answer. Zero values take Hugging Face's
// defaults.
type QAOptions struct {
	TopK         int // answers per question (default 1)
	MaxAnswerLen int // longest answer in tokens (default 15)
	// MaxSeqLen is the window length in tokens (default the smaller of the
	// tokenizer's model_max_length and 384); DocStride the overlap between
	// windows (default the smaller of MaxSeqLen/2 and 128).
	MaxSeqLen, DocStride int
}

// NewQuestionAnswerer loads a question-answering checkpoint from a folder or
// Hub repo id.
func NewQuestionAnswerer(ctx context.Context, nameOrDir string, opt *Options) (*QuestionAnswerer, error) {
	e, err := openEncoder(ctx, nameOrDir, opt, arch.TaskQuestionAnswering)
	if err != nil {
		return nil, err
	}
	return &QuestionAnswerer{enc: e}, nil
}

// Close releases the model.
func (q *QuestionAnswerer) Close() error { return q.enc.Close() }

// window is one encoded slice of an input's context.
type window struct {
	input int
	enc   *tokenizer.Encoding
}

// Answer finds the best spans of each context. Scores follow the rule of
// the reference fixtures: softmax of the start logits and of the end logits
// over the window's context tokens; span (a, b) with a <= b < a+MaxAnswerLen
// scores p_start(a)·p_end(b); the best TopK over all windows are returned.
func (q *QuestionAnswerer) Answer(ctx context.Context, inputs []QAInput, opt QAOptions) ([][]Answer, error) {
	if opt.TopK <= 0 {
		opt.TopK = 1
	}
	if opt.MaxAnswerLen <= 0 {
		opt.MaxAnswerLen = 15
	}
	if opt.MaxSeqLen <= 0 {
		opt.MaxSeqLen = 384
		if m := q.enc.modelMaxLength; m > 0 {
			opt.MaxSeqLen = min(m, 384)
		}
	}
	if opt.DocStride <= 0 {
		opt.DocStride = min(opt.MaxSeqLen/2, 128)
	}
	if opt.DocStride >= opt.MaxSeqLen {
		return nil, fmt.Errorf("pipeline: doc stride %d is not below the window length %d", opt.DocStride, opt.MaxSeqLen)
	}
	tok := q.enc.tok.WithTruncation(&tokenizer.TruncationParams{MaxLength: opt.MaxSeqLen, Strategy: "only_second", Stride: opt.DocStride})
	var wins []window
	for i, in := range inputs {
		enc, err := tok.EncodePair(in.Question, in.Context, true)
		if err != nil {
			return nil, fmt.Errorf("pipeline: question %d: %w", i, err)
		}
		wins = append(wins, window{i, enc})
		for _, o := range enc.Overflowing {
			wins = append(wins, window{i, o})
		}
	}
	cands := make([][]Answer, len(inputs))
	err := chunks(ctx, len(wins), q.enc.batch, func(lo, hi int) error {
		encs := make([]*tokenizer.Encoding, hi-lo)
		for i := range encs {
			encs[i] = wins[lo+i].enc
		}
		res, in, err := q.enc.forward(ctx, encs)
		if err != nil {
			return err
		}
		st, en := res.StartLogits.Float32s(), res.EndLogits.Float32s()
		for i, w := range wins[lo:hi] {
			qi := inputs[w.input]
			spans := q.spans(w.enc, st[i*in.Seq:(i+1)*in.Seq], en[i*in.Seq:(i+1)*in.Seq], opt)
			chars := w.enc.CharOffsets(qi.Question, qi.Context)
			for _, s := range spans {
				a := Answer{Score: s.score, Start: w.enc.Offsets[s.a].Start, End: w.enc.Offsets[s.b].End,
					StartRune: chars[s.a].Start, EndRune: chars[s.b].End}
				if a.Start < 0 || a.End > len(qi.Context) || a.Start > a.End {
					return fmt.Errorf("pipeline: question %d: token offsets %d..%d outside the context", w.input, a.Start, a.End)
				}
				a.Answer = qi.Context[a.Start:a.End]
				cands[w.input] = append(cands[w.input], a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, c := range cands {
		sort.SliceStable(c, func(a, b int) bool { return c[a].Score > c[b].Score })
		cands[i] = c[:min(len(c), opt.TopK)]
	}
	return cands, nil
}

type span struct {
	a, b  int
	score float64
}

// spans returns the window's best TopK spans of context tokens.
func (q *QuestionAnswerer) spans(enc *tokenizer.Encoding, start, end []float32, opt QAOptions) []span {
	var ctxTok []int
	for j, s := range enc.SequenceIDs {
		if s == 1 && (enc.AttentionMask == nil || enc.AttentionMask[j] == 1) {
			ctxTok = append(ctxTok, j)
		}
	}
	if len(ctxTok) == 0 {
		return nil
	}
	pick := func(xs []float32) map[int]float64 {
		vals := make([]float32, len(ctxTok))
		for i, j := range ctxTok {
			vals[i] = xs[j]
		}
		p := softmax64(vals)
		m := make(map[int]float64, len(ctxTok))
		for i, j := range ctxTok {
			m[j] = p[i]
		}
		return m
	}
	ps, pe := pick(start), pick(end)
	var all []span
	for _, a := range ctxTok {
		for _, b := range ctxTok {
			if a <= b && b < a+opt.MaxAnswerLen {
				all = append(all, span{a, b, ps[a] * pe[b]})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].score > all[j].score })
	return all[:min(len(all), opt.TopK)]
}
