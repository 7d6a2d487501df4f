package tokenizer

import (
	"reflect"
	"strings"
	"testing"
)

// SentencePiece-style pieces (Llama 2, TinyLlama, Mistral): the Metaspace
// pre-tokenizer, the Prepend/Replace normalizers, byte_fallback and the
// ByteFallback/Fuse/Strip/Metaspace decoders, each checked against the
// behaviour of Hugging Face tokenizers' Rust code.

// spTokenizer builds a WordLevel tokenizer over the pieces below with the
// given pre-tokenizer, so each word is looked up whole.
func spTokenizer(t *testing.T, preTokenizer, decoder string) *Tokenizer {
	t.Helper()
	js := `{"added_tokens":[{"id":0,"content":"<s>","special":true}],` +
		`"model":{"type":"WordLevel","unk_token":"<unk>","vocab":{"<s>":0,"<unk>":1,"▁hello":2,"hello":3,"▁world":4,"▁hello▁world":5,"world":6,"▁":7}},` +
		`"pre_tokenizer":` + preTokenizer
	if decoder != "" {
		js += `,"decoder":` + decoder
	}
	tk, err := FromJSON([]byte(js + "}"))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestMetaspacePrependScheme(t *testing.T) {
	for _, c := range []struct {
		scheme string
		text   string
		want   []string
	}{
		// "first": only the piece that starts the text gets ▁, so text
		// after an added token at the start does not.
		{"first", "<s>hello", []string{"<s>", "hello"}},
		{"first", "hello<s>hello", []string{"▁hello", "<s>", "hello"}},
		{"first", "hello world", []string{"▁hello", "▁world"}},
		{"first", " hello", []string{"▁hello"}}, // already starts with ▁: nothing added
		{"always", "<s>hello", []string{"<s>", "▁hello"}},
		{"always", "hello<s>world", []string{"▁hello", "<s>", "▁world"}},
		{"never", "<s>hello", []string{"<s>", "hello"}},
		{"never", "hello world", []string{"hello", "▁world"}},
		{"never", "", []string{}},
		{"always", "", []string{}}, // nothing to prepend to
	} {
		tk := spTokenizer(t, `{"type":"Metaspace","replacement":"▁","prepend_scheme":"`+c.scheme+`","split":true}`, "")
		e, err := tk.Encode(c.text, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e.Tokens, c.want) {
			t.Errorf("%s %q: %q, want %q", c.scheme, c.text, e.Tokens, c.want)
		}
	}
}

func TestMetaspaceSplitAndLegacyFlags(t *testing.T) {
	for _, c := range []struct {
		pre  string
		want []string
	}{
		// split false keeps the text one word.
		{`{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":false}`, []string{"▁hello▁world"}},
		{`{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, []string{"▁hello", "▁world"}},
		// Files from before prepend_scheme: add_prefix_space true is
		// "always", false is "never"; split defaults to true.
		{`{"type":"Metaspace","replacement":"▁","add_prefix_space":true}`, []string{"▁hello", "▁world"}},
		{`{"type":"Metaspace","replacement":"▁","add_prefix_space":false}`, []string{"hello", "▁world"}},
	} {
		tk := spTokenizer(t, c.pre, "")
		e, err := tk.Encode("hello world", false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e.Tokens, c.want) {
			t.Errorf("%s: %q, want %q", c.pre, e.Tokens, c.want)
		}
	}
}

func TestMetaspaceDecoder(t *testing.T) {
	for _, c := range []struct {
		scheme string
		toks   []string
		want   string
	}{
		// Every ▁ of the first token is dropped unless the scheme is never.
		{"always", []string{"▁hello", "▁world"}, "hello world"},
		{"first", []string{"▁hello", "▁world"}, "hello world"},
		{"never", []string{"▁hello", "▁world"}, " hello world"},
		{"always", []string{"▁", "▁hello"}, " hello"},
		{"always", []string{"hello", "world"}, "helloworld"},
	} {
		d := metaspaceDec{replacement: "▁", prepend: c.scheme}
		if got := strings.Join(d.decode(c.toks), ""); got != c.want {
			t.Errorf("%s %q: %q, want %q", c.scheme, c.toks, got, c.want)
		}
	}
}

// llamaDecoder is the decoder chain Llama 2 and TinyLlama ship.
const llamaDecoder = `{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},` +
	`{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}`

func TestByteFallbackDecoder(t *testing.T) {
	d, err := parseDecoder([]byte(llamaDecoder))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		toks []string
		want string
	}{
		{[]string{"▁the", "<0xE2>", "<0x82>", "<0xAC>", "▁sign"}, "the€ sign"},
		// A run of byte tokens that is not valid UTF-8 gives one U+FFFD
		// per byte, the valid bytes of the run included (Rust's
		// String::from_utf8 fails for the whole run).
		{[]string{"▁a", "<0xE2>", "<0x82>", "▁b"}, "a\uFFFD\uFFFD b"},
		{[]string{"<0x61>", "<0xFF>"}, "\uFFFD\uFFFD"},
		{[]string{"<0xFF>", "x", "<0x61>"}, "\uFFFDxa"},
		// Not byte tokens: kept as they are.
		{[]string{"<0xZZ>", "<0x4>", "<0x041>", "<0x-1>", "<0x++>"}, "<0xZZ><0x4><0x041><0x-1><0x++>"},
		// Rust's from_str_radix takes a plus sign.
		{[]string{"<0x+A>"}, "\n"},
		// Strip removes one leading space from the fused text only.
		{[]string{"▁▁x"}, " x"},
		{[]string{"<0x20>", "x"}, "x"},
	} {
		if got := strings.Join(d.decode(c.toks), ""); got != c.want {
			t.Errorf("%q: %q, want %q", c.toks, got, c.want)
		}
	}
}

func TestStripDecoder(t *testing.T) {
	d := stripDec{content: " ", start: 2, stop: 1}
	got := d.decode([]string{"   a  ", " b", "c", " ", ""})
	want := []string{" a ", "b", "c", "", ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestBPEByteFallback checks that a character missing from the vocabulary
// becomes its byte tokens when all of them exist, and the unknown token
// (fused) otherwise; and that the Prepend normalizer adds nothing to an
// empty text.
func TestBPEByteFallback(t *testing.T) {
	js := `{"added_tokens":[{"id":0,"content":"<unk>","special":true}],` +
		`"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},` +
		`"model":{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"byte_fallback":true,` +
		`"vocab":{"<unk>":0,"▁":1,"a":2,"<0xE2>":3,"<0x82>":4,"<0xAC>":5,"<0xC3>":6},"merges":[]},` +
		`"decoder":` + llamaDecoder + `}`
	tk, err := FromJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text string
		ids  []int
		offs [][2]int // byte offsets
	}{
		// € is E2 82 AC: all three byte tokens exist; each covers the
		// whole character in the original text.
		{"a€", []int{1, 2, 3, 4, 5}, [][2]int{{0, 1}, {0, 1}, {1, 4}, {1, 4}, {1, 4}}},
		// é is C3 A9: <0xA9> is missing, so é is unknown; two unknown
		// characters in a row fuse into one <unk>.
		{"éé a", []int{1, 0, 1, 2}, [][2]int{{0, 2}, {0, 4}, {4, 5}, {5, 6}}},
		{"", []int{}, [][2]int{}},
	} {
		e, err := tk.Encode(c.text, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e.IDs, c.ids) || !reflect.DeepEqual(offsetsPairs(e.Offsets), c.offs) {
			t.Errorf("%q: ids %v offsets %v, want %v %v", c.text, e.IDs, offsetsPairs(e.Offsets), c.ids, c.offs)
		}
	}
	s, err := tk.Decode([]int{1, 2, 3, 4, 5, 1, 3}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a€ \uFFFD"; s != want {
		t.Errorf("decode %q, want %q", s, want)
	}
}
