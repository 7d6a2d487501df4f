package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// unigramSPTokenizer builds a small self-contained SentencePiece-style tokenizer:
// a synthetic charsmap, XLM-R's normalizer chain, Metaspace and a Unigram
// model with byte fallback for some bytes.
func unigramSPTokenizer(t testing.TB) *Tokenizer {
	cm := buildCharsMap(t, map[string]string{"ﬁ": "fi", "A\u0301": "Á", "™": "TM", "\x1e": "", "\r": " ", "Ａ": "A", "①": "1"})
	vocab := [][2]any{{"<s>", 0}, {"<pad>", 0}, {"</s>", 0}, {"<unk>", 0}, {"▁", -2}, {"a", -3}, {"b", -3}, {"▁a", -2.5},
		{"ab", -4}, {"fi", -3.5}, {"Á", -5}, {"TM", -6}, {"1", -4}, {"<0xC3>", -8}, {"<0xA9>", -8}, {"A", -4}}
	cfg := map[string]any{
		"added_tokens": []map[string]any{
			{"id": 0, "content": "<s>", "special": true},
			{"id": 2, "content": "</s>", "special": true},
			{"id": 16, "content": "<mask>", "special": true, "lstrip": true},
		},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Precompiled", "precompiled_charsmap": base64.StdEncoding.EncodeToString(cm)},
			map[string]any{"type": "Strip", "strip_left": false, "strip_right": true},
			map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " {2,}"}, "content": "▁"},
		}},
		"pre_tokenizer": map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
		"model":         map[string]any{"type": "Unigram", "unk_id": 3, "byte_fallback": true, "vocab": vocab},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         "<s> $A </s>",
			"pair":           "<s> $A </s> </s> $B </s>",
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{0}, "tokens": []string{"<s>"}}, "</s>": map[string]any{"id": "</s>", "ids": []int{2}, "tokens": []string{"</s>"}}}},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}}},
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := FromJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestSPTokenizerExample(t *testing.T) {
	tk := unigramSPTokenizer(t)
	// ﬁ becomes "fi" (both aligned to ﬁ); é has no piece but its bytes do;
	// the doubled space collapses into one ▁ aligned to the second space.
	e, err := tk.Encode("ﬁ  é <mask>", true)
	if err != nil {
		t.Fatal(err)
	}
	wantToks := []string{"<s>", "▁", "fi", "▁", "<0xC3>", "<0xA9>", " <mask>", "</s>"}
	wantOffs := []Offset{{0, 0}, {0, 3}, {0, 3}, {4, 5}, {5, 7}, {5, 7}, {7, 14}, {0, 0}}
	if !equalStrings(e.Tokens, wantToks) || !equalOffsets(e.Offsets, wantOffs) {
		t.Fatalf("tokens %q offsets %v; want %q %v", e.Tokens, e.Offsets, wantToks, wantOffs)
	}
	if s, err := tk.Decode(e.IDs, true); err != nil || s != "fi é" {
		t.Fatalf("decode %q %v", s, err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalOffsets(a, b []Offset) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzSentencePiece checks that the SentencePiece pipeline never panics,
// refuses invalid UTF-8 and keeps offsets inside the text.
func FuzzSentencePiece(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Add("\x1e\x1eab™\x1e A\u0301\r\n①Ａ <mask>  ")
	tk := unigramSPTokenizer(f)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := tk.Encode(s, true)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("invalid UTF-8 %q accepted", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		for _, o := range e.Offsets {
			if o.Start < 0 || o.End < o.Start || o.End > len(s) {
				t.Fatalf("offset %v out of range for %q", o, s)
			}
		}
		if _, err := tk.Decode(e.IDs, false); err != nil {
			t.Fatal(err)
		}
		if _, err := tk.EncodePair(s, s, true); err != nil {
			t.Fatal(err)
		}
	})
}
