package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// maxVocabID bounds token ids so a corrupt file cannot make us allocate
// an unbounded id table.
const maxVocabID = 1 << 24

// FromFile loads a Hugging Face tokenizer.json file.
func FromFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := FromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// FromDir loads a tokenizer folder: tokenizer.json when present, else the
// legacy files (vocab.txt, or vocab.json + merges.txt). tokenizer_config.json
// is applied when present (special tokens, clean_up_tokenization_spaces).
func FromDir(dir string) (*Tokenizer, error) {
	p := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(p); err != nil {
		return FromLegacyDir(dir)
	}
	t, err := FromFile(p)
	if err != nil {
		return nil, err
	}
	cfg, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		t.applyConfig(cfg)
	}
	return t, nil
}

type rawJSON = json.RawMessage

type fileJSON struct {
	Truncation    *truncJSON  `json:"truncation"`
	Padding       *padJSON    `json:"padding"`
	AddedTokens   []addedJSON `json:"added_tokens"`
	Normalizer    rawJSON     `json:"normalizer"`
	PreTokenizer  rawJSON     `json:"pre_tokenizer"`
	Model         rawJSON     `json:"model"`
	PostProcessor rawJSON     `json:"post_processor"`
	Decoder       rawJSON     `json:"decoder"`
}

type truncJSON struct {
	Direction string `json:"direction"`
	MaxLength int    `json:"max_length"`
	Strategy  string `json:"strategy"`
	Stride    int    `json:"stride"`
}

type padJSON struct {
	Strategy        rawJSON `json:"strategy"`
	Direction       string  `json:"direction"`
	PadToMultipleOf *int    `json:"pad_to_multiple_of"`
	PadID           int     `json:"pad_id"`
	PadTypeID       int     `json:"pad_type_id"`
	PadToken        string  `json:"pad_token"`
}

type addedJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
}

func isNull(r rawJSON) bool {
	r = bytes.TrimSpace(r)
	return len(r) == 0 || string(r) == "null"
}

// typeOf reads the "type" field of a component.
func typeOf(r rawJSON) (string, error) {
	var h struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(r, &h); err != nil {
		return "", err
	}
	return h.Type, nil
}

// FromJSON loads a tokenizer from the contents of a tokenizer.json file.
func FromJSON(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("tokenizer: parsing tokenizer.json: %w", err)
	}
	if isNull(f.Model) {
		return nil, errors.New("tokenizer: tokenizer.json has no model")
	}
	b := &builder{}
	var err error
	if b.model, b.modelUnk, err = parseModel(f.Model); err != nil {
		return nil, fmt.Errorf("tokenizer: model: %w", err)
	}
	if !isNull(f.Normalizer) {
		if b.norm, err = parseNormalizer(f.Normalizer); err != nil {
			return nil, fmt.Errorf("tokenizer: normalizer: %w", err)
		}
	}
	if !isNull(f.PreTokenizer) {
		if b.pre, err = parsePreTokenizer(f.PreTokenizer); err != nil {
			return nil, fmt.Errorf("tokenizer: pre_tokenizer: %w", err)
		}
		if fast, ok := newSPMPre(b.pre); ok {
			b.pre = fast
		}
	}
	if !isNull(f.PostProcessor) {
		if b.post, err = parsePost(f.PostProcessor); err != nil {
			return nil, fmt.Errorf("tokenizer: post_processor: %w", err)
		}
	}
	if !isNull(f.Decoder) {
		if b.dec, err = parseDecoder(f.Decoder); err != nil {
			return nil, fmt.Errorf("tokenizer: decoder: %w", err)
		}
	}
	for i, a := range f.AddedTokens {
		if a.ID < 0 || a.ID >= maxVocabID {
			return nil, fmt.Errorf("tokenizer: added_tokens[%d] %q has invalid id %d", i, a.Content, a.ID)
		}
		b.added = append(b.added, AddedToken(a))
	}
	t, err := b.build()
	if err != nil {
		return nil, err
	}
	if f.Truncation != nil {
		tp := &TruncationParams{MaxLength: f.Truncation.MaxLength, Stride: f.Truncation.Stride}
		switch f.Truncation.Strategy {
		case "LongestFirst", "":
			tp.Strategy = TruncateLongestFirst
		case "OnlyFirst":
			tp.Strategy = TruncateOnlyFirst
		case "OnlySecond":
			tp.Strategy = TruncateOnlySecond
		default:
			return nil, fmt.Errorf("%w: truncation strategy %q", ErrUnsupported, f.Truncation.Strategy)
		}
		if tp.Direction, err = parseDirection("truncation.direction", f.Truncation.Direction); err != nil {
			return nil, err
		}
		if err := checkSize("truncation.max_length", tp.MaxLength); err != nil {
			return nil, err
		}
		if err := checkSize("truncation.stride", tp.Stride); err != nil {
			return nil, err
		}
		t.trunc = tp
	}
	if f.Padding != nil {
		pp := &PaddingParams{PadID: f.Padding.PadID, PadTypeID: f.Padding.PadTypeID, PadToken: f.Padding.PadToken}
		if pp.Direction, err = parseDirection("padding.direction", f.Padding.Direction); err != nil {
			return nil, err
		}
		if f.Padding.PadToMultipleOf != nil {
			pp.MultipleOf = *f.Padding.PadToMultipleOf
		}
		var s string
		var fixed struct {
			Fixed *int `json:"Fixed"`
		}
		if err := json.Unmarshal(f.Padding.Strategy, &s); err == nil {
			if s != "BatchLongest" {
				return nil, fmt.Errorf("%w: padding strategy %q", ErrUnsupported, s)
			}
			pp.Strategy = PadLongest
		} else if err := json.Unmarshal(f.Padding.Strategy, &fixed); err == nil && fixed.Fixed != nil {
			pp.Strategy, pp.Length = PadFixed, *fixed.Fixed
		} else {
			return nil, fmt.Errorf("%w: padding strategy %s", ErrUnsupported, string(f.Padding.Strategy))
		}
		if err := checkSize("padding.strategy.Fixed", pp.Length); err != nil {
			return nil, err
		}
		if err := checkSize("padding.pad_to_multiple_of", pp.MultipleOf); err != nil {
			return nil, err
		}
		t.pad = pp
	}
	return t, nil
}

