package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// charsMap is SentencePiece's compiled normalization rules
// (precompiled_charsmap): a double-array trie over UTF-8 byte strings whose
// leaves point into a pool of NUL-terminated replacement strings.
type charsMap struct {
	units []uint32
	pool  string
	// ascii[c] is the replacement of the one-byte string c: its pool
	// index, or -1 when c is left alone.
	ascii [utf8.RuneSelf]int32
}

// maxCharsMap bounds the decoded charsmap (real ones are about 240 KB).
const maxCharsMap = 64 << 20

// parseCharsMap decodes precompiled_charsmap's bytes: a little-endian
// uint32 trie size in bytes, the trie's uint32 units, then the pool.
func parseCharsMap(b []byte) (*charsMap, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("precompiled_charsmap has %d bytes, too short for its header", len(b))
	}
	if len(b) > maxCharsMap {
		return nil, fmt.Errorf("precompiled_charsmap has %d bytes, more than %d", len(b), maxCharsMap)
	}
	size := binary.LittleEndian.Uint32(b)
	if size%4 != 0 || size == 0 || uint64(size) > uint64(len(b)-4) {
		return nil, fmt.Errorf("precompiled_charsmap trie size %d does not fit its %d bytes in whole units", size, len(b)-4)
	}
	m := &charsMap{units: make([]uint32, size/4)}
	for i := range m.units {
		m.units[i] = binary.LittleEndian.Uint32(b[4+4*i:])
	}
	pool := b[4+size:]
	if !utf8.Valid(pool) {
		return nil, errors.New("precompiled_charsmap's normalized strings are not valid UTF-8")
	}
	m.pool = string(pool)
	for c := range m.ascii {
		m.ascii[c] = -1
		if c == 0 {
			continue // the trie stops at NUL
		}
		if v, ok := m.firstPrefix(string(rune(c))); ok {
			m.ascii[c] = int32(v)
		}
	}
	return m, nil
}

// Double-array unit fields, as SentencePiece (Darts) packs them.
func unitHasLeaf(u uint32) bool  { return u>>8&1 == 1 }
func unitValue(u uint32) int     { return int(u & (1<<31 - 1)) }
func unitLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func unitOffset(u uint32) uint32 { return u >> 10 << ((u & (1 << 9)) >> 6) }

// firstPrefix returns the value of the shortest key that is a prefix of
// key (the first hit of a common-prefix search, which is what SentencePiece
// and Hugging Face use). The search stops at a NUL byte.
func (m *charsMap) firstPrefix(key string) (int, bool) {
	u := m.units
	pos := unitOffset(u[0])
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == 0 {
			break
		}
		pos ^= uint32(c)
		if pos >= uint32(len(u)) {
			return 0, false
		}
		unit := u[pos]
		if unitLabel(unit) != uint32(c) {
			return 0, false
		}
		pos ^= unitOffset(unit)
		if unitHasLeaf(unit) {
			if pos >= uint32(len(u)) {
				return 0, false
			}
			return unitValue(u[pos]), true
		}
	}
	return 0, false
}

// at returns the NUL-terminated pool string at index v.
func (m *charsMap) at(v int) (string, bool) {
	if v > len(m.pool) {
		return "", false
	}
	s := m.pool[v:]
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	if v < len(m.pool) && !utf8.RuneStart(m.pool[v]) {
		return "", false // a corrupt index inside a character
	}
	return s, true
}

// transform returns the replacement of chunk, or false to leave it alone.
func (m *charsMap) transform(chunk string) (string, bool) {
	if len(chunk) == 1 && chunk[0] < utf8.RuneSelf {
		v := m.ascii[chunk[0]]
		if v < 0 {
			return "", false
		}
		return m.at(int(v))
	}
	v, ok := m.firstPrefix(chunk)
	if !ok {
		return "", false
	}
	return m.at(v)
}

// precompiledNorm is Hugging Face's Precompiled normalizer.
type precompiledNorm struct{ m *charsMap }

func newPrecompiledNorm(b64 string) (*precompiledNorm, error) {
	if b64 == "" {
		return nil, errors.New("Precompiled normalizer has an empty precompiled_charsmap")
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("precompiled_charsmap is not base64: %w", err)
	}
	m, err := parseCharsMap(b)
	if err != nil {
		return nil, err
	}
	return &precompiledNorm{m}, nil
}

// change is one output character of a Hugging Face transformation: with
// n == 0 it replaces the next input character, with n > 0 it is inserted
// (aligned like the previous input character), with n < 0 it replaces the
// next character and deletes -n more.
type change struct {
	r rune
	n int32
}

var changePool = sync.Pool{New: func() any { return new([]change) }}

