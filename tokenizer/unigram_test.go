package tokenizer

import (
	"encoding/json"
	"math"
	"math/rand"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// mustUnigram builds a model from pieces and scores.
func mustUnigram(t *testing.T, pieces []string, scores []float64, unk int, byteFallback bool) *unigram {
	t.Helper()
	v := make([]unigramEntry, len(pieces))
	for i := range pieces {
		v[i] = unigramEntry{pieces[i], scores[i]}
	}
	u, err := newUnigram(v, unk, byteFallback)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func ugSegment(t *testing.T, u *unigram, s string) []tok {
	t.Helper()
	p := piece{s: s}
	toks, err := u.tokenize(&p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func TestUnigramViterbiHandMade(t *testing.T) {
	// "abc" scores -1.5 alone but -1.2 as "ab"+"c" (-0.5 -0.7): the sum
	// decides, not the length. "d" is unknown: "dd" fuses into one unk.
	pieces := []string{"<unk>", "a", "b", "c", "ab", "abc", "bc", "cab"}
	scores := []float64{0, -1, -1, -0.7, -0.5, -1.5, -2, -3}
	u := mustUnigram(t, pieces, scores, 0, false)
	for _, tc := range []struct {
		in   string
		want []tok
	}{
		{"abc", []tok{{4, 0, 2}, {3, 2, 3}}},
		{"cab", []tok{{3, 0, 1}, {4, 1, 3}}}, // -1.2 beats "cab" at -3
		{"abddc", []tok{{4, 0, 2}, {0, 2, 4}, {3, 4, 5}}},
		{"dd", []tok{{0, 0, 2}}},
		{"", nil},
	} {
		got := ugSegment(t, u, tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
		// The cached second call must agree.
		if got2 := ugSegment(t, u, tc.in); !reflect.DeepEqual(got2, tc.want) {
			t.Errorf("%q (cached): %v, want %v", tc.in, got2, tc.want)
		}
	}
}

// bruteBest enumerates every segmentation of s into pieces or single
// unknown characters and returns the best one's pieces (unknown runs not
// yet fused) as [start, end, id] triples.
func bruteBest(u *unigram, s string) ([][3]int, float64) {
	if s == "" {
		return nil, 0
	}
	bestScore := math.Inf(-1)
	var best [][3]int
	_, mb := utf8.DecodeRuneInString(s)
	single := false
	for end := 1; end <= len(s); end++ {
		id, ok := u.vocabMap[s[:end]]
		if !ok || s[:end] == "" {
			continue
		}
		if end == mb {
			single = true
		}
		rest, sc := bruteBest(u, s[end:])
		if sc += u.scores[id]; sc > bestScore {
			bestScore = sc
			best = append([][3]int{{0, end, id}}, shift(rest, end)...)
		}
	}
	if !single {
		rest, sc := bruteBest(u, s[mb:])
		if sc += u.unkScore; sc > bestScore {
			bestScore = sc
			best = append([][3]int{{0, mb, u.unkID}}, shift(rest, mb)...)
		}
	}
	return best, bestScore
}

func shift(x [][3]int, by int) [][3]int {
	out := make([][3]int, len(x))
	for i, v := range x {
		out[i] = [3]int{v[0] + by, v[1] + by, v[2]}
	}
	return out
}

func TestUnigramMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(19))
	alphabet := []string{"a", "b", "c", "é", "語"}
	for trial := range 30 {
		seen := map[string]bool{"<unk>": true}
		pieces := []string{"<unk>"}
		scores := []float64{0}
		for len(pieces) < 25 {
			var sb strings.Builder
			for range 1 + rng.Intn(4) {
				sb.WriteString(alphabet[rng.Intn(len(alphabet))])
			}
			if p := sb.String(); !seen[p] {
				seen[p] = true
				pieces = append(pieces, p)
				scores = append(scores, -rng.Float64()*10)
			}
		}
		u := mustUnigram(t, pieces, scores, 0, false)
		for range 20 {
			var sb strings.Builder
			for range rng.Intn(9) {
				if rng.Intn(8) == 0 {
					sb.WriteString("z") // never a piece: unknown
				} else {
					sb.WriteString(alphabet[rng.Intn(len(alphabet))])
				}
			}
			s := sb.String()
			path, _ := bruteBest(u, s)
			var want []tok
			for _, x := range path {
				if n := len(want); x[2] == 0 && n > 0 && want[n-1].id == 0 {
					want[n-1].b = x[1] // fuse unknowns
					continue
				}
				want = append(want, tok{x[2], x[0], x[1]})
			}
			for i, w := range want {
				if w.id == 0 {
					if id, ok := u.vocabMap[s[w.a:w.b]]; ok {
						want[i].id = id
					}
				}
			}
			if got := ugSegment(t, u, s); !reflect.DeepEqual(got, want) {
				t.Fatalf("trial %d %q: %v, want %v (pieces %q)", trial, s, got, want, pieces)
			}
		}
	}
}

func TestUnigramByteFallbackAndErrors(t *testing.T) {
	pieces := []string{"<unk>", "a", "<0xE2>", "<0x98>", "<0x83>"}
	scores := []float64{0, -1, -5, -5, -5}
	u := mustUnigram(t, pieces, scores, 0, true)
	// ☃ is E2 98 83: two fused snowmen become six byte tokens, each
	// covering the whole run, as Hugging Face reports them.
	got := ugSegment(t, u, "a☃☃a")
	want := []tok{{1, 0, 1}, {2, 1, 7}, {3, 1, 7}, {4, 1, 7}, {2, 1, 7}, {3, 1, 7}, {4, 1, 7}, {1, 7, 8}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("byte fallback: %v, want %v", got, want)
	}
	// A byte without its piece: the run stays one unknown token.
	if got := ugSegment(t, u, "é"); !reflect.DeepEqual(got, []tok{{0, 0, 2}}) {
		t.Fatalf("missing byte piece: %v", got)
	}
	// No unk_id: an unknown character is an error, not a panic.
	nu := mustUnigram(t, []string{"a"}, []float64{-1}, -1, false)
	p := piece{s: "ab"}
	if _, err := nu.tokenize(&p, nil); err == nil || !strings.Contains(err.Error(), "unk_id") {
		t.Fatalf("no unk_id: error %v", err)
	}
	for _, bad := range []struct {
		v   []unigramEntry
		unk int
	}{{nil, -1}, {[]unigramEntry{{"a", 0}}, 1}, {[]unigramEntry{{"a", math.NaN()}}, -1}} {
		if _, err := newUnigram(bad.v, bad.unk, false); err == nil {
			t.Errorf("newUnigram(%v, %d): no error", bad.v, bad.unk)
		}
	}
}

func TestUnigramTokenizerJSON(t *testing.T) {
	// A duplicated piece: the last id wins in lookups, both ids decode.
	js := `{"model":{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["▁a",-1],["b",-2],["▁a",-0.5],["▁",-3]]},
		"pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},
		"decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}}`
	tk, err := FromJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tk.Encode("ab x", false)
	if err != nil {
		t.Fatal(err)
	}
	// The unknown token shows the text it covers, as Hugging Face does.
	if want := []int{3, 2, 4, 0}; !reflect.DeepEqual(e.IDs, want) {
		t.Fatalf("ids %v, want %v", e.IDs, want)
	}
	if want := []string{"▁a", "b", "▁", "x"}; !reflect.DeepEqual(e.Tokens, want) {
		t.Fatalf("tokens %q, want %q", e.Tokens, want)
	}
	if want := []Offset{{0, 1}, {1, 2}, {2, 3}, {3, 4}}; !reflect.DeepEqual(e.Offsets, want) {
		t.Fatalf("offsets %v, want %v", e.Offsets, want)
	}
	if s, _ := tk.IDToToken(1); s != "▁a" {
		t.Fatalf("IDToToken(1) = %q", s)
	}
	if id, _ := tk.TokenToID("▁a"); id != 3 {
		t.Fatalf("TokenToID(▁a) = %d, want 3", id)
	}
	if s, err := tk.Decode([]int{1, 2, 4, 0}, false); err != nil || s != "ab <unk>" {
		t.Fatalf("decode %q %v", s, err)
	}
	// A list vocabulary without "type" is a Unigram model.
	if _, err := FromJSON([]byte(`{"model":{"unk_id":0,"vocab":[["<unk>",0]]}}`)); err != nil {
		t.Fatal(err)
	}
}

func TestDATrieMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	set := map[string]int32{}
	for len(set) < 3000 {
		n := 1 + rng.Intn(6)
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcde\x00\xff"[rng.Intn(7)]
		}
		set[string(b)] = int32(len(set))
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]int32, len(keys))
	for i, k := range keys {
		vals[i] = set[k]
	}
	tr := buildDATrie(keys, vals)
	// Walk random strings: every prefix found must be a key with its value,
	// and every key prefix must be found.
	for range 2000 {
		n := rng.Intn(9)
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcde\x00\xff"[rng.Intn(7)]
		}
		s := string(b)
		var got []int32
		node := int32(0)
		for k := 0; k < len(s); k++ {
			t := tr.nodes[node].base + int32(s[k])
			if uint32(t) >= uint32(len(tr.nodes)) || tr.nodes[t].check != node {
				break
			}
			node = t
			if v := tr.nodes[t].value; v >= 0 {
				got = append(got, v)
			}
		}
		var want []int32
		for k := 1; k <= len(s); k++ {
			if v, ok := set[s[:k]]; ok {
				want = append(want, v)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: prefixes %v, want %v", s, got, want)
		}
	}
}