// parseDirection reads tokenizer.json's "Right"/"Left" (any case; empty
// means Right).
func parseDirection(field, s string) (Direction, error) {
	switch d := Direction(strings.ToLower(s)); d {
	case "":
		return Right, nil
	case Right, Left:
		return d, nil
	}
	return "", fmt.Errorf("%w: %s %q (want Right or Left)", ErrUnsupported, field, s)
}

// builder assembles a Tokenizer from parsed components.
type builder struct {
	norm     normalizer
	pre      preTokenizer
	model    model
	modelUnk string
	post     postProcessor
	dec      decoder
	added    []AddedToken
}

func (b *builder) build() (*Tokenizer, error) {
	t := &Tokenizer{norm: b.norm, pre: b.pre, model: b.model, post: b.post, dec: b.dec,
		addedTok: map[string]int{}, addedID: map[int]*AddedToken{}, pool: &sync.Pool{}}
	t.modelTok = idTable(b.model.vocab())
	t.surfaceID = -1
	if u, ok := b.model.(*unigram); ok {
		t.modelTok = u.pieces // a list vocabulary may repeat a piece
		// Hugging Face's Unigram tokens carry the text they cover, which
		// only differs from the vocabulary for the unknown piece.
		t.surfaceID = u.unkID
	}
	t.added = b.added
	var raw, normd []AddedToken
	var rawPats, normPats []string
	for i := range t.added {
		a := &t.added[i]
		t.addedTok[a.Content] = a.ID
		t.addedID[a.ID] = a
		if a.Content == "" {
			continue
		}
		if a.Normalized && t.norm != nil {
			// Normalized tokens are matched in normalized text, so
			// normalize their content the same way.
			p := piece{s: a.Content}
			if err := t.norm.normalize(&p); err != nil {
				return nil, err
			}
			normd = append(normd, *a)
			normPats = append(normPats, p.s)
			t.normIdx = append(t.normIdx, int32(i))
		} else {
			raw = append(raw, *a)
			rawPats = append(rawPats, a.Content)
			t.rawIdx = append(t.rawIdx, int32(i))
		}
	}
	t.rawMatch = newMatcher(raw, rawPats)
	t.normMatch = newMatcher(normd, normPats)
	seen := make(map[string]bool, len(t.modelTok)+len(t.added))
	for s := range b.model.vocab() {
		seen[s] = true
	}
	for _, a := range t.added {
		seen[a.Content] = true
	}
	t.vocabSize = len(seen)
	t.specials = t.guessSpecials(b.modelUnk)
	return t, nil
}

