package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits pieces into words. It appends the words of p to out.
type preTokenizer interface {
	split(p piece, out []piece) ([]piece, error)
}

// byteToRune is GPT-2's reversible map from bytes to printable code points:
// printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
var byteToRune, runeToByte = buildByteTables()

func buildByteTables() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}

// byteLevelString maps raw bytes to the byte-level alphabet.
func byteLevelString(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

// toByteLevel rewrites a piece's text into the byte-level alphabet, every
// output character aligned like the byte it encodes.
func toByteLevel(p piece) piece {
	var b strings.Builder
	al := make([]Offset, 0, len(p.s)*2)
	for i := 0; i < len(p.s); i++ {
		r := byteToRune[p.s[i]]
		n := utf8.RuneLen(r)
		b.WriteRune(r)
		o := p.at(i)
		for k := 0; k < n; k++ {
			al = append(al, o)
		}
	}
	return piece{s: b.String(), align: al}
}

// gpt2Next returns the end of the GPT-2 pattern match starting at i.
func gpt2Next(s string, i int) int {
	c, w := decodeRune(s, i)
	// Contractions ('s 't 're 've 'm 'll 'd), case-sensitive.
	if c == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	j := i
	cls := c
	if c == ' ' && i+w < len(s) {
		n, _ := decodeRune(s, i+w)
		if !isSpace(n) {
			j = i + w
			cls = n
		}
	}
	if !isSpace(cls) {
		// One of the three runs: letters, numbers, or everything else.
		kind := runeKind(cls)
		for j < len(s) {
			r, rw := decodeRune(s, j)
			if isSpace(r) || runeKind(r) != kind {
				break
			}
			j += rw
		}
		return j
	}
	// White space: \s+(?!\S) takes the run but leaves its last character
	// when a non-space follows; \s+ takes a lone one.
	j = i
	last := i
	for j < len(s) {
		r, rw := decodeRune(s, j)
		if !isSpace(r) {
			break
		}
		last = j
		j += rw
	}
	if j < len(s) && last > i {
		j = last
	}
	return j
}

func decodeRune(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// isSpace is \s of Oniguruma / Rust: the Unicode White_Space property.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || (r >= '\t' && r <= '\r')
	}
	return unicode.IsSpace(r)
}

const (
	kindLetter = iota
	kindNumber
	kindOther
)

func runeKind(r rune) int {
	if r < utf8.RuneSelf {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
			return kindLetter
		case '0' <= r && r <= '9':
			return kindNumber
		}
		return kindOther
	}
	if unicode.IsLetter(r) {
		return kindLetter
	}
	if unicode.IsNumber(r) {
		return kindNumber
	}
	return kindOther
}

// byteLevelPre is the ByteLevel pre-tokenizer.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelPre) split(p piece, out []piece) ([]piece, error) {
	if b.addPrefixSpace && !strings.HasPrefix(p.s, " ") && p.s != "" {
		_ = prependNorm{" "}.normalize(&p)
	}
	if !b.useRegex {
		p.byteLevel = true
		return append(out, p), nil
	}
	for i := 0; i < len(p.s); {
		j := gpt2Next(p.s, i)
		q := p.sub(i, j)
		q.byteLevel = true
		out = append(out, q)
		i = j
	}
	return out, nil
}

// splitBehavior is how matched delimiters join the pieces around them.
type splitBehavior int

const (
	behRemoved splitBehavior = iota
	behIsolated
	behMergedWithPrevious
	behMergedWithNext
	behContiguous
)

// segment is part of a piece, marked as a delimiter match or not.
type segment struct {
	a, b  int
	match bool
}