// normalize applies the charsmap as Hugging Face does: a grapheme cluster
// shorter than 6 bytes is replaced whole when the trie has a rule for a
// prefix of it; otherwise each character is replaced on its own. Output
// alignments follow Hugging Face's transformation rules exactly, oddities
// included (a deletion is charged to the character before it).
func (n *precompiledNorm) normalize(p *piece) error {
	s := p.s
	m := n.m
	var trans []change
	var bufp *[]change
	modified := false
	state := -1
	for i := 0; i < len(s); {
		// A lone ASCII character (the next one is ASCII too, and not CR LF)
		// is its own grapheme cluster.
		c := s[i]
		if c < utf8.RuneSelf && (i+1 == len(s) || (s[i+1] < utf8.RuneSelf && !(c == '\r' && s[i+1] == '\n'))) {
			state = -1
			v := m.ascii[c]
			if v < 0 {
				if modified {
					trans = append(trans, change{rune(c), 0})
				}
				i++
				continue
			}
			rep, ok := m.at(int(v))
			if !ok {
				if modified {
					trans = append(trans, change{rune(c), 0})
				}
				i++
				continue
			}
			if !modified {
				bufp, trans = startChanges(s[:i])
				modified = true
			}
			trans = replaceChanges(trans, s[i:i+1], rep)
			i++
			continue
		}
		g, _, _, st := uniseg.FirstGraphemeClusterInString(s[i:], state)
		state = st
		if len(g) == 0 {
			break // not reached: s is valid UTF-8
		}
		if len(g) < 6 {
			if rep, ok := m.transform(g); ok {
				if !modified {
					bufp, trans = startChanges(s[:i])
					modified = true
				}
				trans = replaceChanges(trans, g, rep)
				i += len(g)
				continue
			}
			if r, w := utf8.DecodeRuneInString(g); w == len(g) {
				// One character without a rule: the loop below would only
				// look it up again.
				if modified {
					trans = append(trans, change{r, 0})
				}
				i += len(g)
				continue
			}
		}
		for k := 0; k < len(g); {
			r, w := utf8.DecodeRuneInString(g[k:])
			if rep, ok := m.transform(g[k : k+w]); ok {
				if !modified {
					bufp, trans = startChanges(s[:i+k])
					modified = true
				}
				trans = replaceChanges(trans, g[k:k+w], rep)
			} else if modified {
				trans = append(trans, change{r, 0})
			}
			k += w
		}
		i += len(g)
	}
	if modified {
		applyChanges(p, trans)
		if cap(trans) <= 1<<16 { // do not keep huge buffers alive
			*bufp = trans[:0]
			changePool.Put(bufp)
		}
	}
	return nil
}

// startChanges returns a pooled change list holding s unchanged.
func startChanges(s string) (*[]change, []change) {
	bp := changePool.Get().(*[]change)
	t := (*bp)[:0]
	for _, r := range s {
		t = append(t, change{r, 0})
	}
	return bp, t
}

// replaceChanges appends the replacement of old by rep, as Hugging Face's
// Precompiled does: extra characters are insertions at the end; when rep
// is shorter, the last change so far (possibly one of an earlier
// character) absorbs the deletions.
func replaceChanges(t []change, old, rep string) []change {
	oldN := utf8.RuneCountInString(old)
	newN := 0
	for _, r := range rep {
		t = append(t, change{r, 0})
		newN++
	}
	switch diff := newN - oldN; {
	case diff > 0:
		for k := len(t) - diff; k < len(t); k++ {
			t[k].n = 1
		}
	case diff < 0:
		if len(t) > 0 {
			t[len(t)-1].n += int32(diff)
		}
	}
	return t
}

// applyChanges rewrites the piece from a change list, aligning each output
// character as Hugging Face's NormalizedString::transform does: a
// replacement takes the alignment of the input character it replaces, an
// insertion that of the input character before it.
func applyChanges(p *piece, t []change) {
	s := p.s
	b := make([]byte, 0, len(s)+8)
	al := make([]Offset, 0, len(s)+8)
	off := 0
	skip := func() {
		if off < len(s) {
			_, w := decodeRune(s, off)
			off += w
		}
	}
	for _, c := range t {
		var a Offset
		switch {
		case c.n > 0 && off >= 1:
			a = p.at(off - 1)
		case c.n > 0 || off >= len(s):
			o := p.orig(0, 0)
			if off > 0 {
				o = p.orig(len(s), len(s))
			}
			a = o
		default:
			a = p.at(off)
		}
		if c.n <= 0 {
			skip()
		}
		for range -c.n {
			skip()
		}
		k := len(b)
		b = utf8.AppendRune(b, c.r)
		for range len(b) - k {
			al = append(al, a)
		}
	}
	p.s = string(b)
	p.align = al
}

// nmtNorm is Hugging Face's Nmt normalizer: drop some control characters
// and turn other separators into spaces.
type nmtNorm struct{}

func nmtRune(r rune, out []rune) []rune {
	switch {
	case r >= 0x01 && r <= 0x08, r == 0x0B, r >= 0x0E && r <= 0x1F, r == 0x7F, r == 0x8F, r == 0x9F:
		return out
	case r == 0x09, r == 0x0A, r == 0x0C, r == 0x0D, r == 0x1680, r >= 0x200B && r <= 0x200F,
		r == 0x2028, r == 0x2029, r == 0x2581, r == 0xFEFF, r == 0xFFFD:
		return append(out, ' ')
	}
	return append(out, r)
}

var nmtASCII = newASCIIMap(nmtRune)

func (nmtNorm) normalize(p *piece) error { p.mapRunes(nmtRune, nmtASCII); return nil }
