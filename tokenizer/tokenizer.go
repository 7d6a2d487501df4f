package tokenizer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Tokenizer encodes text into token ids and decodes ids back into text.
// It is immutable after loading and safe for concurrent use.
type Tokenizer struct {
	norm  normalizer
	pre   preTokenizer
	model model
	post  postProcessor
	dec   decoder

	added     []AddedToken
	rawMatch  *matcher // added tokens matched in the original text
	normMatch *matcher // added tokens matched in normalized text
	addedTok  map[string]int
	addedID   map[int]*AddedToken
	rawIdx    []int32 // rawMatch token i is added[rawIdx[i]]
	normIdx   []int32
	modelTok  []string // model id -> token
	// surfaceID is the id whose tokens show their text rather than the
	// vocabulary entry (a Unigram model's unknown piece), -1 for none.
	surfaceID int
	vocabSize int

	specials SpecialTokens
	trunc    *TruncationParams
	pad      *PaddingParams
	cleanup  bool // clean_up_tokenization_spaces
	threads  int  // bound on EncodeBatch's goroutines, 0 for GOMAXPROCS

	pool *sync.Pool // *scratch buffers, shared by copies
}

// SpecialToken is a special token's text and id (ID -1 when absent).
type SpecialToken struct {
	Token string
	ID    int
}

// SpecialTokens are the tokenizer's named special tokens.
type SpecialTokens struct {
	Pad, Unk, CLS, SEP, Mask, BOS, EOS SpecialToken
}

// TruncationStrategy says where a pair of sequences loses its tokens, with
// the names tokenizer.json uses.
type TruncationStrategy string

const (
	// TruncateLongestFirst removes tokens one at a time from whichever
	// sequence is longer (the default).
	TruncateLongestFirst TruncationStrategy = "longest_first"
	// TruncateOnlyFirst cuts the first sequence only.
	TruncateOnlyFirst TruncationStrategy = "only_first"
	// TruncateOnlySecond cuts the second sequence only.
	TruncateOnlySecond TruncationStrategy = "only_second"
)

// PaddingStrategy says how long padded sequences become.
type PaddingStrategy string

const (
	// PadLongest pads to the longest sequence of the batch (the default).
	PadLongest PaddingStrategy = "longest"
	// PadFixed pads to PaddingParams.Length.
	PadFixed PaddingStrategy = "fixed"
)

// Direction is the end of a sequence that truncation cuts or padding
// extends.
type Direction string

const (
	// Right is the end of the sequence (the default).
	Right Direction = "right"
	// Left is the start of the sequence.
	Left Direction = "left"
)

// TruncationParams configures truncation.
type TruncationParams struct {
	MaxLength int
	// Strategy is TruncateLongestFirst when empty.
	Strategy TruncationStrategy
	// Stride is how many tokens each overflowing part repeats from the
	// previous one.
	Stride int
	// Direction is Right (cut the end) when empty.
	Direction Direction
}

// PaddingParams configures padding.
type PaddingParams struct {
	// Strategy is PadLongest when empty.
	Strategy   PaddingStrategy
	Length     int
	MultipleOf int
	// Direction is Right when empty.
	Direction Direction
	PadID     int
	PadTypeID int
	PadToken  string
}

// VocabSize returns the number of distinct tokens, added tokens included.
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// TokenToID returns the id of a token (added tokens first, then the
// model's vocabulary).
func (t *Tokenizer) TokenToID(token string) (int, bool) {
	if id, ok := t.addedTok[token]; ok {
		return id, true
	}
	id, ok := t.model.vocab()[token]
	return id, ok
}

// IDToToken returns the token of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a, ok := t.addedID[id]; ok {
		return a.Content, true
	}
	if id >= 0 && id < len(t.modelTok) && t.modelTok[id] != "" {
		return t.modelTok[id], true
	}
	return "", false
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.addedID[id]
	return ok && a.Special
}

// AddedTokens returns a copy of the added tokens.
func (t *Tokenizer) AddedTokens() []AddedToken { return append([]AddedToken(nil), t.added...) }

// SpecialTokens returns the named special tokens.
func (t *Tokenizer) SpecialTokens() SpecialTokens { return t.specials }

// Truncation returns the truncation settings, nil when off.
func (t *Tokenizer) Truncation() *TruncationParams {
	if t.trunc == nil {
		return nil
	}
	c := *t.trunc
	return &c
}

