package tokenizer

import (
	"reflect"
	"testing"
)

// TestAddedTokenStripAndSingleWord checks lstrip, rstrip, single_word and
// normalized added tokens against Hugging Face's rules: the stripped spaces
// belong to the token (its text and offsets), single_word needs a non-\w
// character or the text's edge on both sides, and the matcher resumes
// after a discarded match.
func TestAddedTokenStripAndSingleWord(t *testing.T) {
	js := `{"model":{"type":"WordLevel","vocab":{"[UNK]":0,"a":1,"b":2,"x":3},"unk_token":"[UNK]"},
	"normalizer":{"type":"Lowercase"},
	"pre_tokenizer":{"type":"WhitespaceSplit"},
	"added_tokens":[
	 {"id":4,"content":"<l>","lstrip":true,"rstrip":false,"single_word":false,"normalized":false,"special":true},
	 {"id":5,"content":"<r>","lstrip":false,"rstrip":true,"single_word":false,"normalized":false,"special":true},
	 {"id":6,"content":"<w>","lstrip":false,"rstrip":false,"single_word":true,"normalized":false,"special":true},
	 {"id":7,"content":"<n>","lstrip":true,"rstrip":false,"single_word":false,"normalized":true,"special":false},
	 {"id":8,"content":"w>","lstrip":false,"rstrip":false,"single_word":false,"normalized":false,"special":false}]}`
	tk, err := FromJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		ids  []int
		toks []string
		offs []Offset // bytes
	}{
		{"a  <l>b", []int{1, 4, 2}, []string{"a", "  <l>", "b"}, []Offset{{0, 1}, {1, 6}, {6, 7}}},
		// lstrip never takes spaces an earlier match already took.
		{"<r>  <l>", []int{5, 4}, []string{"<r>  ", "<l>"}, []Offset{{0, 5}, {5, 8}}},
		{"a<r>  b", []int{1, 5, 2}, []string{"a", "<r>  ", "b"}, []Offset{{0, 1}, {1, 6}, {6, 7}}},
		// Glued to a word: not a match; the one after a space is.
		{"x<w> <w>", []int{0, 6}, []string{"[UNK]", "<w>"}, []Offset{{0, 4}, {5, 8}}},
		// ² is a number but not \w; _ is \w.
		{"²<w>", []int{0, 6}, []string{"[UNK]", "<w>"}, []Offset{{0, 2}, {2, 5}}},
		{"a_<w>", []int{0}, []string{"[UNK]"}, []Offset{{0, 5}}},
		// "w>" inside the discarded "<w>" is not looked for.
		{"x<w>", []int{0}, []string{"[UNK]"}, []Offset{{0, 4}}},
		{"x w>", []int{3, 8}, []string{"x", "w>"}, []Offset{{0, 1}, {2, 4}}},
		// A normalized token is matched (and stripped) in normalized text.
		{"A  <N>", []int{1, 7}, []string{"a", "  <n>"}, []Offset{{0, 1}, {1, 6}}},
	} {
		e, err := tk.Encode(tc.in, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e.IDs, tc.ids) || !reflect.DeepEqual(e.Tokens, tc.toks) || !reflect.DeepEqual(e.Offsets, tc.offs) {
			t.Errorf("%q: ids %v tokens %q offsets %v; want %v %q %v", tc.in, e.IDs, e.Tokens, e.Offsets, tc.ids, tc.toks, tc.offs)
		}
	}
}

// TestRobertaTrimMultiByteSpaces: RobertaProcessing's trim_offsets moves
// past the spaces an lstrip token took, counted in characters as Hugging
// Face counts them (U+3000 is one character but three bytes).
func TestRobertaTrimMultiByteSpaces(t *testing.T) {
	js := `{"model":{"type":"WordLevel","vocab":{"[UNK]":0,"a":1,"<s>":2,"</s>":3},"unk_token":"[UNK]"},
	"pre_tokenizer":{"type":"WhitespaceSplit"},
	"post_processor":{"type":"RobertaProcessing","sep":["</s>",3],"cls":["<s>",2],"trim_offsets":true,"add_prefix_space":false},
	"added_tokens":[{"id":4,"content":"<m>","lstrip":true,"rstrip":false,"single_word":false,"normalized":false,"special":true}]}`
	tk, err := FromJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tk.Encode("a\u3000 <m>", true)
	if err != nil {
		t.Fatal(err)
	}
	wantToks := []string{"<s>", "a", "\u3000 <m>", "</s>"}
	wantOffs := []Offset{{0, 0}, {0, 1}, {5, 8}, {0, 0}}
	if !reflect.DeepEqual(e.Tokens, wantToks) || !reflect.DeepEqual(e.Offsets, wantOffs) {
		t.Fatalf("tokens %q offsets %v; want %q %v", e.Tokens, e.Offsets, wantToks, wantOffs)
	}
}
