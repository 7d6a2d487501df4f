package pipeline

import (
	"context"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/embrace-go/embrace/tokenizer"
)

// TokenClassifier is the token-classification (NER) pipeline, for
// checkpoints saved as *ForTokenClassification.
type TokenClassifier struct {
	enc *encoder
}

// Entity is one labelled token (aggregation "none") or group of tokens.
type Entity struct {
	// Label is the token's label ("B-PER") with aggregation none, else the
	// entity group without its B-/I- prefix ("PER").
	Label string
	Score float64
	// Index is the token's position in the encoding (aggregation none only;
	// -1 otherwise).
	Index int
	// Word is the token, or the group's tokens decoded back to text.
	Word string
	// Start and End are byte offsets into the text; StartRune and EndRune
	// the same in code points.
	Start, End         int
	StartRune, EndRune int
}

// Aggregation is how TokenClassifier.Classify groups tokens into entities,
// as Hugging Face's aggregation_strategy.
type Aggregation string

// Aggregation strategies of TokenClassifier.Classify, as in Hugging Face.
const (
	AggregateNone    Aggregation = "none"    // one entity per token
	AggregateSimple              = "simple"  // group adjacent tokens with the same entity
	AggregateFirst               = "first"   // words take their first token's label
	AggregateAverage             = "average" // words take the label of their averaged scores
	AggregateMax                 = "max"     // words take the label of their best-scoring token
)

// TokenOptions tune TokenClassifier.Classify.
type TokenOptions struct {
	// Aggregation is one of the Aggregate* strategies (default none).
	Aggregation Aggregation
	// IgnoreLabels are dropped from the result (default ["O"]).
	IgnoreLabels []string
}

// NewTokenClassifier loads a token-classification checkpoint from a folder or
// Hub repo id.
func NewTokenClassifier(ctx context.Context, nameOrDir string, opt *Options) (*TokenClassifier, error) {
	e, err := openEncoder(ctx, nameOrDir, opt, arch.TaskTokenClassification)
	if err != nil {
		return nil, err
	}
	return &TokenClassifier{enc: e}, nil
}

// Close releases the model.
func (c *TokenClassifier) Close() error { return c.enc.Close() }

// preEntity is one non-special token with its label scores.
type preEntity struct {
	id                 int
	token              string // the vocabulary token, or the text for [UNK]
	scores             []float64
	start, end         int // bytes
	startRune, endRune int
	index              int
	subword            bool
}