// Padding returns the padding settings, nil when off.
func (t *Tokenizer) Padding() *PaddingParams {
	if t.pad == nil {
		return nil
	}
	c := *t.pad
	return &c
}

// WithTruncation returns a copy of t with truncation set (nil turns it
// off). Empty Strategy and Direction take their defaults.
func (t *Tokenizer) WithTruncation(p *TruncationParams) *Tokenizer {
	c := *t
	if p == nil {
		c.trunc = nil
		return &c
	}
	q := *p
	if q.Strategy == "" {
		q.Strategy = TruncateLongestFirst
	}
	if q.Direction == "" {
		q.Direction = Right
	}
	c.trunc = &q
	return &c
}

// WithThreads returns a copy of t whose batch calls (EncodeBatch,
// EncodePairBatch) run on at most n goroutines; 0, the default, means
// runtime.GOMAXPROCS(0). Negative n counts as 0.
func (t *Tokenizer) WithThreads(n int) *Tokenizer {
	c := *t
	c.threads = max(n, 0)
	return &c
}

// WithPadding returns a copy of t with padding set (nil turns it off).
// Empty Strategy and Direction take PadLongest and Right.
func (t *Tokenizer) WithPadding(p *PaddingParams) *Tokenizer {
	c := *t
	if p == nil {
		c.pad = nil
		return &c
	}
	q := *p
	if q.Strategy == "" {
		q.Strategy = PadLongest
	}
	if q.Direction == "" {
		q.Direction = Right
	}
	c.pad = &q
	return &c
}

// invalidUTF8 reports the first invalid byte offset, or -1.
func invalidUTF8(s string) int {
	if utf8.ValidString(s) {
		return -1 // the common case, checked a word at a time
	}
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			return i
		}
		i += w
	}
	return -1
}

// rec is one token of a sequence before the Encoding is built.
type rec struct {
	id    int
	added int32 // index into Tokenizer.added, -1 for a model token
	off   Offset
	word  int
	// str is the token's text when it differs from the vocabulary's: an
	// added token with the spaces lstrip/rstrip took, a Unigram unknown run.
	str string
}

// scratch holds per-call buffers, pooled so steady-state encoding does not
// allocate them again.
type scratch struct {
	words  []piece
	toks   []tok
	recs   []rec
	recs2  []rec
	splits []addedSplit
	subs   []addedSplit
	spm    spmBuf // spmPre's buffers
	// wordsHigh is the most entries of words ever used: putScratch clears
	// only those, not the whole capacity.
	wordsHigh int
}

func (t *Tokenizer) getScratch() *scratch {
	if s, ok := t.pool.Get().(*scratch); ok {
		return s
	}
	return &scratch{}
}

func (t *Tokenizer) putScratch(s *scratch) {
	if cap(s.recs) > 1<<16 || cap(s.words) > 1<<14 || cap(s.spm.al) > 1<<16 {
		return // do not keep huge buffers alive
	}
	clear(s.words[:s.wordsHigh]) // drop references to the caller's text
	s.words = s.words[:0]
	s.wordsHigh = 0
	t.pool.Put(s)
}

// encodeSeq tokenizes one text without special tokens.
func (t *Tokenizer) encodeSeq(text string, seq int) (*Encoding, error) {
	sc := t.getScratch()
	defer t.putScratch(sc)
	recs, err := t.encodeRecs(text, seq, sc, sc.recs[:0])
	sc.recs = recs
	if err != nil {
		return nil, err
	}
	return t.buildEncoding(recs, seq), nil
}