func (t *Tokenizer) special(tokens ...string) SpecialToken {
	for _, s := range tokens {
		if id, ok := t.TokenToID(s); ok {
			return SpecialToken{s, id}
		}
	}
	return SpecialToken{ID: -1}
}

// guessSpecials names special tokens from the post-processor, the model's
// unknown token and well-known token spellings among added tokens.
func (t *Tokenizer) guessSpecials(unk string) SpecialTokens {
	s := SpecialTokens{
		Pad:  t.special("[PAD]", "<pad>", "<|pad|>"),
		Unk:  t.special(unk, "[UNK]", "<unk>"),
		CLS:  t.special("[CLS]", "<s>"),
		SEP:  t.special("[SEP]", "</s>"),
		Mask: t.special("[MASK]", "<mask>"),
		BOS:  t.special("<s>", "<|endoftext|>", "<|begin_of_text|>"),
		EOS:  t.special("</s>", "<|endoftext|>", "<|end_of_text|>"),
	}
	switch p := t.post.(type) {
	case *bertProc:
		s.CLS, s.SEP = SpecialToken{p.cls, p.clsID}, SpecialToken{p.sep, p.sepID}
	case *robertaProc:
		s.CLS, s.SEP = SpecialToken{p.cls, p.clsID}, SpecialToken{p.sep, p.sepID}
	case *templateProc:
		var names []string
		for _, x := range p.single {
			if x.seq < 0 {
				names = append(names, x.special)
			}
		}
		if len(names) > 0 {
			if sp := p.specials[names[0]]; len(sp.ids) == 1 && p.single[0].seq < 0 {
				s.CLS = SpecialToken{sp.toks[0], sp.ids[0]}
			}
			if sp := p.specials[names[len(names)-1]]; len(sp.ids) == 1 && p.single[len(p.single)-1].seq < 0 {
				s.SEP = SpecialToken{sp.toks[0], sp.ids[0]}
			}
		}
	}
	return s
}

// ---- components ----

func parseVocab(r rawJSON) (map[string]int, error) {
	var v map[string]int
	if err := json.Unmarshal(r, &v); err != nil {
		return nil, fmt.Errorf("vocab: %w", err)
	}
	maxID, maxTok := -1, ""
	for s, id := range v {
		if id < 0 || id >= maxVocabID {
			return nil, fmt.Errorf("vocab token %q has invalid id %d", s, id)
		}
		if id > maxID {
			maxID, maxTok = id, s
		}
	}
	// Tokens are looked up by id in a table as long as the largest id:
	// a few tokens with huge ids must not cost hundreds of megabytes.
	// Real vocabularies are dense (ids 0 to n-1, give or take a few).
	if maxID >= len(v)+maxVocabGap {
		return nil, fmt.Errorf("vocab token %q has id %d but the vocabulary has only %d tokens (ids may leave at most %d unused)", maxTok, maxID, len(v), maxVocabGap)
	}
	return v, nil
}

// maxVocabGap is how many ids a vocabulary may leave unused beyond its
// own size (see parseVocab).
const maxVocabGap = 1 << 16

func parseMerges(r rawJSON) ([][2]string, error) {
	var items []rawJSON
	if err := json.Unmarshal(r, &items); err != nil {
		return nil, fmt.Errorf("merges: %w", err)
	}
	out := make([][2]string, 0, len(items))
	for i, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			parts := strings.Split(s, " ")
			if len(parts) != 2 {
				return nil, fmt.Errorf("merges[%d] %q is not two tokens separated by one space", i, s)
			}
			out = append(out, [2]string{parts[0], parts[1]})
			continue
		}
		var pair []string
		if err := json.Unmarshal(it, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", i)
		}
		out = append(out, [2]string{pair[0], pair[1]})
	}
	return out, nil
}

