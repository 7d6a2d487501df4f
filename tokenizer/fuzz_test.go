package tokenizer

import (
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"", " ", "Hello world!", "  leading and trailing spaces  ", "multiple     spaces\tand\ttabs\nand\r\n",
	"café naïve", "北京欢迎你", "Emoji: 👍 😀 🤗 👍🏽 👨\u200d👩\u200d👧", "x̀̀̀̀", "control\x00chars\x07",
	"[CLS] a [SEP] <s> b </s> <mask> <|endoftext|>", "don't I'm we've", "\xff\xfe invalid", "a\xc3", "İstanbul ǅ ß",
}

// FuzzEncode checks that encoding arbitrary bytes never panics with any
// fixture tokenizer, that valid text gives consistent encodings and that
// invalid UTF-8 is refused with an error.
func FuzzEncode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	var toks []*Tokenizer
	for _, n := range []string{"wordpiece-uncased", "wordpiece-cased", "bpe-bytelevel", "bpe-roberta"} {
		toks = append(toks, load(f, n))
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tk := range toks {
			e, err := tk.Encode(s, true)
			if !utf8.ValidString(s) {
				if err == nil {
					t.Fatalf("invalid UTF-8 %q accepted", s)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Encode(%q): %v", s, err)
			}
			n := len(e.IDs)
			if len(e.Tokens) != n || len(e.Offsets) != n || len(e.TypeIDs) != n || len(e.WordIDs) != n || len(e.SequenceIDs) != n {
				t.Fatalf("ragged encoding for %q", s)
			}
			for _, o := range e.Offsets {
				if o.Start < 0 || o.End < o.Start || o.End > len(s) {
					t.Fatalf("offset %v out of range for %q", o, s)
				}
			}
			if _, err := tk.Decode(e.IDs, true); err != nil {
				t.Fatal(err)
			}
			_ = e.CharOffsets(s, "")
			if _, err := tk.EncodePair(s, s, true); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzByteLevelRoundTrip checks that byte-level BPE decodes back to
// exactly the text it encoded, for any valid UTF-8.
func FuzzByteLevelRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	tk := load(f, "bpe-bytelevel")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		e, err := tk.Encode(s, false)
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		got, err := tk.Decode(e.IDs, false)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Fatalf("round trip %q -> %v -> %q", s, e.Tokens, got)
		}
	})
}