// encodeRecs appends the tokens of one text to recs.
func (t *Tokenizer) encodeRecs(text string, seq int, sc *scratch, recs []rec) ([]rec, error) {
	if i := invalidUTF8(text); i >= 0 {
		return recs, fmt.Errorf("tokenizer: text of sequence %d is not valid UTF-8 (byte offset %d)", seq, i)
	}
	word := 0
	sc.splits = t.rawMatch.split(text, sc.splits[:0])
	for _, sp := range sc.splits {
		if sp.tok >= 0 {
			r := rec{t.rawMatch.toks[sp.tok].ID, t.rawIdx[sp.tok], Offset{sp.a, sp.b}, word, ""}
			if sp.b-sp.a != len(t.rawMatch.pats[sp.tok]) {
				r.str = text[sp.a:sp.b] // Hugging Face keeps the stripped spaces in the token
			}
			recs = append(recs, r)
			word++
			continue
		}
		p := piece{s: text[sp.a:sp.b], base: sp.a}
		if t.norm != nil {
			if err := t.norm.normalize(&p); err != nil {
				return recs, err
			}
		}
		if p.s == "" {
			continue
		}
		sc.subs = t.normMatch.split(p.s, sc.subs[:0])
		for _, sub := range sc.subs {
			if sub.tok >= 0 {
				r := rec{t.normMatch.toks[sub.tok].ID, t.normIdx[sub.tok], p.orig(sub.a, sub.b), word, ""}
				if sub.b-sub.a != len(t.normMatch.pats[sub.tok]) {
					r.str = p.s[sub.a:sub.b]
				}
				recs = append(recs, r)
				word++
				continue
			}
			q := p.sub(sub.a, sub.b)
			words := sc.words[:0]
			var err error
			if sp, ok := t.pre.(spmPre); ok {
				// The fused SentencePiece step reuses its buffers: these
				// words are done with before the next split.
				words = sp.splitBuf(q, words, &sc.spm)
			} else if t.pre != nil {
				words, err = t.pre.split(q, words)
			} else {
				words = append(words, q)
			}
			sc.words = words
			sc.wordsHigh = max(sc.wordsHigh, len(words))
			if err != nil {
				return recs, err
			}
			for wi := range words {
				w := &words[wi]
				if w.s == "" {
					continue
				}
				if sc.toks, err = t.model.tokenize(w, sc.toks[:0]); err != nil {
					return recs, err
				}
				for _, tk := range sc.toks {
					r := rec{tk.id, -1, w.orig(tk.a, tk.b), word, ""}
					if tk.id == t.surfaceID {
						r.str = w.s[tk.a:tk.b]
					}
					recs = append(recs, r)
				}
				word++
			}
		}
	}
	return recs, nil
}

// recToken is the token text of a rec.
func (t *Tokenizer) recToken(r *rec) string {
	if r.str != "" {
		return r.str
	}
	if r.added >= 0 {
		return t.added[r.added].Content
	}
	return t.modelToken(r.id)
}

// buildEncoding makes an Encoding of exactly len(recs) tokens with few
// allocations (the int fields share one block).
func (t *Tokenizer) buildEncoding(recs []rec, seq int) *Encoding {
	e := allocEncoding(len(recs))
	for i := range recs {
		r := &recs[i]
		e.IDs[i] = r.id
		e.Tokens[i] = t.recToken(r)
		e.Offsets[i] = r.off
		e.TypeIDs[i] = seq
		e.AttentionMask[i] = 1
		e.WordIDs[i] = r.word
		e.SequenceIDs[i] = seq
	}
	return e
}

// allocEncoding returns an Encoding of n zeroed tokens.
func allocEncoding(n int) *Encoding {
	ints := make([]int, 6*n)
	return &Encoding{
		IDs:               ints[0*n : 1*n : 1*n],
		TypeIDs:           ints[1*n : 2*n : 2*n],
		AttentionMask:     ints[2*n : 3*n : 3*n],
		SpecialTokensMask: ints[3*n : 4*n : 4*n],
		WordIDs:           ints[4*n : 5*n : 5*n],
		SequenceIDs:       ints[5*n : 6*n : 6*n],
		Tokens:            make([]string, n),
		Offsets:           make([]Offset, n),
	}
}