// Classify labels the tokens of every text.
func (c *TokenClassifier) Classify(ctx context.Context, texts []string, opt TokenOptions) ([][]Entity, error) {
	agg := opt.Aggregation
	if agg == "" {
		agg = AggregateNone
	}
	switch agg {
	case AggregateNone, AggregateSimple, AggregateFirst, AggregateAverage, AggregateMax:
	default:
		return nil, fmt.Errorf("pipeline: unknown aggregation strategy %q", agg)
	}
	ignore := opt.IgnoreLabels
	if ignore == nil {
		ignore = []string{"O"}
	}
	labels := c.enc.info.Labels
	out := make([][]Entity, len(texts))
	err := chunks(ctx, len(texts), c.enc.batch, func(lo, hi int) error {
		encs := make([]*tokenizer.Encoding, 0, hi-lo)
		for i := lo; i < hi; i++ {
			enc, err := c.enc.tok.Encode(texts[i], true)
			if err != nil {
				return fmt.Errorf("pipeline: text %d: %w", i, err)
			}
			encs = append(encs, enc)
		}
		res, in, err := c.enc.forward(ctx, encs)
		if err != nil {
			return err
		}
		lg := res.Logits.Float32s()
		nl := len(labels)
		for i := lo; i < hi; i++ {
			enc, text := encs[i-lo], texts[i]
			pre := c.preEntities(text, enc, lg[(i-lo)*in.Seq*nl:], nl)
			var ents []Entity
			if agg == AggregateNone || agg == AggregateSimple {
				for _, p := range pre {
					k := argmax(p.scores)
					ents = append(ents, Entity{Label: labels[k], Score: p.scores[k], Index: p.index, Word: p.token,
						Start: p.start, End: p.end, StartRune: p.startRune, EndRune: p.endRune})
				}
				if agg == AggregateSimple {
					ents = c.group(ents, pre)
				}
			} else {
				ents = c.group(c.aggregateWords(pre, agg), nil)
			}
			kept := ents[:0]
			for _, e := range ents {
				if !slices.Contains(ignore, e.Label) {
					kept = append(kept, e)
				}
			}
			out[i] = kept
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// preEntities pairs every non-special token with its softmax scores and
// decides whether it continues the previous word: for WordPiece, when the
// token is longer than the text it covers (its ## prefix); otherwise when no
// space surrounds its start.
func (c *TokenClassifier) preEntities(text string, enc *tokenizer.Encoding, logits []float32, nl int) []preEntity {
	chars := enc.CharOffsets(text, "")
	unk := c.enc.tok.SpecialTokens().Unk.ID
	var pre []preEntity
	for j, id := range enc.IDs {
		if enc.SpecialTokensMask[j] != 0 {
			continue
		}
		p := preEntity{id: id, token: enc.Tokens[j], scores: softmax64(logits[j*nl : (j+1)*nl]), index: j,
			start: enc.Offsets[j].Start, end: enc.Offsets[j].End, startRune: chars[j].Start, endRune: chars[j].End}
		if tok, ok := c.enc.tok.IDToToken(id); ok {
			p.token = tok
		}
		ref := text[min(p.start, len(text)):min(max(p.end, p.start), len(text))]
		if c.enc.subwordPrefix != "" {
			p.subword = utf8.RuneCountInString(p.token) != utf8.RuneCountInString(ref)
		} else {
			// Hugging Face's fallback: no space in text[start-1 : start+1].
			lo := max(p.startRune-1, 0)
			window := runeSlice(text, lo, p.startRune+1)
			p.subword = p.startRune > 0 && !strings.Contains(window, " ")
		}
		if id == unk {
			p.token, p.subword = ref, false
		}
		pre = append(pre, p)
	}
	return pre
}

// runeSlice returns s[lo:hi] in code points, clamped.
func runeSlice(s string, lo, hi int) string {
	i, start, end := 0, len(s), len(s)
	for b := range s {
		if i == lo {
			start = b
		}
		if i == hi {
			end = b
			break
		}
		i++
	}
	if start > end {
		return ""
	}
	return s[start:end]
}

// wordOf turns tokens back into text as transformers'
// convert_tokens_to_string does (an [UNK] stands for the text it replaced).
func (c *TokenClassifier) wordOf(pre []preEntity) string {
	if c.enc.decoderType == "WordPiece" {
		toks := make([]string, len(pre))
		for i, p := range pre {
			toks[i] = p.token
		}
		return c.enc.joinTokens(toks)
	}
	ids := make([]int, len(pre))
	for i, p := range pre {
		ids[i] = p.id
	}
	if w, err := c.enc.tok.Decode(ids, false); err == nil {
		return w
	}
	parts := make([]string, len(pre))
	for i, p := range pre {
		parts[i] = p.token
	}
	return strings.Join(parts, " ")
}

// aggregateWords merges subword tokens into words, labelled by strategy.
func (c *TokenClassifier) aggregateWords(pre []preEntity, strategy Aggregation) []Entity {
	labels := c.enc.info.Labels
	var words [][]preEntity
	for _, p := range pre {
		if len(words) > 0 && p.subword {
			words[len(words)-1] = append(words[len(words)-1], p)
		} else {
			words = append(words, []preEntity{p})
		}
	}
	out := make([]Entity, 0, len(words))
	for _, w := range words {
		var scores []float64
		switch strategy {
		case AggregateFirst:
			scores = w[0].scores
		case AggregateMax:
			best, bestScore := 0, -1.0
			for i, p := range w {
				if s := p.scores[argmax(p.scores)]; s > bestScore {
					best, bestScore = i, s
				}
			}
			scores = w[best].scores
		case AggregateAverage:
			scores = make([]float64, len(labels))
			for _, p := range w {
				for k, s := range p.scores {
					scores[k] += s
				}
			}
			for k := range scores {
				scores[k] /= float64(len(w))
			}
		}
		k := argmax(scores)
		first, last := w[0], w[len(w)-1]
		out = append(out, Entity{Label: labels[k], Score: scores[k], Index: -1, Word: c.wordOf(w),
			Start: first.start, End: last.end, StartRune: first.startRune, EndRune: last.endRune})
	}
	return out
}

// tagOf splits a BIO label into its B/I marker and entity type; labels
// without a prefix count as I (continuations).
func tagOf(label string) (bi, tag string) {
	if t, ok := strings.CutPrefix(label, "B-"); ok {
		return "B", t
	}
	if t, ok := strings.CutPrefix(label, "I-"); ok {
		return "I", t
	}
	return "I", label
}

// group joins adjacent entities of the same type (a B- label starts a new
// group). pre, when set, holds the tokens behind ents (aggregation simple),
// so the group's word is decoded from its tokens.
func (c *TokenClassifier) group(ents []Entity, pre []preEntity) []Entity {
	var out []Entity
	flush := func(lo, hi int) {
		g := ents[lo:hi]
		_, tag := tagOf(g[0].Label)
		if i := strings.Index(g[0].Label, "-"); i >= 0 {
			tag = g[0].Label[i+1:]
		}
		var sum float64
		for _, e := range g {
			sum += e.Score
		}
		word := ""
		if pre != nil {
			word = c.wordOf(pre[lo:hi])
		} else {
			// Words are already text: join them as the decoder joins tokens.
			parts := make([]string, len(g))
			for i, e := range g {
				parts[i] = e.Word
			}
			word = c.joinWords(parts)
		}
		out = append(out, Entity{Label: tag, Score: sum / float64(len(g)), Index: -1, Word: word,
			Start: g[0].Start, End: g[len(g)-1].End, StartRune: g[0].StartRune, EndRune: g[len(g)-1].EndRune})
	}
	start := 0
	for i := 1; i <= len(ents); i++ {
		if i < len(ents) {
			bi, tag := tagOf(ents[i].Label)
			_, lastTag := tagOf(ents[i-1].Label)
			if tag == lastTag && bi != "B" {
				continue
			}
		}
		if i > start {
			flush(start, i)
		}
		start = i
	}
	return out
}

// joinWords joins decoded words the way the tokenizer's decoder joins
// tokens: WordPiece puts spaces between them, byte-level BPE words carry
// their own spaces.
func (c *TokenClassifier) joinWords(words []string) string {
	switch c.enc.decoderType {
	case "WordPiece":
		return c.enc.joinTokens(words)
	case "ByteLevel":
		return strings.Join(words, "")
	}
	return strings.Join(words, " ")
}