// TestSentencePieceFixtures runs the Unigram and lstrip fixture folders
// named by the issue, so their absence shows as a skip here.
func TestSentencePieceFixtures(t *testing.T) {
	s := sharedFixtures()
	if s == "" {
		t.Skip(skipMsg)
	}
	for _, name := range []string{"t5-unigram", "xlmr-unigram", "mpnet"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(s, "tokenizers", name)
			tk, err := FromFile(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				t.Skipf("%s: %v (fixture absent)", name, err)
			}
			cases := readCases(t, filepath.Join(dir, "cases.jsonl"))
			for i := range cases {
				if errs := checkCase(tk, &cases[i]); len(errs) > 0 {
					t.Errorf("case %d %q: %v", i+1, cases[i].Text, errs)
				}
			}
		})
	}
	for _, name := range []string{"xlmr-st", "xlmr-cls"} {
		dir := filepath.Join(s, "models", name)
		if _, err := FromDir(dir); err != nil && !strings.Contains(err.Error(), "no such file") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestUnigramConcurrent encodes from many goroutines (the word cache is
// shared).
func TestUnigramConcurrent(t *testing.T) {
	js, _ := json.Marshal(map[string]any{"model": map[string]any{"type": "Unigram", "unk_id": 0,
		"vocab": [][2]any{{"<unk>", 0}, {"a", -1}, {"b", -1}, {"ab", -1.5}}}})
	tk, err := FromJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []int, 8)
	for range 8 {
		go func() {
			var last []int
			for range 200 {
				e, err := tk.Encode("abxab", false)
				if err != nil {
					done <- nil
					return
				}
				last = e.IDs
			}
			done <- last
		}()
	}
	for range 8 {
		if got := <-done; !reflect.DeepEqual(got, []int{3, 0, 3}) {
			t.Fatalf("ids %v, want [3 0 3]", got)
		}
	}
}

func TestUnigramEntryJSON(t *testing.T) {
	var v []unigramEntry
	if err := json.Unmarshal([]byte(` [ ["▁a", -1.5], [ "q\"\\u00e9\ud83d\ude00" , 0 ],["",-2e-3]] `), &v); err != nil {
		t.Fatal(err)
	}
	want := []unigramEntry{{"▁a", -1.5}, {"q\"\\u00e9😀", 0}, {"", -2e-3}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("%v, want %v", v, want)
	}
	for _, bad := range []string{`[["a"]]`, `[["a", "1"]]`, `[["a", 1, 2]]`, `[[1, 2]]`, `[["a", null]]`, `[{"a": 1}]`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