// encodeTemplate is the common case of encode without truncation and with
// a TemplateProcessing post-processor: it writes the final encoding
// directly instead of merging intermediate ones.
func (t *Tokenizer) encodeTemplate(tp *templateProc, text string, pair *string, addSpecial bool) (*Encoding, error) {
	sc := t.getScratch()
	defer t.putScratch(sc)
	var err error
	sc.recs, err = t.encodeRecs(text, 0, sc, sc.recs[:0])
	if err != nil {
		return nil, err
	}
	seqs := [2][]rec{sc.recs}
	tpl := tp.single
	if pair != nil {
		sc.recs2, err = t.encodeRecs(*pair, 1, sc, sc.recs2[:0])
		if err != nil {
			return nil, err
		}
		seqs[1] = sc.recs2
		tpl = tp.pair
	}
	n := 0
	for _, p := range tpl {
		if p.seq >= 0 {
			n += len(seqs[p.seq])
		} else if addSpecial {
			n += len(tp.specials[p.special].ids)
		}
	}
	e := allocEncoding(n)
	i := 0
	for _, p := range tpl {
		if p.seq >= 0 {
			for k := range seqs[p.seq] {
				r := &seqs[p.seq][k]
				e.IDs[i] = r.id
				e.Tokens[i] = t.recToken(r)
				e.Offsets[i] = r.off
				e.TypeIDs[i] = p.typeID
				e.AttentionMask[i] = 1
				e.WordIDs[i] = r.word
				e.SequenceIDs[i] = p.seq
				i++
			}
			continue
		}
		if !addSpecial {
			continue
		}
		sp := tp.specials[p.special]
		for k, id := range sp.ids {
			e.IDs[i] = id
			e.Tokens[i] = sp.toks[k]
			e.TypeIDs[i] = p.typeID
			e.AttentionMask[i] = 1
			e.SpecialTokensMask[i] = 1
			e.WordIDs[i] = -1
			e.SequenceIDs[i] = -1
			i++
		}
	}
	return e, nil
}

func (t *Tokenizer) modelToken(id int) string {
	if id >= 0 && id < len(t.modelTok) {
		return t.modelTok[id]
	}
	return ""
}

