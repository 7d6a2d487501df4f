package pipeline

import (
	"context"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"slices"
	"sort"
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
	// Stride, when positive, runs texts longer than the model accepts as
	// overlapping windows of the model's length sharing Stride tokens, as
	// Hugging Face's stride does: each window is labelled and aggregated
	// on its own, then entities that start inside an earlier one are
	// merged (the longer wins, then the higher score). Nothing is cut, so
	// Options.Truncation does not apply. Unlike Hugging Face, aggregation
	// none is allowed: a token seen by two windows is kept once (the
	// higher score), and Index is its position in the whole text's
	// encoding.
	Stride int
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

// Classify labels the tokens of every text. A text longer than the model
// accepts is cut or refused by Options.Truncation, or split into windows
// with TokenOptions.Stride.
func (c *TokenClassifier) Classify(ctx context.Context, texts []string, opt TokenOptions) ([][]Entity, error) {
	out, _, err := c.ClassifyWithInfo(ctx, texts, opt)
	return out, err
}

// tokWindow is one window of a text: its encoding, and the position in the
// whole text's encoding of its first token.
type tokWindow struct {
	input, k, shift int
	enc             *tokenizer.Encoding
}

// ClassifyWithInfo is Classify that also reports, per text, whether it was
// truncated and how many windows it ran as.
func (c *TokenClassifier) ClassifyWithInfo(ctx context.Context, texts []string, opt TokenOptions) ([][]Entity, []InputInfo, error) {
	agg := opt.Aggregation
	if agg == "" {
		agg = AggregateNone
	}
	switch agg {
	case AggregateNone, AggregateSimple, AggregateFirst, AggregateAverage, AggregateMax:
	default:
		return nil, nil, fmt.Errorf("pipeline: unknown aggregation strategy %q", agg)
	}
	ignore := opt.IgnoreLabels
	if ignore == nil {
		ignore = []string{"O"}
	}
	tok := c.enc.tok
	if opt.Stride < 0 {
		return nil, nil, fmt.Errorf("pipeline: negative stride %d", opt.Stride)
	}
	if opt.Stride > 0 {
		if c.enc.limit <= 0 {
			return nil, nil, fmt.Errorf("pipeline: a stride needs a window length, and neither the model nor the tokenizer sets one")
		}
		tok = c.enc.untruncated.WithTruncation(&tokenizer.TruncationParams{MaxLength: c.enc.limit, Strategy: tokenizer.TruncateLongestFirst, Stride: opt.Stride})
	}
	out := make([][]Entity, len(texts))
	infos := make([]InputInfo, len(texts))
	err := chunks(ctx, len(texts), c.enc.batch, func(lo, hi int) error {
		var wins []tokWindow
		perText := make([][][]Entity, hi-lo)
		index := make([]*textIndex, hi-lo)
		for i := lo; i < hi; i++ {
			enc, err := tok.Encode(texts[i], true)
			if err != nil {
				return fmt.Errorf("pipeline: text %d: %w", i, err)
			}
			if opt.Stride == 0 {
				info, err := c.enc.fit("text", i, enc)
				if err != nil {
					return err
				}
				infos[i] = info
				wins = append(wins, tokWindow{input: i, enc: enc})
				continue
			}
			parts := append([]*tokenizer.Encoding{enc}, enc.Overflowing...)
			infos[i] = InputInfo{Windows: len(parts)}
			perText[i-lo] = make([][]Entity, len(parts))
			// Window k starts k·(window - stride) tokens into the text.
			step := realTokens(enc) - specialCount(enc) - opt.Stride
			for k, p := range parts {
				wins = append(wins, tokWindow{input: i, k: k, shift: k * step, enc: p})
			}
		}
		return chunks(ctx, len(wins), c.enc.batch, func(wlo, whi int) error {
			encs := make([]*tokenizer.Encoding, whi-wlo)
			for j := range encs {
				encs[j] = wins[wlo+j].enc
			}
			res, in, err := c.enc.forward(ctx, encs)
			if err != nil {
				return err
			}
			lg := res.Logits.Float32s()
			nl := len(c.enc.info.Labels)
			for j, w := range wins[wlo:whi] {
				if index[w.input-lo] == nil {
					index[w.input-lo] = newTextIndex(texts[w.input])
				}
				ents := c.entities(texts[w.input], index[w.input-lo], w.enc, lg[j*in.Seq*nl:], nl, agg, ignore, w.shift)
				if w.k == len(perText[w.input-lo])-1 {
					index[w.input-lo] = nil // the text's last window
				}
				if opt.Stride == 0 {
					out[w.input] = ents
					continue
				}
				perText[w.input-lo][w.k] = ents
				if w.k == len(perText[w.input-lo])-1 {
					out[w.input] = mergeWindows(perText[w.input-lo])
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return out, infos, nil
}

// specialCount counts the special tokens of enc (padding excluded).
func specialCount(enc *tokenizer.Encoding) int {
	n := 0
	for j, s := range enc.SpecialTokensMask {
		if s != 0 && (enc.AttentionMask == nil || enc.AttentionMask[j] == 1) {
			n++
		}
	}
	return n
}

// entities labels one window's tokens and aggregates them; shift is added
// to token indexes.
func (c *TokenClassifier) entities(text string, ti *textIndex, enc *tokenizer.Encoding, logits []float32, nl int, agg Aggregation, ignore []string, shift int) []Entity {
	labels := c.enc.info.Labels
	pre := c.preEntities(text, ti, enc, logits, nl)
	var ents []Entity
	if agg == AggregateNone || agg == AggregateSimple {
		for _, p := range pre {
			k := argmax(p.scores)
			ents = append(ents, Entity{Label: labels[k], Score: p.scores[k], Index: p.index + shift, Word: p.token,
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
	return kept
}

// mergeWindows joins the entities of a text's windows as Hugging Face's
// aggregate_overlapping_entities does: sorted by start, an entity that
// starts inside the one kept before it replaces it when it is longer, or
// as long with a higher score, and is dropped otherwise.
func mergeWindows(windows [][]Entity) []Entity {
	var all []Entity
	for _, w := range windows {
		all = append(all, w...)
	}
	if len(windows) <= 1 || len(all) == 0 {
		return all
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].Start < all[b].Start })
	out := make([]Entity, 0, len(all))
	prev := all[0]
	for _, e := range all[1:] {
		if prev.Start <= e.Start && e.Start < prev.End {
			cur, was := e.End-e.Start, prev.End-prev.Start
			if cur > was || (cur == was && e.Score > prev.Score) {
				prev = e
			}
			continue
		}
		out = append(out, prev)
		prev = e
	}
	return append(out, prev)
}

// preEntities pairs every non-special token with its softmax scores and
// decides whether it continues the previous word: for WordPiece, when the
// token is longer than the text it covers (its ## prefix); otherwise when no
// space surrounds its start.
func (c *TokenClassifier) preEntities(text string, ti *textIndex, enc *tokenizer.Encoding, logits []float32, nl int) []preEntity {
	unk := c.enc.tok.SpecialTokens().Unk.ID
	var pre []preEntity
	for j, id := range enc.IDs {
		if enc.SpecialTokensMask[j] != 0 {
			continue
		}
		p := preEntity{id: id, token: enc.Tokens[j], scores: softmax64(logits[j*nl : (j+1)*nl]), index: j,
			start: enc.Offsets[j].Start, end: enc.Offsets[j].End}
		p.startRune, p.endRune = ti.char(p.start), ti.char(p.end)
		if tok, ok := c.enc.tok.IDToToken(id); ok {
			p.token = tok
		}
		ref := text[min(max(p.start, 0), len(text)):min(max(p.end, p.start, 0), len(text))]
		if c.enc.subwordPrefix != "" {
			p.subword = utf8.RuneCountInString(p.token) != utf8.RuneCountInString(ref)
		} else {
			// Hugging Face's fallback: no space in text[start-1 : start+1].
			p.subword = p.startRune > 0 && !strings.Contains(ti.runes(text, p.startRune-1, p.startRune+1), " ")
		}
		if id == unk {
			p.token, p.subword = ref, false
		}
		pre = append(pre, p)
	}
	return pre
}

// textIndex maps between byte and code-point offsets of one text in
// constant time, so that the windows of a long text cost no more than its
// length. Code points are counted as tokenizer.Encoding.CharOffsets counts
// them (an invalid byte is one).
type textIndex struct {
	char2byte []int // byte offset of each code point, and len(text) last
}

func newTextIndex(text string) *textIndex {
	ti := &textIndex{char2byte: make([]int, 0, len(text)+1)}
	for i := 0; i < len(text); {
		ti.char2byte = append(ti.char2byte, i)
		_, w := utf8.DecodeRuneInString(text[i:])
		i += w
	}
	ti.char2byte = append(ti.char2byte, len(text))
	return ti
}

// char returns the code point holding byte offset b (clamped to the text).
func (ti *textIndex) char(b int) int {
	n := len(ti.char2byte) - 1
	if b <= 0 {
		return 0
	}
	// The last code point starting at or before b.
	k := sort.SearchInts(ti.char2byte, b+1) - 1
	return min(max(k, 0), n)
}

// runes returns the code points lo..hi of text, clamped.
func (ti *textIndex) runes(text string, lo, hi int) string {
	n := len(ti.char2byte) - 1
	lo, hi = min(max(lo, 0), n), min(max(hi, 0), n)
	if lo >= hi {
		return ""
	}
	return text[ti.char2byte[lo]:ti.char2byte[hi]]
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