func parseModel(r rawJSON) (model, string, error) {
	var m struct {
		Type                    string   `json:"type"`
		Vocab                   rawJSON  `json:"vocab"`
		Merges                  rawJSON  `json:"merges"`
		UnkToken                *string  `json:"unk_token"`
		ContinuingSubwordPrefix *string  `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string  `json:"end_of_word_suffix"`
		MaxInputCharsPerWord    *int     `json:"max_input_chars_per_word"`
		Dropout                 *float64 `json:"dropout"`
		FuseUnk                 bool     `json:"fuse_unk"`
		ByteFallback            bool     `json:"byte_fallback"`
		IgnoreMerges            bool     `json:"ignore_merges"`
	}
	if err := json.Unmarshal(r, &m); err != nil {
		return nil, "", err
	}
	typ := m.Type
	if typ == "" {
		switch {
		case bytes.HasPrefix(bytes.TrimSpace(m.Vocab), []byte("[")):
			typ = "Unigram" // only Unigram stores its vocabulary as a list
		case !isNull(m.Merges):
			typ = "BPE"
		case m.MaxInputCharsPerWord != nil || m.ContinuingSubwordPrefix != nil:
			typ = "WordPiece"
		default:
			typ = "WordLevel"
		}
	}
	str := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	switch typ {
	case "WordPiece":
		v, err := parseVocab(m.Vocab)
		if err != nil {
			return nil, "", err
		}
		maxChars := 100
		if m.MaxInputCharsPerWord != nil {
			maxChars = *m.MaxInputCharsPerWord
		}
		unk := str(m.UnkToken, "[UNK]")
		return newWordPiece(v, unk, str(m.ContinuingSubwordPrefix, "##"), maxChars), unk, nil
	case "BPE":
		if m.Dropout != nil && *m.Dropout > 0 {
			return nil, "", fmt.Errorf("%w: BPE dropout %v (sampling is not deterministic)", ErrUnsupported, *m.Dropout)
		}
		v, err := parseVocab(m.Vocab)
		if err != nil {
			return nil, "", err
		}
		var merges [][2]string
		if !isNull(m.Merges) {
			if merges, err = parseMerges(m.Merges); err != nil {
				return nil, "", err
			}
		}
		unk := str(m.UnkToken, "")
		bp, err := newBPE(v, merges, unk, str(m.ContinuingSubwordPrefix, ""), str(m.EndOfWordSuffix, ""), m.FuseUnk, m.ByteFallback, m.IgnoreMerges)
		return bp, unk, err
	case "WordLevel":
		v, err := parseVocab(m.Vocab)
		if err != nil {
			return nil, "", err
		}
		unk := str(m.UnkToken, "<unk>")
		w := &wordLevel{vocabMap: v, unk: unk, unkID: -1}
		if id, ok := v[unk]; ok {
			w.unkID = id
		}
		return w, unk, nil
	case "Unigram":
		u, err := parseUnigram(r)
		if err != nil {
			return nil, "", err
		}
		if u.unkID >= 0 {
			return u, u.pieces[u.unkID], nil
		}
		return u, "", nil
	}
	return nil, "", fmt.Errorf("%w: model type %q", ErrUnsupported, typ)
}

type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

func parseNormalizer(r rawJSON) (normalizer, error) {
	typ, err := typeOf(r)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "BertNormalizer":
		var c struct {
			CleanText    *bool `json:"clean_text"`
			Chinese      *bool `json:"handle_chinese_chars"`
			StripAccents *bool `json:"strip_accents"`
			Lowercase    *bool `json:"lowercase"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		def := func(p *bool, d bool) bool {
			if p == nil {
				return d
			}
			return *p
		}
		lower := def(c.Lowercase, true)
		return &bertNormalizer{cleanText: def(c.CleanText, true), chinese: def(c.Chinese, true),
			stripAccents: def(c.StripAccents, lower), lowercase: lower}, nil
	case "Lowercase":
		return lowercaseNorm{}, nil
	case "StripAccents":
		return stripAccentsNorm{}, nil
	case "NFC":
		return normForm{norm.NFC}, nil
	case "NFD":
		return normForm{norm.NFD}, nil
	case "NFKC":
		return normForm{norm.NFKC}, nil
	case "NFKD":
		return normForm{norm.NFKD}, nil
	case "Strip":
		var c struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		return stripNorm{c.Left, c.Right}, nil
	case "Prepend":
		var c struct {
			Prepend string `json:"prepend"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		return prependNorm{c.Prepend}, nil
	case "Replace":
		var c struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		n := replaceNorm{content: c.Content}
		switch {
		case c.Pattern.String != nil:
			n.literal = *c.Pattern.String
		case c.Pattern.Regex != nil:
			if n.re, err = newRegexFinder(*c.Pattern.Regex); err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("Replace normalizer without a pattern")
		}
		return n, nil
	case "Precompiled":
		var c struct {
			Charsmap *string `json:"precompiled_charsmap"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		if c.Charsmap == nil {
			return nil, errors.New("Precompiled normalizer without precompiled_charsmap")
		}
		return newPrecompiledNorm(*c.Charsmap)
	case "Nmt":
		return nmtNorm{}, nil
	case "Sequence":
		var c struct {
			Normalizers []rawJSON `json:"normalizers"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		var seq normSequence
		for i, x := range c.Normalizers {
			n, err := parseNormalizer(x)
			if err != nil {
				return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
			seq = append(seq, n)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%w: normalizer type %q", ErrUnsupported, typ)
}

func parseBehavior(s string) (splitBehavior, error) {
	switch s {
	case "Removed":
		return behRemoved, nil
	case "Isolated", "":
		return behIsolated, nil
	case "MergedWithPrevious":
		return behMergedWithPrevious, nil
	case "MergedWithNext":
		return behMergedWithNext, nil
	case "Contiguous":
		return behContiguous, nil
	}
	return 0, fmt.Errorf("%w: split behavior %q", ErrUnsupported, s)
}

// gpt2Pattern is the GPT-2 split pattern as tokenizer files spell it.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

func parsePreTokenizer(r rawJSON) (preTokenizer, error) {
	typ, err := typeOf(r)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "BertPreTokenizer":
		return bertPre{}, nil
	case "ByteLevel":
		c := struct {
			AddPrefixSpace *bool `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}{}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		b := byteLevelPre{addPrefixSpace: true, useRegex: true}
		if c.AddPrefixSpace != nil {
			b.addPrefixSpace = *c.AddPrefixSpace
		}
		if c.UseRegex != nil {
			b.useRegex = *c.UseRegex
		}
		return b, nil
	case "Whitespace":
		return whitespacePre{}, nil
	case "WhitespaceSplit":
		return whitespaceSplitPre{}, nil
	case "Punctuation":
		var c struct {
			Behavior string `json:"behavior"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		beh, err := parseBehavior(c.Behavior)
		if err != nil {
			return nil, err
		}
		return runePre{f: isBertPunct, beh: beh}, nil
	case "Digits":
		var c struct {
			Individual bool `json:"individual_digits"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		return runePre{f: func(r rune) bool { return r >= '0' && r <= '9' }, beh: behIsolated, contiguous: !c.Individual}, nil
	case "CharDelimiterSplit":
		var c struct {
			Delimiter string `json:"delimiter"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		d := []rune(c.Delimiter)
		if len(d) != 1 {
			return nil, fmt.Errorf("CharDelimiterSplit delimiter %q is not one character", c.Delimiter)
		}
		return runePre{f: func(r rune) bool { return r == d[0] }, beh: behRemoved}, nil
	case "Split":
		var c struct {
			Pattern  patternJSON `json:"pattern"`
			Behavior string      `json:"behavior"`
			Invert   bool        `json:"invert"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		beh, err := parseBehavior(c.Behavior)
		if err != nil {
			return nil, err
		}
		sp := splitPre{beh: beh, invert: c.Invert}
		switch {
		case c.Pattern.String != nil:
			sp.literal = *c.Pattern.String
		case c.Pattern.Regex != nil:
			if sp.re, err = newRegexFinder(*c.Pattern.Regex); err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("Split pre-tokenizer without a pattern")
		}
		return sp, nil
	case "Metaspace":
		var c struct {
			Replacement    string `json:"replacement"`
			PrependScheme  string `json:"prepend_scheme"`
			AddPrefixSpace *bool  `json:"add_prefix_space"`
			Split          *bool  `json:"split"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		m := metaspacePre{replacement: c.Replacement, prepend: metaspaceScheme(c.PrependScheme, c.AddPrefixSpace), splitOn: true}
		if m.replacement == "" {
			m.replacement = "▁"
		}
		if c.Split != nil {
			m.splitOn = *c.Split
		}
		return m, nil
	case "Sequence":
		var c struct {
			PreTokenizers []rawJSON `json:"pretokenizers"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		var seq preSequence
		for i, x := range c.PreTokenizers {
			p, err := parsePreTokenizer(x)
			if err != nil {
				return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
			seq = append(seq, p)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%w: pre-tokenizer type %q", ErrUnsupported, typ)
}

func metaspaceScheme(scheme string, addPrefix *bool) string {
	switch strings.ToLower(scheme) {
	case "always", "first", "never":
		return strings.ToLower(scheme)
	}
	if addPrefix != nil && !*addPrefix {
		return "never"
	}
	return "always"
}

// tokenIDPair parses ["token", id].
func tokenIDPair(r rawJSON) (string, int, error) {
	var pair []rawJSON
	if err := json.Unmarshal(r, &pair); err != nil || len(pair) != 2 {
		return "", 0, fmt.Errorf("expected [token, id], got %s", string(r))
	}
	var s string
	var id int
	if err := json.Unmarshal(pair[0], &s); err != nil {
		return "", 0, err
	}
	if err := json.Unmarshal(pair[1], &id); err != nil {
		return "", 0, err
	}
	return s, id, nil
}

func parsePost(r rawJSON) (postProcessor, error) {
	typ, err := typeOf(r)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "TemplateProcessing":
		var c struct {
			Single        rawJSON `json:"single"`
			Pair          rawJSON `json:"pair"`
			SpecialTokens map[string]struct {
				ID     string   `json:"id"`
				IDs    []int    `json:"ids"`
				Tokens []string `json:"tokens"`
			} `json:"special_tokens"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		t := &templateProc{specials: map[string]templateSpecial{}}
		for name, sp := range c.SpecialTokens {
			if len(sp.IDs) != len(sp.Tokens) {
				return nil, fmt.Errorf("special token %q has %d ids but %d tokens", name, len(sp.IDs), len(sp.Tokens))
			}
			t.specials[name] = templateSpecial{sp.IDs, sp.Tokens}
		}
		if t.single, err = parseTemplate(c.Single, t.specials); err != nil {
			return nil, fmt.Errorf("single: %w", err)
		}
		if t.pair, err = parseTemplate(c.Pair, t.specials); err != nil {
			return nil, fmt.Errorf("pair: %w", err)
		}
		return t, nil
	case "BertProcessing", "RobertaProcessing":
		var c struct {
			Sep            rawJSON `json:"sep"`
			Cls            rawJSON `json:"cls"`
			TrimOffsets    *bool   `json:"trim_offsets"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		sep, sepID, err := tokenIDPair(c.Sep)
		if err != nil {
			return nil, fmt.Errorf("sep: %w", err)
		}
		cls, clsID, err := tokenIDPair(c.Cls)
		if err != nil {
			return nil, fmt.Errorf("cls: %w", err)
		}
		if typ == "BertProcessing" {
			return &bertProc{cls: cls, sep: sep, clsID: clsID, sepID: sepID}, nil
		}
		p := &robertaProc{cls: cls, sep: sep, clsID: clsID, sepID: sepID, trimOffsets: true, addPrefixSpace: true}
		if c.TrimOffsets != nil {
			p.trimOffsets = *c.TrimOffsets
		}
		if c.AddPrefixSpace != nil {
			p.addPrefixSpace = *c.AddPrefixSpace
		}
		return p, nil
	case "ByteLevel":
		var c struct {
			TrimOffsets    *bool `json:"trim_offsets"`
			AddPrefixSpace *bool `json:"add_prefix_space"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		p := byteLevelProc{trimOffsets: true, addPrefixSpace: true}
		if c.TrimOffsets != nil {
			p.trimOffsets = *c.TrimOffsets
		}
		if c.AddPrefixSpace != nil {
			p.addPrefixSpace = *c.AddPrefixSpace
		}
		return p, nil
	case "Sequence":
		var c struct {
			Processors []rawJSON `json:"processors"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		var seq postSequence
		for i, x := range c.Processors {
			p, err := parsePost(x)
			if err != nil {
				return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
			if b, ok := p.(byteLevelProc); ok && !b.trimOffsets {
				continue // does nothing (Llama 3 ships one before its template)
			}
			seq = append(seq, p)
		}
		if len(seq) == 1 {
			return seq[0], nil // a lone template keeps Encode's direct path
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%w: post-processor type %q", ErrUnsupported, typ)
}

// parseTemplate reads a template, either the serialized list form or the
// "[CLS] $A [SEP]" string form.
func parseTemplate(r rawJSON, specials map[string]templateSpecial) ([]templatePiece, error) {
	if isNull(r) {
		return nil, nil
	}
	var out []templatePiece
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		for _, f := range strings.Fields(s) {
			p, err := parseTemplateWord(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	} else {
		var items []struct {
			Special *struct {
				ID     string `json:"id"`
				TypeID int    `json:"type_id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID     string `json:"id"`
				TypeID int    `json:"type_id"`
			} `json:"Sequence"`
		}
		if err := json.Unmarshal(r, &items); err != nil {
			return nil, err
		}
		for i, it := range items {
			switch {
			case it.Special != nil:
				out = append(out, templatePiece{seq: -1, special: it.Special.ID, typeID: it.Special.TypeID})
			case it.Sequence != nil:
				seq := 0
				if it.Sequence.ID == "B" {
					seq = 1
				} else if it.Sequence.ID != "A" {
					return nil, fmt.Errorf("template item %d: unknown sequence %q", i, it.Sequence.ID)
				}
				out = append(out, templatePiece{seq: seq, typeID: it.Sequence.TypeID})
			default:
				return nil, fmt.Errorf("template item %d is neither SpecialToken nor Sequence", i)
			}
		}
	}
	for _, p := range out {
		if p.seq < 0 {
			if _, ok := specials[p.special]; !ok {
				return nil, fmt.Errorf("template uses special token %q missing from special_tokens", p.special)
			}
		}
	}
	return out, nil
}

func parseTemplateWord(f string) (templatePiece, error) {
	name, typ := f, 0
	if i := strings.LastIndexByte(f, ':'); i > 0 {
		var n int
		if _, err := fmt.Sscanf(f[i+1:], "%d", &n); err == nil {
			name, typ = f[:i], n
		}
	}
	switch name {
	case "$A", "$", "$0":
		return templatePiece{seq: 0, typeID: typ}, nil
	case "$B", "$1":
		return templatePiece{seq: 1, typeID: typ}, nil
	}
	if strings.HasPrefix(name, "$") {
		return templatePiece{}, fmt.Errorf("%w: template sequence %q", ErrUnsupported, name)
	}
	return templatePiece{seq: -1, special: name, typeID: typ}, nil
}

func parseDecoder(r rawJSON) (decoder, error) {
	typ, err := typeOf(r)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "WordPiece":
		c := struct {
			Prefix  *string `json:"prefix"`
			Cleanup *bool   `json:"cleanup"`
		}{}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		d := wordPieceDec{prefix: "##", cleanup: true}
		if c.Prefix != nil {
			d.prefix = *c.Prefix
		}
		if c.Cleanup != nil {
			d.cleanup = *c.Cleanup
		}
		return d, nil
	case "ByteLevel":
		return byteLevelDec{}, nil
	case "BPEDecoder":
		c := struct {
			Suffix *string `json:"suffix"`
		}{}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		d := bpeDec{suffix: "</w>"}
		if c.Suffix != nil {
			d.suffix = *c.Suffix
		}
		return d, nil
	case "Metaspace":
		var c struct {
			Replacement    string `json:"replacement"`
			PrependScheme  string `json:"prepend_scheme"`
			AddPrefixSpace *bool  `json:"add_prefix_space"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		d := metaspaceDec{replacement: c.Replacement, prepend: metaspaceScheme(c.PrependScheme, c.AddPrefixSpace)}
		if d.replacement == "" {
			d.replacement = "▁"
		}
		return d, nil
	case "Replace":
		var c struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		switch {
		case c.Pattern.String != nil:
			return replaceDec{from: *c.Pattern.String, to: c.Content}, nil
		case c.Pattern.Regex != nil:
			re, err := newRegexFinder(*c.Pattern.Regex)
			if err != nil {
				return nil, err
			}
			return replaceDec{re: re, to: c.Content}, nil
		}
		return nil, errors.New("Replace decoder without a pattern")
	case "Fuse":
		return fuseDec{}, nil
	case "Strip":
		var c struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		return stripDec{c.Content, c.Start, c.Stop}, nil
	case "ByteFallback":
		return byteFallbackDec{}, nil
	case "Sequence":
		var c struct {
			Decoders []rawJSON `json:"decoders"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		var seq decSequence
		for i, x := range c.Decoders {
			d, err := parseDecoder(x)
			if err != nil {
				return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
			seq = append(seq, d)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%w: decoder type %q", ErrUnsupported, typ)
}
