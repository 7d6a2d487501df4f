package pipeline

import (
	"context"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tokenizer"
)

// QuestionAnswerer is the extractive question-answering pipeline, for
// checkpoints saved as *ForQuestionAnswering. Long contexts are split into
// overlapping windows, each holding the whole question, as Hugging Face's
// question-answering pipeline splits them (doc_stride).
type QuestionAnswerer struct {
	enc *encoder
}

// QAInput is one question about one context.
type QAInput struct {
	Question, Context string
}

// Answer is a span of the context, or the null answer (Answer "", all
// offsets 0) when QAOptions.HandleImpossibleAnswer is set.
type Answer struct {
	Score float64
	// Start and End are byte offsets into the context; StartRune and
	// EndRune the same in code points.
	Start, End         int
	StartRune, EndRune int
	Answer             string
}

// QAOptions tune QuestionAnswerer.Answer. Zero values take Hugging Face's
// defaults, except AlignToWords (off, as in the reference fixtures).
type QAOptions struct {
	TopK         int // answers per question (default 1)
	MaxAnswerLen int // longest answer in tokens (default 15)
	// MaxSeqLen is the window length in tokens, special tokens and question
	// included (default the smaller of 384, the tokenizer's
	// model_max_length and the model's positions; longer than the model's
	// positions is an error wrapping ErrTooLong). DocStride is how many
	// context tokens consecutive windows share (default the smaller of
	// MaxSeqLen/2 and 128).
	MaxSeqLen, DocStride int
	// MaxQuestionLen, when positive, cuts questions to that many tokens
	// (Hugging Face's max_question_len, which its pipeline honours only
	// with slow tokenizers). 0 keeps the whole question as long as it
	// leaves the window room for more than DocStride context tokens;
	// longer questions are cut to fit, or with Options.Truncation off
	// refused with an error wrapping ErrTooLong.
	MaxQuestionLen int
	// HandleImpossibleAnswer adds the null answer, scored from the first
	// ([CLS]) position as Hugging Face does: in every window the softmax
	// then also covers the CLS positions, the null score is
	// p_start(0)·p_end(0), and the null answer takes the smallest null
	// score over the windows.
	HandleImpossibleAnswer bool
	// AlignToWords widens each answer to whole words: from the start of the
	// word holding its first token to the end of the word holding its last
	// (the words' tokens within the window), as Hugging Face's
	// align_to_words does. Hugging Face turns it on by default; here it is
	// off by default, as in the reference fixtures, so answers are token
	// spans. Tokens without a word keep their own offsets.
	AlignToWords bool
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

// defaults fills the zero options and checks them against the model.
func (q *QuestionAnswerer) defaults(opt QAOptions) (QAOptions, error) {
	if opt.TopK <= 0 {
		opt.TopK = 1
	}
	if opt.MaxAnswerLen <= 0 {
		opt.MaxAnswerLen = 15
	}
	if opt.MaxSeqLen <= 0 {
		opt.MaxSeqLen = 384
		if m := q.enc.modelMaxLength; m > 0 {
			opt.MaxSeqLen = min(m, opt.MaxSeqLen)
		}
		if p := q.enc.positions; p > 0 {
			opt.MaxSeqLen = min(p, opt.MaxSeqLen)
		}
	} else if p := q.enc.positions; p > 0 && opt.MaxSeqLen > p {
		return opt, fmt.Errorf("pipeline: max_seq_len %d is longer than the model's %d positions: %w", opt.MaxSeqLen, p, ErrTooLong)
	}
	if opt.DocStride <= 0 {
		opt.DocStride = min(opt.MaxSeqLen/2, 128)
	}
	if opt.DocStride >= opt.MaxSeqLen {
		return opt, fmt.Errorf("pipeline: doc stride %d is not below the window length %d", opt.DocStride, opt.MaxSeqLen)
	}
	return opt, nil
}

// Answer finds the best spans of each context. Scores follow the rule of
// the reference fixtures: softmax of the start logits and of the end logits
// over the window's context tokens; span (a, b) with a <= b < a+MaxAnswerLen
// scores p_start(a)·p_end(b); each window gives its best TopK spans and the
// best TopK over all windows are returned (a span seen by two windows can
// appear twice, as in Hugging Face). With HandleImpossibleAnswer the
// softmax also covers the CLS positions, as Hugging Face computes it.
func (q *QuestionAnswerer) Answer(ctx context.Context, inputs []QAInput, opt QAOptions) ([][]Answer, error) {
	out, _, err := q.AnswerWithInfo(ctx, inputs, opt)
	return out, err
}

// AnswerWithInfo is Answer that also reports, per question, how many
// windows its context took and whether the question was cut.
func (q *QuestionAnswerer) AnswerWithInfo(ctx context.Context, inputs []QAInput, opt QAOptions) ([][]Answer, []InputInfo, error) {
	opt, err := q.defaults(opt)
	if err != nil {
		return nil, nil, err
	}
	// Only the context is cut into windows; the question stays whole in
	// each (only_second).
	tok := q.enc.untruncated.WithTruncation(&tokenizer.TruncationParams{MaxLength: opt.MaxSeqLen, Strategy: tokenizer.TruncateOnlySecond, Stride: opt.DocStride})
	specials, err := q.pairSpecials()
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: %w", err)
	}
	var wins []window
	infos := make([]InputInfo, len(inputs))
	for i := range inputs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		question, cut, err := q.fitQuestion(i, inputs[i], opt, specials)
		if err != nil {
			return nil, nil, err
		}
		enc, err := tok.EncodePair(question, inputs[i].Context, true)
		if err != nil {
			return nil, nil, fmt.Errorf("pipeline: question %d: %w", i, err)
		}
		infos[i] = InputInfo{Truncated: cut, Windows: 1 + len(enc.Overflowing)}
		wins = append(wins, window{i, enc})
		for _, o := range enc.Overflowing {
			wins = append(wins, window{i, o})
		}
	}
	cands := make([][]Answer, len(inputs))
	minNull := make([]float64, len(inputs))
	for i := range minNull {
		minNull[i] = math.Inf(1)
	}
	cls := q.enc.tok.SpecialTokens().CLS.ID
	err = chunks(ctx, len(wins), q.enc.batch, func(lo, hi int) error {
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
			spans, null := q.spans(w.enc, st[i*in.Seq:(i+1)*in.Seq], en[i*in.Seq:(i+1)*in.Seq], opt, cls)
			minNull[w.input] = min(minNull[w.input], null)
			for _, s := range spans {
				// Rune offsets are computed for the answers kept, below.
				a := Answer{Score: s.score, Start: w.enc.Offsets[s.a].Start, End: w.enc.Offsets[s.b].End}
				if opt.AlignToWords {
					a.Start, a.End = wordStart(w.enc, s.a), wordEnd(w.enc, s.b)
				}
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
		return nil, nil, err
	}
	for i, c := range cands {
		if opt.HandleImpossibleAnswer {
			c = append(c, Answer{Score: minNull[i]})
		}
		sort.SliceStable(c, func(a, b int) bool { return c[a].Score > c[b].Score })
		c = c[:min(len(c), opt.TopK)]
		char := func(b int) int { return charIndex(inputs[i].Context, b) }
		if len(c) > 4 {
			// Many answers: index the context once.
			char = newTextIndex(inputs[i].Context).char
		}
		for k := range c {
			if c[k].End > 0 {
				c[k].StartRune, c[k].EndRune = char(c[k].Start), char(c[k].End)
			}
		}
		cands[i] = c
	}
	return cands, infos, nil
}

// fitQuestion returns the question of input i as it goes into every
// window: whole, or cut to MaxQuestionLen tokens, or cut so that the window
// keeps room for more than DocStride context tokens (the tokenizer cannot
// make windows otherwise). It reports whether it cut.
func (q *QuestionAnswerer) fitQuestion(i int, in QAInput, opt QAOptions, specials int) (string, bool, error) {
	qenc, err := q.enc.untruncated.Encode(in.Question, false)
	if err != nil {
		return "", false, fmt.Errorf("pipeline: question %d: %w", i, err)
	}
	n := realTokens(qenc)
	keep := n
	if opt.MaxQuestionLen > 0 {
		keep = min(keep, opt.MaxQuestionLen)
	}
	// The most question tokens that leave windows more than DocStride
	// context tokens; it only matters when the context does not fit in one
	// window.
	room := opt.MaxSeqLen - specials - opt.DocStride - 1
	if keep > room {
		cenc, err := q.enc.untruncated.Encode(in.Context, false)
		if err != nil {
			return "", false, fmt.Errorf("pipeline: question %d: %w", i, err)
		}
		if keep+realTokens(cenc)+specials > opt.MaxSeqLen {
			switch {
			case room < 1:
				return "", false, fmt.Errorf("pipeline: question %d: a window of %d tokens with a stride of %d leaves no room for the question: %w", i, opt.MaxSeqLen, opt.DocStride, ErrTooLong)
			case !q.enc.truncate:
				return "", false, fmt.Errorf("pipeline: question %d has %d tokens; a window of %d tokens with a stride of %d holds at most %d, and truncation is off: %w", i, keep, opt.MaxSeqLen, opt.DocStride, room, ErrTooLong)
			}
			keep = room
		}
	}
	if keep >= n {
		return in.Question, false, nil
	}
	// Cut the text after the last kept token: the cut question tokenizes
	// to the kept tokens.
	end := qenc.Offsets[keep-1].End
	return in.Question[:min(max(end, 0), len(in.Question))], true, nil
}

// pairSpecials is how many special tokens the tokenizer adds to a pair.
func (q *QuestionAnswerer) pairSpecials() (int, error) {
	enc, err := q.enc.untruncated.EncodePair("", "", true)
	if err != nil {
		return 0, err
	}
	return realTokens(enc), nil
}

type span struct {
	a, b  int
	score float64
}

// spans returns the window's best TopK spans of context tokens and its null
// score (+Inf unless opt.HandleImpossibleAnswer).
func (q *QuestionAnswerer) spans(enc *tokenizer.Encoding, start, end []float32, opt QAOptions, cls int) ([]span, float64) {
	real := func(j int) bool { return enc.AttentionMask == nil || enc.AttentionMask[j] == 1 }
	var ctxTok, soft []int
	for j, s := range enc.SequenceIDs {
		if !real(j) {
			continue
		}
		if s == 1 {
			ctxTok = append(ctxTok, j)
			soft = append(soft, j)
		} else if opt.HandleImpossibleAnswer && cls >= 0 && enc.IDs[j] == cls {
			// Hugging Face keeps the CLS positions in the softmax.
			soft = append(soft, j)
		}
	}
	null := math.Inf(1)
	if len(soft) == 0 {
		if opt.HandleImpossibleAnswer {
			null = 0
		}
		return nil, null
	}
	pick := func(xs []float32) map[int]float64 {
		vals := make([]float32, len(soft))
		for i, j := range soft {
			vals[i] = xs[j]
		}
		p := softmax64(vals)
		m := make(map[int]float64, len(soft))
		for i, j := range soft {
			m[j] = p[i]
		}
		return m
	}
	ps, pe := pick(start), pick(end)
	if opt.HandleImpossibleAnswer {
		// Position 0 outside the softmax has probability 0.
		null = ps[0] * pe[0]
	}
	var all []span
	for _, a := range ctxTok {
		for _, b := range ctxTok {
			if a <= b && b < a+opt.MaxAnswerLen {
				all = append(all, span{a, b, ps[a] * pe[b]})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].score > all[j].score })
	return all[:min(len(all), opt.TopK)], null
}

// charIndex converts a byte offset in s to a code-point index as
// tokenizer.Encoding.CharOffsets does: an offset inside a character (a
// byte-level token holding part of it) maps to that character.
func charIndex(s string, off int) int {
	if off >= len(s) {
		return utf8.RuneCountInString(s)
	}
	n := 0
	for i := range s {
		if i > off {
			break
		}
		n++
	}
	return max(n-1, 0)
}

// wordStart is the start of the word of context token j: the smallest
// start among the window's context tokens of the same word.
func wordStart(enc *tokenizer.Encoding, j int) int {
	start := enc.Offsets[j].Start
	if j >= len(enc.WordIDs) || enc.WordIDs[j] < 0 {
		return start
	}
	for k, w := range enc.WordIDs {
		if w == enc.WordIDs[j] && enc.SequenceIDs[k] == enc.SequenceIDs[j] {
			start = min(start, enc.Offsets[k].Start)
		}
	}
	return start
}

// wordEnd is the end of the word of context token j (see wordStart).
func wordEnd(enc *tokenizer.Encoding, j int) int {
	end := enc.Offsets[j].End
	if j >= len(enc.WordIDs) || enc.WordIDs[j] < 0 {
		return end
	}
	for k, w := range enc.WordIDs {
		if w == enc.WordIDs[j] && enc.SequenceIDs[k] == enc.SequenceIDs[j] {
			end = max(end, enc.Offsets[k].End)
		}
	}
	return end
}
