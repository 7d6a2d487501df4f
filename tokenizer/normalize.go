package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// piece is a stretch of (possibly normalized) text together with, for every
// byte, the byte range of the original text it came from. A nil align means
// the text is an unmodified slice of the original starting at base.
type piece struct {
	s     string
	align []Offset
	base  int
	// byteLevel marks text that a ByteLevel pre-tokenizer has claimed: the
	// model sees its bytes mapped to the GPT-2 byte alphabet.
	byteLevel bool
}

// at returns the original range of normalized byte i.
func (p *piece) at(i int) Offset {
	if p.align != nil {
		return p.align[i]
	}
	// Identity: the original range is the whole code point holding byte i,
	// as Hugging Face aligns every byte of a character to the character.
	s := p.s
	a := i
	for a > 0 && !utf8.RuneStart(s[a]) {
		a--
	}
	_, w := utf8.DecodeRuneInString(s[a:])
	return Offset{p.base + a, p.base + a + w}
}

// orig maps the normalized range [a, b) to the original text.
func (p *piece) orig(a, b int) Offset {
	if a >= b {
		if a < len(p.s) {
			o := p.at(a)
			return Offset{o.Start, o.Start}
		}
		if len(p.s) > 0 {
			o := p.at(len(p.s) - 1)
			return Offset{o.End, o.End}
		}
		return Offset{p.base, p.base}
	}
	if p.align == nil {
		return Offset{p.at(a).Start, p.at(b - 1).End}
	}
	return Offset{p.align[a].Start, p.align[b-1].End}
}

// sub returns the sub-piece of normalized bytes [a, b).
func (p *piece) sub(a, b int) piece {
	if p.align == nil {
		return piece{s: p.s[a:b], base: p.base + a, byteLevel: p.byteLevel}
	}
	return piece{s: p.s[a:b], align: p.align[a:b], byteLevel: p.byteLevel}
}

// materialize makes align explicit.
func (p *piece) materialize() {
	if p.align != nil {
		return
	}
	al := make([]Offset, len(p.s))
	for i := 0; i < len(p.s); {
		_, w := utf8.DecodeRuneInString(p.s[i:])
		for k := 0; k < w; k++ {
			al[i+k] = Offset{p.base + i, p.base + i + w}
		}
		i += w
	}
	p.align = al
}

// asciiMap gives the replacement of every ASCII byte: the output byte, or
// -1 to delete it. Normalizers whose ASCII behaviour is a plain byte map use
// one so that mapRunes skips the per-rune call on ASCII text.
type asciiMap [utf8.RuneSelf]int16

// newASCIIMap builds the table of a rune mapper that maps every ASCII rune
// to at most one ASCII rune.
func newASCIIMap(f func(r rune, out []rune) []rune) *asciiMap {
	var m asciiMap
	var buf [8]rune
	for c := range rune(utf8.RuneSelf) {
		out := f(c, buf[:0])
		switch {
		case len(out) == 0:
			m[c] = -1
		case len(out) == 1 && out[0] < utf8.RuneSelf:
			m[c] = int16(out[0])
		default:
			panic("tokenizer: newASCIIMap: ASCII rune maps outside ASCII") // programming error
		}
	}
	return &m
}

// mapRunes rewrites the piece code point by code point: f appends the
// replacement runes of each source rune (am, when not nil, replaces f for
// ASCII bytes). Replacement runes inherit the source rune's alignment.
// While every replacement keeps its byte length, an identity alignment
// stays implicit (no per-byte table).
func (p *piece) mapRunes(f func(r rune, out []rune) []rune, am *asciiMap) {
	s := p.s
	var buf [8]rune
	i := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf && am != nil {
			if am[c] != int16(c) {
				break
			}
			i++
			continue
		}
		r, w := decodeRune(s, i)
		out := f(r, buf[:0])
		if len(out) != 1 || out[0] != r {
			break
		}
		i += w
	}
	if i == len(s) {
		return
	}
	b := make([]byte, i, len(s)+8)
	copy(b, s[:i])
	var al []Offset
	explicit := p.align != nil
	if explicit {
		al = make([]Offset, i, len(s)+8)
		copy(al, p.align[:i])
	}
	// spell out the alignment of what was written so far (still the
	// identity), once positions start to shift.
	makeExplicit := func() {
		al = make([]Offset, len(b), len(s)+8)
		for k := 0; k < len(b); {
			_, kw := utf8.DecodeRune(b[k:])
			for x := 0; x < kw; x++ {
				al[k+x] = Offset{p.base + k, p.base + k + kw}
			}
			k += kw
		}
		explicit = true
	}
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf && am != nil {
			m := am[c]
			if m < 0 {
				if !explicit {
					makeExplicit()
				}
				i++
				continue
			}
			b = append(b, byte(m))
			if explicit {
				if p.align != nil {
					al = append(al, p.align[i])
				} else {
					al = append(al, Offset{p.base + i, p.base + i + 1})
				}
			}
			i++
			continue
		}
		r, w := decodeRune(s, i)
		out := f(r, buf[:0])
		if !explicit && (len(out) != 1 || utf8.RuneLen(out[0]) != w) {
			makeExplicit()
		}
		var src Offset
		if explicit {
			src = p.orig(i, i+w)
		}
		for _, o := range out {
			n := len(b)
			b = utf8.AppendRune(b, o)
			if explicit {
				for range len(b) - n {
					al = append(al, src)
				}
			}
		}
		i += w
	}
	p.s = string(b)
	if explicit {
		p.align = al
	}
}