// applyBehavior turns a covering list of segments into pieces.
func applyBehavior(p piece, segs []segment, beh splitBehavior, out []piece) []piece {
	emit := func(a, b int) {
		if b > a {
			out = append(out, p.sub(a, b))
		}
	}
	switch beh {
	case behRemoved:
		for _, s := range segs {
			if !s.match {
				emit(s.a, s.b)
			}
		}
	case behIsolated:
		for _, s := range segs {
			emit(s.a, s.b)
		}
	case behContiguous:
		for i := 0; i < len(segs); {
			j := i + 1
			if segs[i].match {
				for j < len(segs) && segs[j].match {
					j++
				}
			}
			emit(segs[i].a, segs[j-1].b)
			i = j
		}
	case behMergedWithPrevious:
		start := 0
		for _, s := range segs {
			if s.match {
				emit(start, s.b)
				start = s.b
			}
		}
		emit(start, len(p.s))
	case behMergedWithNext:
		start := 0
		for _, s := range segs {
			if s.match && s.a > start {
				emit(start, s.a)
				start = s.a
			}
		}
		emit(start, len(p.s))
	}
	return out
}

// runeSegments marks every code point for which f holds as its own match.
func runeSegments(s string, f func(rune) bool) []segment {
	var segs []segment
	last := 0
	for i := 0; i < len(s); {
		r, w := decodeRune(s, i)
		if f(r) {
			if i > last {
				segs = append(segs, segment{last, i, false})
			}
			segs = append(segs, segment{i, i + w, true})
			last = i + w
		}
		i += w
	}
	if last < len(s) {
		segs = append(segs, segment{last, len(s), false})
	}
	return segs
}

func invertSegments(segs []segment) {
	for i := range segs {
		segs[i].match = !segs[i].match
	}
}

// isBertPunct is ASCII punctuation or any Unicode punctuation (P*).
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= '!' && r <= '/') || (r >= ':' && r <= '@') || (r >= '[' && r <= '`') || (r >= '{' && r <= '~')
	}
	return unicode.IsPunct(r)
}

// bertPre is BertPreTokenizer: split on white space (dropped) and on
// punctuation (each mark its own word).
type bertPre struct{}

func (bertPre) split(p piece, out []piece) ([]piece, error) {
	s := p.s
	start := -1
	for i := 0; i < len(s); {
		var cls uint8
		w := 1
		if c := s[i]; c < utf8.RuneSelf {
			cls = asciiClass[c]
		} else {
			var r rune
			r, w = utf8.DecodeRuneInString(s[i:])
			switch {
			case isSpace(r):
				cls = clsSpace
			case isBertPunct(r):
				cls = clsPunct
			}
		}
		switch cls {
		case clsSpace:
			if start >= 0 {
				out = append(out, p.sub(start, i))
				start = -1
			}
		case clsPunct:
			if start >= 0 {
				out = append(out, p.sub(start, i))
				start = -1
			}
			out = append(out, p.sub(i, i+w))
		default:
			if start < 0 {
				start = i
			}
		}
		i += w
	}
	if start >= 0 {
		out = append(out, p.sub(start, len(s)))
	}
	return out, nil
}

// ASCII byte classes for the BERT pre-tokenizer.
const (
	clsOther = iota
	clsSpace
	clsPunct
)

// asciiClass classifies every ASCII byte as isSpace / isBertPunct do.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range rune(utf8.RuneSelf) {
		switch {
		case isSpace(c):
			t[c] = clsSpace
		case isBertPunct(c):
			t[c] = clsPunct
		}
	}
	return t
}()

// whitespaceSplitPre splits on white space, dropping it.
type whitespaceSplitPre struct{}

func (whitespaceSplitPre) split(p piece, out []piece) ([]piece, error) {
	return applyBehavior(p, runeSegments(p.s, isSpace), behRemoved, out), nil
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r) || unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Nl, r)
}

// whitespacePre keeps runs matching \w+ and [^\w\s]+.
type whitespacePre struct{}

func (whitespacePre) split(p piece, out []piece) ([]piece, error) {
	s := p.s
	for i := 0; i < len(s); {
		r, w := decodeRune(s, i)
		if isSpace(r) {
			i += w
			continue
		}
		word := isWordRune(r)
		j := i + w
		for j < len(s) {
			r2, w2 := decodeRune(s, j)
			if isSpace(r2) || isWordRune(r2) != word {
				break
			}
			j += w2
		}
		out = append(out, p.sub(i, j))
		i = j
	}
	return out, nil
}

