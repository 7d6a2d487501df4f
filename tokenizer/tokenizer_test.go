package tokenizer

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func load(t testing.TB, name string) *Tokenizer {
	t.Helper()
	tk, err := FromDir(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTruncationStrideOverflow(t *testing.T) {
	tk := load(t, "wordpiece-uncased")
	full, err := tk.Encode("the quick brown fox jumps over the lazy dog", false)
	if err != nil {
		t.Fatal(err)
	}
	n := len(full.IDs)
	tr := tk.WithTruncation(&TruncationParams{MaxLength: 6, Stride: 2})
	e, err := tr.Encode("the quick brown fox jumps over the lazy dog", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.IDs) != 6 || e.Tokens[0] != "[CLS]" || e.Tokens[5] != "[SEP]" {
		t.Fatalf("main part: %v", e.Tokens)
	}
	if !reflect.DeepEqual(e.IDs[1:5], full.IDs[:4]) {
		t.Fatalf("main part ids %v, want prefix of %v", e.IDs, full.IDs)
	}
	// Parts of 4 sequence tokens advancing by 4-2=2 cover the rest.
	wantParts := 0
	for start := 0; ; start += 2 {
		wantParts++
		if start+4 >= n {
			break
		}
	}
	if got := 1 + len(e.Overflowing); got != wantParts {
		t.Fatalf("%d parts, want %d (n=%d)", got, wantParts, n)
	}
	for i, o := range e.Overflowing {
		start := 2 * (i + 1)
		want := full.IDs[start:min(start+4, n)]
		if !reflect.DeepEqual(o.IDs[1:len(o.IDs)-1], want) || o.Tokens[0] != "[CLS]" {
			t.Fatalf("overflow %d: %v, want [CLS] %v [SEP]", i, o.IDs, want)
		}
	}
	left := tk.WithTruncation(&TruncationParams{MaxLength: 4, Direction: "left"})
	e, err = left.Encode("the quick brown fox jumps over the lazy dog", false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.IDs, full.IDs[n-4:]) {
		t.Fatalf("left truncation %v, want %v", e.IDs, full.IDs[n-4:])
	}
}

func TestPairTruncationStrategies(t *testing.T) {
	tk := load(t, "wordpiece-uncased")
	a, b := "the quick brown fox jumps", "over the lazy dog and the cat"
	ea, _ := tk.Encode(a, false)
	eb, _ := tk.Encode(b, false)
	for _, tc := range []struct {
		strategy TruncationStrategy
		max      int
	}{{"longest_first", 9}, {"only_first", len(eb.IDs) + 3 + 2}, {"only_second", len(ea.IDs) + 3 + 2}} {
		tr := tk.WithTruncation(&TruncationParams{MaxLength: tc.max, Strategy: tc.strategy})
		e, err := tr.EncodePair(a, b, true)
		if err != nil {
			t.Fatalf("%s: %v", tc.strategy, err)
		}
		if len(e.IDs) != tc.max {
			t.Fatalf("%s: length %d, want %d", tc.strategy, len(e.IDs), tc.max)
		}
		var na, nb int
		for _, s := range e.SequenceIDs {
			switch s {
			case 0:
				na++
			case 1:
				nb++
			}
		}
		switch tc.strategy {
		case "only_first":
			if nb != len(eb.IDs) {
				t.Fatalf("only_first changed the pair: %d tokens, want %d", nb, len(eb.IDs))
			}
		case "only_second":
			if na != len(ea.IDs) {
				t.Fatalf("only_second changed the first: %d tokens, want %d", na, len(ea.IDs))
			}
		}
	}
	tr := tk.WithTruncation(&TruncationParams{MaxLength: 5, Strategy: "only_second"})
	if _, err := tr.Encode(a, true); err == nil {
		t.Fatal("only_second on a single text should fail")
	}
}

func TestPadding(t *testing.T) {
	tk := load(t, "bpe-roberta")
	pad, _ := tk.TokenToID("<pad>")
	p := tk.WithPadding(&PaddingParams{Strategy: "fixed", Length: 10, MultipleOf: 4, Direction: "left", PadID: pad, PadToken: "<pad>"})
	e, err := p.Encode("Hello world", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.IDs) != 12 {
		t.Fatalf("len %d, want 12 (10 rounded up to a multiple of 4)", len(e.IDs))
	}
	if e.IDs[0] != pad || e.AttentionMask[0] != 0 || e.WordIDs[0] != -1 || e.SpecialTokensMask[0] != 1 {
		t.Fatalf("left padding wrong: %v %v", e.IDs, e.AttentionMask)
	}
	if e.AttentionMask[len(e.IDs)-1] != 1 {
		t.Fatal("real tokens should end the left-padded encoding")
	}
	if tk.Padding() != nil || p.Padding() == nil {
		t.Fatal("WithPadding must return a modified copy")
	}
}

func TestSpecialTokens(t *testing.T) {
	st := load(t, "wordpiece-uncased").SpecialTokens()
	if st.CLS.Token != "[CLS]" || st.SEP.Token != "[SEP]" || st.Pad.Token != "[PAD]" || st.Mask.Token != "[MASK]" || st.Unk.Token != "[UNK]" {
		t.Fatalf("bert specials: %+v", st)
	}
	if st.BOS.ID != -1 || st.EOS.ID != -1 {
		t.Fatalf("bert has no bos/eos: %+v", st)
	}
	rs := load(t, "bpe-roberta").SpecialTokens()
	if rs.CLS.Token != "<s>" || rs.SEP.Token != "</s>" || rs.BOS.Token != "<s>" || rs.EOS.Token != "</s>" || rs.Mask.Token != "<mask>" {
		t.Fatalf("roberta specials: %+v", rs)
	}
	gs := load(t, "bpe-bytelevel").SpecialTokens()
	if gs.EOS.Token != "<|endoftext|>" || gs.BOS.Token != "<|endoftext|>" {
		t.Fatalf("gpt2 specials: %+v", gs)
	}
}

func TestDecodeStream(t *testing.T) {
	for _, name := range []string{"bpe-bytelevel", "wordpiece-uncased", "bpe-roberta"} {
		tk := load(t, name)
		for _, text := range []string{"Hello world! café naïve", "Emoji: 👍 😀 🤗 and 北京欢迎你", "don't stop"} {
			e, err := tk.Encode(text, false)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := tk.Decode(e.IDs, false)
			s := tk.NewDecodeStream(false)
			var got strings.Builder
			for _, id := range e.IDs {
				p, err := s.Step(id)
				if err != nil {
					t.Fatal(err)
				}
				if !utf8.ValidString(p) {
					t.Fatalf("%s: broken UTF-8 piece %q", name, p)
				}
				got.WriteString(p)
			}
			if got.String() != want {
				t.Fatalf("%s: stream %q, want %q", name, got.String(), want)
			}
		}
	}
}

func TestUnsupportedComponents(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"model":{"type":"Nope","vocab":[]}}`, "Nope"},
		{`{"model":{"type":"WordLevel","vocab":{"a":0}},"normalizer":{"type":"Nope"}}`, "Nope"},
		{`{"model":{"type":"WordLevel","vocab":{"a":0}},"pre_tokenizer":{"type":"UnicodeScripts"}}`, "UnicodeScripts"},
		{`{"model":{"type":"WordLevel","vocab":{"a":0}},"decoder":{"type":"CTC"}}`, "CTC"},
		{`{"model":{"type":"WordLevel","vocab":{"a":0}},"post_processor":{"type":"Nope"}}`, "Nope"},
		{`{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"dropout":0.1}}`, "dropout"},
		{`{"model":{"type":"WordLevel","vocab":{"a":0}},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"a(?=b"},"behavior":"Isolated"}}`, "regex"},
	} {
		_, err := FromJSON([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), "unsupported") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want unsupported naming %q", tc.json, err, tc.want)
		}
	}
	for _, bad := range []string{`{`, `{"model":null}`, `{"model":{"type":"Unigram","vocab":[]}}`,
		`{"model":{"type":"WordLevel","vocab":{"a":0}},"normalizer":{"type":"Precompiled"}}`, `{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}`, `{"model":{"type":"WordPiece","vocab":{"a":-1}}}`} {
		if _, err := FromJSON([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestMergesBothForms(t *testing.T) {
	mk := func(merges string) *Tokenizer {
		tk, err := FromJSON([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"c":2,"ab":3,"abc":4},"merges":` + merges + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	for _, m := range []string{`["a b","ab c"]`, `[["a","b"],["ab","c"]]`} {
		e, err := mk(m).Encode("abcab", false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e.Tokens, []string{"abc", "ab"}) {
			t.Fatalf("%s: %v", m, e.Tokens)
		}
	}
}