// Encode tokenizes one text. With addSpecialTokens the post-processor adds
// the model's special tokens. Truncation and padding configured on the
// tokenizer apply (overflowing parts go to Encoding.Overflowing).
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) (*Encoding, error) {
	e, err := t.encode(text, nil, addSpecialTokens)
	if err != nil {
		return nil, err
	}
	if t.pad != nil {
		if err := padEncodings([]*Encoding{e}, t.pad); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// EncodePair tokenizes a pair of texts (e.g. question and context).
func (t *Tokenizer) EncodePair(text, pair string, addSpecialTokens bool) (*Encoding, error) {
	e, err := t.encode(text, &pair, addSpecialTokens)
	if err != nil {
		return nil, err
	}
	if t.pad != nil {
		if err := padEncodings([]*Encoding{e}, t.pad); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (t *Tokenizer) encode(text string, pair *string, addSpecial bool) (*Encoding, error) {
	if tp, ok := t.post.(*templateProc); ok && t.trunc == nil && (pair == nil || tp.pair != nil) {
		return t.encodeTemplate(tp, text, pair, addSpecial)
	}
	a, err := t.encodeSeq(text, 0)
	if err != nil {
		return nil, err
	}
	var b *Encoding
	if pair != nil {
		if b, err = t.encodeSeq(*pair, 1); err != nil {
			return nil, err
		}
	}
	return t.postProcess(a, b, addSpecial)
}

// postProcess truncates, then adds special tokens.
func (t *Tokenizer) postProcess(a, b *Encoding, addSpecial bool) (*Encoding, error) {
	if t.trunc != nil {
		p := *t.trunc
		if addSpecial && t.post != nil {
			n := t.post.addedTokens(b != nil)
			if p.MaxLength < n {
				return nil, fmt.Errorf("tokenizer: truncation max_length %d is smaller than the %d special tokens the post-processor adds", p.MaxLength, n)
			}
			p.MaxLength -= n
		}
		if err := truncateEncodings(a, b, &p); err != nil {
			return nil, err
		}
	}
	encs := []*Encoding{a}
	if b != nil {
		encs = append(encs, b)
	}
	if t.post != nil {
		encs = t.post.process(encs, addSpecial)
	}
	if len(encs) == 1 {
		return encs[0], nil
	}
	return mergeEncodings(encs), nil
}

// EncodeBatch encodes texts in parallel, then pads them together when
// padding is configured.
func (t *Tokenizer) EncodeBatch(ctx context.Context, texts []string, addSpecialTokens bool) ([]*Encoding, error) {
	return t.encodeBatch(ctx, texts, nil, addSpecialTokens)
}

// EncodePairBatch encodes pairs (texts[i], pairs[i]) in parallel.
func (t *Tokenizer) EncodePairBatch(ctx context.Context, texts, pairs []string, addSpecialTokens bool) ([]*Encoding, error) {
	if len(texts) != len(pairs) {
		return nil, fmt.Errorf("tokenizer: EncodePairBatch got %d texts but %d pairs", len(texts), len(pairs))
	}
	return t.encodeBatch(ctx, texts, pairs, addSpecialTokens)
}

func (t *Tokenizer) encodeBatch(ctx context.Context, texts, pairs []string, addSpecial bool) ([]*Encoding, error) {
	out := make([]*Encoding, len(texts))
	workers := runtime.GOMAXPROCS(0)
	if t.threads > 0 {
		workers = min(workers, t.threads)
	}
	workers = min(workers, len(texts))
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(texts) {
					return
				}
				if i%64 == 0 {
					if err := ctx.Err(); err != nil {
						errOnce.Do(func() { firstErr = err })
						failed.Store(true)
						return
					}
				}
				var p *string
				if pairs != nil {
					p = &pairs[i]
				}
				e, err := t.encode(texts[i], p, addSpecial)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("tokenizer: batch item %d: %w", i, err) })
					failed.Store(true)
					return
				}
				out[i] = e
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t.pad != nil {
		if err := padEncodings(out, t.pad); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Decode turns ids back into text. With skipSpecialTokens, special added
// tokens are left out.
func (t *Tokenizer) Decode(ids []int, skipSpecialTokens bool) (string, error) {
	toks := make([]string, 0, len(ids))
	for i, id := range ids {
		if a, ok := t.addedID[id]; ok {
			if skipSpecialTokens && a.Special {
				continue
			}
			toks = append(toks, a.Content)
			continue
		}
		s, ok := t.IDToToken(id)
		if !ok {
			return "", fmt.Errorf("tokenizer: decode: id %d at position %d is not in the vocabulary", id, i)
		}
		toks = append(toks, s)
	}
	var s string
	if t.dec != nil {
		s = strings.Join(t.dec.decode(toks), "")
	} else {
		s = strings.Join(toks, " ")
	}
	if t.cleanup {
		s = cleanupSpaces(s)
	}
	return s, nil
}

// cleanupSpaces is transformers' clean_up_tokenization: drop the space
// before punctuation and English contractions.
func cleanupSpaces(s string) string {
	return cleanupReplacer.Replace(s)
}

var cleanupPairs = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

// cleanupReplacer applies the pairs one after another, as Python's chained
// str.replace calls do.
var cleanupReplacer = chainReplacer(cleanupPairs)

type chainReplacer [][2]string

func (c chainReplacer) Replace(s string) string {
	for _, p := range c {
		s = strings.ReplaceAll(s, p[0], p[1])
	}
	return s
}

// DecodeStream decodes ids one at a time for streaming generation. It is
// not safe for concurrent use (one stream per generation).
type DecodeStream struct {
	t          *Tokenizer
	skip       bool
	ids        []int
	prefix     string
	prefixDone int // number of leading ids of ids that prefix covers
}

// NewDecodeStream starts an incremental decoder.
func (t *Tokenizer) NewDecodeStream(skipSpecialTokens bool) *DecodeStream {
	return &DecodeStream{t: t, skip: skipSpecialTokens}
}

// Step adds one id and returns the text it completes: "" while the text so
// far ends in an incomplete UTF-8 sequence (or the id adds nothing).
func (s *DecodeStream) Step(id int) (string, error) {
	if s.prefix == "" && len(s.ids) > 0 {
		p, err := s.t.Decode(s.ids, s.skip)
		if err != nil {
			return "", err
		}
		if !strings.HasSuffix(p, "\uFFFD") {
			s.prefix, s.prefixDone = p, len(s.ids)
		}
	}
	s.ids = append(s.ids, id)
	full, err := s.t.Decode(s.ids, s.skip)
	if err != nil {
		s.ids = s.ids[:len(s.ids)-1]
		return "", err
	}
	if len(full) <= len(s.prefix) || strings.HasSuffix(full, "\uFFFD") {
		return "", nil
	}
	if !strings.HasPrefix(full, s.prefix) {
		return "", errors.New("tokenizer: decode stream: decoded text no longer starts with the text already returned")
	}
	piece := full[len(s.prefix):]
	// Keep only the ids after the old prefix: they give the decoder the
	// context it needs (e.g. WordPiece's "##" joins) for the next step.
	keep := len(s.ids) - s.prefixDone
	s.ids = append(s.ids[:0], s.ids[s.prefixDone:]...)
	p, err := s.t.Decode(s.ids, s.skip)
	if err != nil {
		return "", err
	}
	s.prefix, s.prefixDone = p, keep
	return piece, nil
}
