package tokenizer

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// TestSPMPreMatchesSlowPath checks the fused SentencePiece pre-tokenizer
// against the step-by-step one on random text, word by word and byte by
// byte of alignment, on identity and already-normalized pieces.
func TestSPMPreMatchesSlowPath(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	parts := []string{"a", "b", "é", " ", "  ", "\t", "\n", "▁", "▁▁", "語", "\u3000", "x\u0301", "😀", "."}
	shapes := []preTokenizer{
		metaspacePre{replacement: "▁", prepend: "always", splitOn: true},
		metaspacePre{replacement: "▁", prepend: "never", splitOn: true},
		preSequence{whitespaceSplitPre{}, metaspacePre{replacement: "▁", prepend: "always", splitOn: true}},
		preSequence{whitespaceSplitPre{}, metaspacePre{replacement: "▁", prepend: "never", splitOn: true}},
		metaspacePre{replacement: "_", prepend: "always", splitOn: true},
	}
	for si, slow := range shapes {
		fast, ok := newSPMPre(slow)
		if !ok {
			t.Fatalf("shape %d not fused", si)
		}
		for range 400 {
			var sb strings.Builder
			for range rng.Intn(12) {
				sb.WriteString(parts[rng.Intn(len(parts))])
			}
			s := sb.String()
			for _, p := range []piece{{s: s, base: 3}, func() piece {
				q := piece{s: s, base: 3}
				q.materialize()
				return q
			}()} {
				want, err1 := slow.split(p, nil)
				got, err2 := fast.split(p, nil)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if len(got) != len(want) {
					t.Fatalf("shape %d %q: %d words, want %d", si, s, len(got), len(want))
				}
				for i := range got {
					g, w := got[i], want[i]
					if g.s != w.s {
						t.Fatalf("shape %d %q word %d: %q, want %q", si, s, i, g.s, w.s)
					}
					for k := 0; k < len(g.s); k++ {
						if !reflect.DeepEqual(g.at(k), w.at(k)) {
							t.Fatalf("shape %d %q word %q byte %d: %v, want %v", si, s, g.s, k, g.at(k), w.at(k))
						}
					}
				}
			}
		}
	}
	// Shapes it does not cover stay unfused.
	for _, p := range []preTokenizer{
		metaspacePre{replacement: "▁", prepend: "first", splitOn: true},
		metaspacePre{replacement: "▁", prepend: "always", splitOn: false},
		preSequence{whitespacePre{}, metaspacePre{replacement: "▁", prepend: "always", splitOn: true}},
	} {
		if _, ok := newSPMPre(p); ok {
			t.Errorf("%#v should not be fused", p)
		}
	}
}