// runePre splits on code points selected by f with a behavior
// (Punctuation, Digits, CharDelimiterSplit).
type runePre struct {
	f          func(rune) bool
	beh        splitBehavior
	contiguous bool // Digits without individual_digits: runs stay together
}

func (r runePre) split(p piece, out []piece) ([]piece, error) {
	segs := runeSegments(p.s, r.f)
	beh := r.beh
	if r.contiguous {
		beh = behContiguous
	}
	return applyBehavior(p, segs, beh, out), nil
}

// splitPre is the Split pre-tokenizer (literal or regex pattern).
type splitPre struct {
	literal string
	re      regexFinder
	beh     splitBehavior
	invert  bool
}

func (sp splitPre) split(p piece, out []piece) ([]piece, error) {
	if c, ok := sp.re.(*coverFinder); ok && sp.beh == behIsolated && !sp.invert {
		// The matches cover the text: each is a word.
		for i := 0; i < len(p.s); {
			j := c.next(p.s, i)
			out = append(out, p.sub(i, j))
			i = j
		}
		return out, nil
	}
	var ms [][2]int
	switch {
	case sp.re != nil:
		var err error
		if ms, err = sp.re.find(p.s, nil); err != nil {
			return out, err
		}
	case sp.literal != "":
		for i := 0; i <= len(p.s)-len(sp.literal); {
			j := strings.Index(p.s[i:], sp.literal)
			if j < 0 {
				break
			}
			ms = append(ms, [2]int{i + j, i + j + len(sp.literal)})
			i += j + len(sp.literal)
		}
	}
	var segs []segment
	last := 0
	for _, m := range ms {
		if m[0] > last {
			segs = append(segs, segment{last, m[0], false})
		}
		segs = append(segs, segment{m[0], m[1], true})
		last = m[1]
	}
	if last < len(p.s) {
		segs = append(segs, segment{last, len(p.s), false})
	}
	if sp.invert {
		invertSegments(segs)
	}
	return applyBehavior(p, segs, sp.beh, out), nil
}

// metaspacePre replaces spaces by a marker (▁) and optionally splits
// before each marker.
type metaspacePre struct {
	replacement string
	prepend     string // "always", "first" or "never"
	splitOn     bool
}

func (m metaspacePre) splitPiece(p piece, out []piece) ([]piece, error) {
	_ = replaceNorm{literal: " ", content: m.replacement}.normalize(&p)
	if p.s != "" && !strings.HasPrefix(p.s, m.replacement) {
		first := p.at(0).Start == 0
		if m.prepend == "always" || (m.prepend == "first" && first) {
			_ = prependNorm{m.replacement}.normalize(&p)
		}
	}
	if !m.splitOn {
		return append(out, p), nil
	}
	sp := splitPre{literal: m.replacement, beh: behMergedWithNext}
	return sp.split(p, out)
}

func (m metaspacePre) split(p piece, out []piece) ([]piece, error) { return m.splitPiece(p, out) }

// preSequence applies pre-tokenizers in turn.
type preSequence []preTokenizer

func (s preSequence) split(p piece, out []piece) ([]piece, error) {
	start := len(out)
	for k, pt := range s {
		if k == 0 {
			// The first step writes straight into out.
			var err error
			if out, err = pt.split(p, out); err != nil {
				return nil, err
			}
			continue
		}
		if b, ok := pt.(byteLevelPre); ok && !b.useRegex && !b.addPrefixSpace {
			// Only marks the words as byte-level (Llama 3, Qwen2 after
			// their Split): done in place, without copying them.
			for i := start; i < len(out); i++ {
				if out[i].byteLevel {
					out[i] = toByteLevel(out[i])
				}
				out[i].byteLevel = true
			}
			continue
		}
		cur := append([]piece(nil), out[start:]...)
		out = out[:start]
		for _, c := range cur {
			if c.byteLevel {
				// A later step sees the byte-level alphabet, as in HF.
				c = toByteLevel(c)
			}
			var err error
			if out, err = pt.split(c, out); err != nil {
				return nil, err
			}
		}
	}
	if len(s) == 0 {
		out = append(out, p)
	}
	return out, nil
}