// normalizer transforms a piece in place.
type normalizer interface {
	normalize(p *piece) error
}

type normSequence []normalizer

func (s normSequence) normalize(p *piece) error {
	for _, n := range s {
		if err := n.normalize(p); err != nil {
			return err
		}
	}
	return nil
}

// bertNormalizer is Hugging Face's BertNormalizer.
type bertNormalizer struct {
	cleanText, chinese, stripAccents, lowercase bool
}

func isBertControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	return isOther(r)
}

// isOther reports whether r is a control (Cc), format (Cf) or private-use
// (Co) character: what Hugging Face's is_other covers. Unassigned code
// points (Cn) are not in it, so BertNormalizer keeps them.
func isOther(r rune) bool {
	if r < 0x80 {
		return r < 0x20 || r == 0x7f
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

func isBertWhitespace(r rune) bool {
	switch r {
	case '\t', '\n', '\r', ' ':
		return true
	}
	return unicode.IsSpace(r)
}

func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// lowerRune appends the full lowercase mapping of r (as Rust's
// char::to_lowercase: one code point, except U+0130).
func lowerRune(r rune, out []rune) []rune {
	if r < 0x80 {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(out, r)
	}
	if r == 0x130 {
		return append(out, 'i', 0x307)
	}
	return append(out, unicode.ToLower(r))
}

func (n *bertNormalizer) normalize(p *piece) error {
	p.mapRunes(n.mapRune, bertASCII[b2i(n.cleanText)*2+b2i(n.lowercase)])
	return nil
}

// bertASCII holds the BertNormalizer's ASCII tables by clean_text*2 +
// lowercase (the other options leave ASCII alone).
var bertASCII = [4]*asciiMap{
	newASCIIMap((&bertNormalizer{}).mapRune),
	newASCIIMap((&bertNormalizer{lowercase: true}).mapRune),
	newASCIIMap((&bertNormalizer{cleanText: true}).mapRune),
	newASCIIMap((&bertNormalizer{cleanText: true, lowercase: true}).mapRune),
}

// lowerASCII is the ASCII table of lowerRune.
var lowerASCII = newASCIIMap(lowerRune)

// mapRune applies clean_text, Chinese padding, accent stripping and
// lowercasing to one rune (the passes Hugging Face runs one after the
// other, fused).
func (n *bertNormalizer) mapRune(r rune, out []rune) []rune {
	if r < utf8.RuneSelf {
		if n.cleanText {
			switch {
			case r == '\t' || r == '\n' || r == '\r':
				r = ' '
			case r < 0x20 || r == 0x7f:
				return out
			}
		}
		if n.lowercase && 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(out, r)
	}
	if n.cleanText {
		if r == 0xFFFD || isBertControl(r) {
			return out
		}
		if isBertWhitespace(r) {
			return append(out, ' ')
		}
	}
	if n.chinese && isChineseChar(r) {
		out = append(out, ' ')
		out = n.accentsAndCase(r, out)
		return append(out, ' ')
	}
	return n.accentsAndCase(r, out)
}

func (n *bertNormalizer) accentsAndCase(r rune, out []rune) []rune {
	if !n.stripAccents {
		if n.lowercase {
			return lowerRune(r, out)
		}
		return append(out, r)
	}
	if r < 0xC0 {
		// No canonical decomposition below U+00C0.
		if unicode.Is(unicode.Mn, r) {
			return out
		}
		if n.lowercase {
			return lowerRune(r, out)
		}
		return append(out, r)
	}
	var src [4]byte
	k := utf8.EncodeRune(src[:], r)
	if norm.NFD.IsNormal(src[:k]) {
		if unicode.Is(unicode.Mn, r) {
			return out
		}
		if n.lowercase {
			return lowerRune(r, out)
		}
		return append(out, r)
	}
	d := norm.NFD.Append(nil, src[:k]...)
	for len(d) > 0 {
		x, w := utf8.DecodeRune(d)
		d = d[w:]
		if unicode.Is(unicode.Mn, x) {
			continue
		}
		if n.lowercase {
			out = lowerRune(x, out)
		} else {
			out = append(out, x)
		}
	}
	return out
}

// isASCII reports whether s is all ASCII (normal forms leave it alone).
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// nfdPiece applies a decomposing normal form rune by rune so that every
// output rune keeps its source rune's alignment.
func nfdPiece(p *piece, f norm.Form) {
	if isASCII(p.s) || f.IsNormalString(p.s) {
		return
	}
	var tmp [4]byte
	p.mapRunes(func(r rune, out []rune) []rune {
		n := utf8.EncodeRune(tmp[:], r)
		for _, d := range f.String(string(tmp[:n])) {
			out = append(out, d)
		}
		return out
	}, nil)
}

// normalizePiece applies any normal form. Composing forms work segment by
// segment (a starter and its combining marks); output runes of a segment
// take the alignment of the source rune at the same position, the last
// ones the segment's last rune.
func normalizePiece(p *piece, f norm.Form) {
	if isASCII(p.s) || f.IsNormalString(p.s) {
		return
	}
	if f == norm.NFD || f == norm.NFKD {
		nfdPiece(p, f)
		return
	}
	var b strings.Builder
	al := make([]Offset, 0, len(p.s))
	s := p.s
	for i := 0; i < len(s); {
		j := i + f.NextBoundaryInString(s[i:], true)
		if j <= i {
			j = len(s)
		}
		var srcs []Offset
		for k := i; k < j; {
			_, w := utf8.DecodeRuneInString(s[k:])
			srcs = append(srcs, p.orig(k, k+w))
			k += w
		}
		k := 0
		for _, r := range f.String(s[i:j]) {
			src := srcs[min(k, len(srcs)-1)]
			n := utf8.RuneLen(r)
			b.WriteRune(r)
			for x := 0; x < n; x++ {
				al = append(al, src)
			}
			k++
		}
		i = j
	}
	p.s = b.String()
	p.align = al
}

type normForm struct{ f norm.Form }

func (n normForm) normalize(p *piece) error { normalizePiece(p, n.f); return nil }

type lowercaseNorm struct{}

func (lowercaseNorm) normalize(p *piece) error { p.mapRunes(lowerRune, lowerASCII); return nil }

type stripAccentsNorm struct{}

func (stripAccentsNorm) normalize(p *piece) error {
	p.mapRunes(func(r rune, out []rune) []rune {
		if unicode.Is(unicode.Mn, r) {
			return out
		}
		return append(out, r)
	}, nil)
	return nil
}

// stripNorm removes leading and/or trailing white space.
type stripNorm struct{ left, right bool }

func (n stripNorm) normalize(p *piece) error {
	a, b := 0, len(p.s)
	if n.left {
		for a < b {
			r, w := utf8.DecodeRuneInString(p.s[a:])
			if !unicode.IsSpace(r) {
				break
			}
			a += w
		}
	}
	if n.right {
		for b > a {
			r, w := utf8.DecodeLastRuneInString(p.s[a:b])
			if !unicode.IsSpace(r) {
				break
			}
			b -= w
		}
	}
	*p = p.sub(a, b)
	return nil
}

// prependNorm puts a fixed string in front of non-empty text.
type prependNorm struct{ prefix string }

func (n prependNorm) normalize(p *piece) error {
	if p.s == "" {
		return nil
	}
	p.materialize()
	first := p.align[0]
	al := make([]Offset, 0, len(n.prefix)+len(p.align))
	for range len(n.prefix) {
		al = append(al, first)
	}
	p.align = append(al, p.align...)
	p.s = n.prefix + p.s
	return nil
}

// replaceNorm replaces every match of a literal or regular expression.
type replaceNorm struct {
	literal string
	re      regexFinder
	content string
}

func (n replaceNorm) normalize(p *piece) error {
	var ms [][2]int
	if n.re != nil {
		var err error
		if ms, err = n.re.find(p.s, nil); err != nil {
			return err
		}
	} else if n.literal != "" {
		for i := 0; i <= len(p.s)-len(n.literal); {
			j := strings.Index(p.s[i:], n.literal)
			if j < 0 {
				break
			}
			ms = append(ms, [2]int{i + j, i + j + len(n.literal)})
			i += j + len(n.literal)
		}
	}
	if len(ms) == 0 {
		return nil
	}
	var b strings.Builder
	al := make([]Offset, 0, len(p.s))
	last := 0
	copyRange := func(a, c int) {
		b.WriteString(p.s[a:c])
		for k := a; k < c; k++ {
			al = append(al, p.at(k))
		}
	}
	for _, m := range ms {
		copyRange(last, m[0])
		// Hugging Face inserts the content after deleting the match, so it
		// takes the alignment of the match's last byte (of the byte before
		// an empty match).
		src := p.orig(0, 0)
		if m[1] > 0 {
			src = p.at(m[1] - 1)
		}
		b.WriteString(n.content)
		for range len(n.content) {
			al = append(al, src)
		}
		last = m[1]
	}
	copyRange(last, len(p.s))
	p.s = b.String()
	p.align = al
	return nil
}
