package tokenizer

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// randText mixes ASCII (letters, controls, white space, punctuation) with
// accented, combining, CJK and other non-ASCII runes.
func randText(r *rand.Rand, n int) string {
	pool := []rune("aZ09 \t\n\r\x00\x01\x7f.,!'-_\u00e9\u00c9\u0301\u4e2d\u0130\u00a0\u200b\u2019\ufffd\U0001F600")
	b := make([]rune, n)
	for i := range b {
		b[i] = pool[r.IntN(len(pool))]
	}
	return string(b)
}

// TestMapRunesASCIITable checks that the ASCII tables give exactly what the
// per-rune functions give, text and alignment, from implicit and explicit
// alignments.
func TestMapRunesASCIITable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type mapper struct {
		name string
		f    func(rune, []rune) []rune
		am   *asciiMap
	}
	var ms []mapper
	for k, am := range bertASCII {
		n := &bertNormalizer{cleanText: k >= 2, lowercase: k%2 == 1, chinese: true, stripAccents: k%2 == 1}
		ms = append(ms, mapper{"bert", n.mapRune, am})
	}
	ms = append(ms, mapper{"lower", lowerRune, lowerASCII})
	for i := range 2000 {
		text := randText(r, r.IntN(24))
		for _, m := range ms {
			for _, explicit := range []bool{false, true} {
				a := piece{s: text, base: 7}
				if explicit {
					a.materialize()
				}
				b := a
				a.mapRunes(m.f, nil)
				b.mapRunes(m.f, m.am)
				if a.s != b.s {
					t.Fatalf("case %d %s: text %q: got %q, want %q", i, m.name, text, b.s, a.s)
				}
				for k := 0; k <= len(a.s); k++ {
					for j := k; j <= len(a.s); j++ {
						if a.orig(k, j) != b.orig(k, j) {
							t.Fatalf("case %d %s: text %q: orig(%d,%d) = %v, want %v", i, m.name, text, k, j, b.orig(k, j), a.orig(k, j))
						}
					}
				}
			}
		}
	}
}

// TestBertPreASCIIClass checks the table-driven BERT pre-tokenizer against
// the rune predicates on random text.
func TestBertPreASCIIClass(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		text := randText(r, r.IntN(30))
		got, _ := bertPre{}.split(piece{s: text}, nil)
		var want []string
		start := -1
		for j, c := range text {
			switch {
			case isSpace(c) || isBertPunct(c):
				if start >= 0 {
					want = append(want, text[start:j])
					start = -1
				}
				if !isSpace(c) {
					want = append(want, string(c))
				}
			case start < 0:
				start = j
			}
		}
		if start >= 0 {
			want = append(want, text[start:])
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, g.s)
		}
		if !slices.Equal(gs, want) {
			t.Fatalf("case %d: %q split into %q, want %q", i, text, gs, want)
		}
	}
}
