package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AddedToken is a token matched in the text before the model runs, as in
// Hugging Face's added_tokens.
type AddedToken struct {
	ID         int
	Content    string
	Special    bool
	SingleWord bool
	LStrip     bool
	RStrip     bool
	Normalized bool
}

// matcher finds added tokens leftmost-longest, like Hugging Face's
// Aho-Corasick set with MatchKind::LeftmostLongest.
type matcher struct {
	byFirst [256][]int // candidate tokens by first byte, longest first
	toks    []AddedToken
	pats    []string
}

func newMatcher(toks []AddedToken, pats []string) *matcher {
	if len(toks) == 0 {
		return nil
	}
	m := &matcher{toks: toks, pats: pats}
	for i, p := range pats {
		if p == "" {
			continue
		}
		m.byFirst[p[0]] = append(m.byFirst[p[0]], i)
	}
	for b := range m.byFirst {
		l := m.byFirst[b]
		sort.SliceStable(l, func(x, y int) bool { return len(pats[l[x]]) > len(pats[l[y]]) })
	}
	return m
}

// find returns the next match at or after from: token index, start, end.
func (m *matcher) find(s string, from int) (int, int, int) {
	for i := from; i < len(s); i++ {
		for _, k := range m.byFirst[s[i]] {
			p := m.pats[k]
			if strings.HasPrefix(s[i:], p) {
				return k, i, i + len(p)
			}
		}
	}
	return -1, -1, -1
}

// isWordChar is Rust regex's Unicode \w, which single_word checks on each
// side of a match: Alphabetic, marks, decimal digits, connector
// punctuation and the joiners (not other numbers such as ² or ½).
func isWordChar(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Nl, r) ||
		unicode.Is(unicode.Other_Alphabetic, r) || unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Join_Control, r)
}

// addedSplit is part of a text: either plain text or an added token.
type addedSplit struct {
	a, b int
	tok  int // index into matcher.toks, -1 for plain text
}

// split cuts s into plain stretches and added tokens, applying
// single_word, lstrip and rstrip.
func (m *matcher) split(s string, out []addedSplit) []addedSplit {
	if m == nil {
		return append(out, addedSplit{0, len(s), -1})
	}
	last := 0
	pos := 0
	for pos < len(s) {
		k, a, b := m.find(s, pos)
		if k < 0 {
			break
		}
		t := &m.toks[k]
		if t.SingleWord {
			startOK := a == 0
			if !startOK {
				r, _ := utf8.DecodeLastRuneInString(s[:a])
				startOK = !isWordChar(r)
			}
			stopOK := b == len(s)
			if !stopOK {
				r, _ := utf8.DecodeRuneInString(s[b:])
				stopOK = !isWordChar(r)
			}
			if !startOK || !stopOK {
				// Hugging Face's matcher goes on after the discarded match,
				// never inside it.
				pos = b
				continue
			}
		}
		start, stop := a, b
		if t.LStrip {
			for start > last {
				r, w := utf8.DecodeLastRuneInString(s[:start])
				if !unicode.IsSpace(r) {
					break
				}
				start -= w
			}
		}
		if t.RStrip {
			for stop < len(s) {
				r, w := utf8.DecodeRuneInString(s[stop:])
				if !unicode.IsSpace(r) {
					break
				}
				stop += w
			}
		}
		if start > last {
			out = append(out, addedSplit{last, start, -1})
		}
		out = append(out, addedSplit{start, stop, k})
		last = stop
		pos = stop
	}
	if last < len(s) {
		out = append(out, addedSplit{last, len(s), -1})
	}
	return out
}
