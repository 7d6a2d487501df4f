package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// spmPre is the SentencePiece pre-tokenization, Metaspace with split on
// and prepend_scheme "always" or "never", optionally after WhitespaceSplit,
// fused into one pass. It gives the same words and alignments as running
// those pre-tokenizers one after the other, with one string and one
// alignment table per text instead of several per word.
type spmPre struct {
	rep     string // the replacement, ▁
	prepend bool   // prepend_scheme "always" (else "never")
	wsSplit bool   // WhitespaceSplit first: words are runs of non-space
}

// newSPMPre returns the fused form of a pre-tokenizer when it is one of
// the shapes spmPre covers.
func newSPMPre(p preTokenizer) (preTokenizer, bool) {
	ws := false
	if seq, ok := p.(preSequence); ok {
		if len(seq) != 2 {
			return nil, false
		}
		if _, ok := seq[0].(whitespaceSplitPre); !ok {
			return nil, false
		}
		ws, p = true, seq[1]
	}
	m, ok := p.(metaspacePre)
	if !ok || !m.splitOn || m.replacement == "" || (m.prepend != "always" && m.prepend != "never") {
		return nil, false
	}
	return spmPre{rep: m.replacement, prepend: m.prepend == "always", wsSplit: ws}, true
}

// spmBuf holds spmPre's working buffers between calls.
type spmBuf struct {
	b  []byte
	al []Offset
}

func (m spmPre) split(p piece, out []piece) ([]piece, error) {
	return m.splitBuf(p, out, &spmBuf{}), nil
}

// splitBuf is split with reused buffers: the words' alignment tables live
// in buf.al, so they are only valid until the next call with the same buf.
func (m spmPre) splitBuf(p piece, out []piece, buf *spmBuf) []piece {
	s := p.s
	if s == "" {
		return out
	}
	// Room for a replacement before every other byte, the most there can be.
	need := len(s) + (len(s)+1)/2*len(m.rep)
	b := buf.b[:0]
	if cap(b) < need {
		b = make([]byte, 0, need)
	}
	al := buf.al[:0]
	if cap(al) < need {
		al = make([]Offset, 0, need)
	}
	defer func() { buf.b, buf.al = b[:0], al[:0] }()
	// at gives the alignment of the character at byte i of s.
	at := func(i, w int) Offset {
		if p.align != nil {
			return p.align[i]
		}
		return Offset{p.base + i, p.base + i + w}
	}
	addRep := func(a Offset) {
		b = append(b, m.rep...)
		for range len(m.rep) {
			al = append(al, a)
		}
	}
	// words records where each word of the joined text starts, when words
	// are split apart before Metaspace runs.
	var words []int
	if !m.wsSplit {
		// Metaspace alone: spaces become the replacement (aligned to the
		// space), then a replacement is prepended (aligned to the first
		// character) unless the text starts with one.
		if m.prepend && s[0] != ' ' && !strings.HasPrefix(s, m.rep) {
			_, w := decodeRune(s, 0)
			addRep(at(0, w))
		}
		for i := 0; i < len(s); {
			c := s[i]
			if c == ' ' {
				addRep(at(i, 1))
				i++
				continue
			}
			w := 1
			if c >= utf8.RuneSelf {
				_, w = utf8.DecodeRuneInString(s[i:])
			}
			a := at(i, w)
			b = append(b, s[i:i+w]...)
			for range w {
				al = append(al, a)
			}
			i += w
		}
	} else {
		var stack [64]int
		words = stack[:0]
		for i := 0; i < len(s); {
			r, w := decodeRune(s, i)
			if isSpace(r) {
				i += w
				continue
			}
			// A word: the run of non-space characters from i.
			words = append(words, len(b))
			if m.prepend && !strings.HasPrefix(s[i:], m.rep) {
				addRep(at(i, w))
			}
			for i < len(s) {
				r, w = decodeRune(s, i)
				if isSpace(r) {
					break
				}
				a := at(i, w)
				b = append(b, s[i:i+w]...)
				for range w {
					al = append(al, a)
				}
				i += w
			}
		}
	}
	q := piece{s: string(b), align: al, byteLevel: p.byteLevel}
	if !m.wsSplit {
		return m.splitRep(q, 0, len(q.s), out)
	}
	for k, a := range words {
		e := len(q.s)
		if k+1 < len(words) {
			e = words[k+1]
		}
		out = m.splitRep(q, a, e, out)
	}
	return out
}

// splitRep cuts q.s[a:e] before every replacement (Metaspace's split with
// MergedWithNext), appending the non-empty parts.
func (m spmPre) splitRep(q piece, a, e int, out []piece) []piece {
	start := a
	for i := a; i < e; {
		j := strings.Index(q.s[i:e], m.rep)
		if j < 0 {
			break
		}
		j += i
		if j > start {
			out = append(out, q.sub(start, j))
		}
		start = j
		i = j + len(m.rep)
	}
	if e > start {
		out = append(out, q.sub(start, e))
	}
	return out
}