func TestInvalidUTF8(t *testing.T) {
	tk := load(t, "bpe-bytelevel")
	if _, err := tk.Encode("ok \xff bad", true); err == nil || !strings.Contains(err.Error(), "byte offset 3") {
		t.Fatalf("error %v, want one naming byte offset 3", err)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := load(t, "bpe-roberta")
	texts := []string{"Hello world!", "The quick brown fox.", "café naïve résumé", "北京欢迎你", "  spaces  "}
	want := make([][]int, len(texts))
	for i, s := range texts {
		e, err := tk.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = e.IDs
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				i := (g + k) % len(texts)
				e, err := tk.Encode(texts[i], true)
				if err != nil || !reflect.DeepEqual(e.IDs, want[i]) {
					t.Errorf("goroutine %d: %v %v", g, err, e)
					return
				}
			}
		}()
	}
	wg.Wait()
	encs, err := tk.EncodeBatch(context.Background(), texts, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range encs {
		if !reflect.DeepEqual(e.IDs, want[i]) {
			t.Fatalf("batch %d: %v, want %v", i, e.IDs, want[i])
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tk.EncodeBatch(ctx, texts, true); err == nil {
		t.Fatal("cancelled context should stop the batch")
	}
}

func TestModelFixtureTokenizers(t *testing.T) {
	s := sharedFixtures()
	if s == "" {
		t.Skip(skipMsg)
	}
	dirs, _ := filepath.Glob(filepath.Join(s, "models", "*"))
	for _, d := range dirs {
		tk, err := FromDir(d)
		if err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		long := strings.Repeat("word ", 200)
		e, err := tk.Encode(long, true)
		if err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		if tr := tk.Truncation(); tr != nil {
			if len(e.IDs) != tr.MaxLength || len(e.Overflowing) == 0 {
				t.Errorf("%s: file truncation %d not applied: %d tokens, %d overflowing", d, tr.MaxLength, len(e.IDs), len(e.Overflowing))
			}
		}
	}
}

func TestBPELongWordHeapMatchesScan(t *testing.T) {
	tk := load(t, "bpe-bytelevel")
	bp := tk.model.(*bpe)
	word := strings.Repeat("abracadabra", 40) // longer than the scan limit
	p := piece{s: word, byteLevel: true}
	viaHeap, err := bp.tokenizeWord(&p, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Re-run with the quadratic scan on the same symbols.
	var syms []sym
	for i := 0; i < len(word); i++ {
		syms = append(syms, sym{id: bp.byteIDs[word[i]], a: int32(i), b: int32(i + 1), prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[len(syms)-1].next = -1
	bp.mergeScan(syms)
	var viaScan []tok
	for i := int32(0); i >= 0; i = syms[i].next {
		viaScan = append(viaScan, tok{int(syms[i].id), int(syms[i].a), int(syms[i].b)})
	}
	if !reflect.DeepEqual(viaHeap, viaScan) {
		t.Fatalf("heap and scan merges differ")
	}
}

// Every "unsupported:" error matches the standard errors.ErrUnsupported.
func TestUnsupportedIsStandard(t *testing.T) {
	_, err := FromJSON([]byte(`{"model": {"type": "Nope"}}`))
	if err == nil || !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("%v", err)
	}
}
