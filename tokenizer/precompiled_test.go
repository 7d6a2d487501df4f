package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// buildCharsMap writes a SentencePiece precompiled_charsmap for rules
// (source -> replacement) the way Darts lays out its double array: a node
// at slot n whose unit has offset o keeps its children at (n^o)^label and
// its leaf at n^o; a leaf unit holds the pool index with bit 31 set.
func buildCharsMap(t testing.TB, rules map[string]string) []byte {
	t.Helper()
	keys := make([]string, 0, len(rules))
	for k := range rules {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pool []byte
	value := map[string]uint32{}
	for _, k := range keys {
		value[k] = uint32(len(pool))
		pool = append(pool, rules[k]...)
		pool = append(pool, 0)
	}
	units := make([]uint32, 1<<12)
	used := make([]bool, len(units))
	used[0] = true
	// As in Darts, no two nodes share a base: a slot's label then tells
	// which parent it belongs to.
	baseUsed := map[int]bool{}
	var place func(slot int, prefix string)
	place = func(slot int, prefix string) {
		// Children labels of this node and whether prefix itself is a key.
		var labels []byte
		leaf := false
		for _, k := range keys {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			if len(k) == len(prefix) {
				leaf = true
			} else if c := k[len(prefix)]; len(labels) == 0 || labels[len(labels)-1] != c {
				labels = append(labels, c)
			}
		}
		if len(labels) == 0 && !leaf {
			return
		}
		// Find a base whose child slots (and leaf slot) are free.
		base := 1
		for ; ; base++ {
			ok := !baseUsed[base] && (!leaf || !used[base])
			for _, c := range labels {
				if used[base^int(c)] {
					ok = false
				}
			}
			if ok && base^slot < 1<<21 {
				break
			}
		}
		baseUsed[base] = true
		units[slot] |= uint32(base^slot) << 10
		if leaf {
			units[slot] |= 1 << 8
			used[base] = true
			units[base] = value[prefix] | 1<<31
		}
		for _, c := range labels {
			used[base^int(c)] = true
			units[base^int(c)] = uint32(c)
		}
		for _, c := range labels {
			place(base^int(c), prefix+string([]byte{c}))
		}
	}
	// The root's leaf flag is meaningless; its children hang from slot 0.
	place(0, "")
	n := len(units)
	for n > 1 && !used[n-1] {
		n--
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(4*n))
	for _, u := range units[:n] {
		out = binary.LittleEndian.AppendUint32(out, u)
	}
	return append(out, pool...)
}

func precompiledFor(t *testing.T, rules map[string]string) *precompiledNorm {
	t.Helper()
	n, err := newPrecompiledNorm(base64.StdEncoding.EncodeToString(buildCharsMap(t, rules)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCharsMapLookup(t *testing.T) {
	rules := map[string]string{"ﬁ": "fi", "A\u0301": "Á", "x": "y", "™": "TM", "\x1e": "", "\r": " ", "ab": "Q"}
	m := precompiledFor(t, rules).m
	for k, want := range rules {
		if got, ok := m.transform(k); !ok || got != want {
			t.Errorf("transform(%q) = %q, %v; want %q", k, got, ok, want)
		}
	}
	// The shortest rule that is a prefix wins, whatever follows it.
	if got, ok := m.transform("x\u0301"); !ok || got != "y" {
		t.Errorf("transform(x+accent) = %q, %v; want y", got, ok)
	}
	for _, miss := range []string{"a", "A", "b", "", "\x00x"} {
		if got, ok := m.transform(miss); ok {
			t.Errorf("transform(%q) = %q, want no rule", miss, got)
		}
	}
}

// normalized returns the text and the original byte range of every
// normalized byte.
func normalizeWith(t *testing.T, n normalizer, s string) (string, []Offset) {
	t.Helper()
	p := piece{s: s}
	if err := n.normalize(&p); err != nil {
		t.Fatal(err)
	}
	al := make([]Offset, len(p.s))
	for i := range al {
		al[i] = p.at(i)
	}
	return p.s, al
}

func rep(o Offset, n int) []Offset {
	out := make([]Offset, n)
	for i := range out {
		out[i] = o
	}
	return out
}

func cat(parts ...[]Offset) []Offset {
	var out []Offset
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestPrecompiledAlignments(t *testing.T) {
	n := precompiledFor(t, map[string]string{"ﬁ": "fi", "A\u0301": "Á", "x": "y", "™": "TM", "\x1e": "", "\r": " ", "e": "E"})
	for _, tc := range []struct {
		in, want string
		al       []Offset
	}{
		// Unchanged text keeps the identity alignment.
		{"abc", "abc", []Offset{{0, 1}, {1, 2}, {2, 3}}},
		// One character to two: both come from it.
		{"ﬁ!", "fi!", []Offset{{0, 3}, {0, 3}, {3, 4}}},
		// A two-character grapheme under 6 bytes is replaced whole.
		{"A\u0301b", "Áb", cat(rep(Offset{0, 1}, 2), []Offset{{3, 4}})},
		// Its first character has a rule: the rest of the cluster goes.
		{"x\u0301", "y", []Offset{{0, 1}}},
		// A cluster of 6 bytes or more goes character by character.
		{"x\u0301\u0301\u0301", "y\u0301\u0301\u0301", cat([]Offset{{0, 1}}, rep(Offset{1, 3}, 2), rep(Offset{3, 5}, 2), rep(Offset{5, 7}, 2))},
		// Hugging Face's own example: the deletion is charged to the
		// previous output character, M, which then takes \x1e's place.
		{"™\x1eg", "TMg", []Offset{{0, 3}, {3, 4}, {4, 5}}},
		// A deletion at the very start has no previous character: every
		// later character is aligned one character early (as in HF).
		{"\x1eab", "ab", []Offset{{0, 1}, {1, 2}}},
		// CR LF is one cluster; the rule for CR replaces both.
		{"a\r\nb", "a b", []Offset{{0, 1}, {1, 2}, {3, 4}}},
		{"é", "é", rep(Offset{0, 2}, 2)},
	} {
		got, al := normalizeWith(t, n, tc.in)
		if got != tc.want || !reflect.DeepEqual(al, tc.al) {
			t.Errorf("%q: %q %v, want %q %v", tc.in, got, al, tc.want, tc.al)
		}
	}
}

func TestCharsMapErrors(t *testing.T) {
	good := buildCharsMap(t, map[string]string{"a": "b"})
	for name, b := range map[string][]byte{
		"empty":        {},
		"short header": {1, 0},
		"odd size":     append([]byte{3, 0, 0, 0}, good[4:]...),
		"size too big": append([]byte{0, 1, 0, 0}, good[4:]...),
		"bad utf-8":    append(append([]byte(nil), good...), 0xff),
	} {
		if _, err := parseCharsMap(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := newPrecompiledNorm("not base64!"); err == nil {
		t.Error("bad base64: no error")
	}
	if _, err := newPrecompiledNorm(""); err == nil {
		t.Error("empty charsmap: no error")
	}
	// Garbage units must never make a lookup panic or read outside.
	rng := rand.New(rand.NewSource(3))
	for range 200 {
		n := 1 + rng.Intn(64)
		b := binary.LittleEndian.AppendUint32(nil, uint32(4*n))
		for range n {
			b = binary.LittleEndian.AppendUint32(b, rng.Uint32())
		}
		b = append(b, "ab\x00c\x00"...)
		m, err := parseCharsMap(b)
		if err != nil {
			t.Fatal(err)
		}
		pn := &precompiledNorm{m}
		for _, s := range []string{"abc", "é\u0301x", "\r\n", "日本語", "\x7f\x01"} {
			p := piece{s: s}
			_ = pn.normalize(&p)
		}
	}
}

func TestNmtNormalizer(t *testing.T) {
	got, al := normalizeWith(t, nmtNorm{}, "a\x01b\tc\u200bd")
	if got != "ab c d" {
		t.Fatalf("Nmt: %q", got)
	}
	want := []Offset{{0, 1}, {2, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 9}}
	if !reflect.DeepEqual(al, want) {
		t.Fatalf("Nmt alignments %v, want %v", al, want)
	}
}
