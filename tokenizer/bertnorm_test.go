package tokenizer

import (
	"reflect"
	"testing"
)

// TestBertNormalizerKeepsUnassigned: Hugging Face's clean_text drops
// control, format and private-use characters but keeps unassigned code
// points, which then make their word unknown.
func TestBertNormalizerKeepsUnassigned(t *testing.T) {
	n := &bertNormalizer{cleanText: true, chinese: true, stripAccents: true, lowercase: true}
	for in, want := range map[string]string{
		"a\u0378b": "a\u0378b", // unassigned: kept
		"a\u200bb": "ab",       // format (Cf): dropped
		"a\ue000b": "ab",       // private use (Co): dropped
		"a\x01b":   "ab",       // control (Cc): dropped
	} {
		p := piece{s: in}
		if err := n.normalize(&p); err != nil {
			t.Fatal(err)
		}
		if p.s != want {
			t.Errorf("%q: %q, want %q", in, p.s, want)
		}
	}
	tk := load(t, "wordpiece-uncased")
	e, err := tk.Encode("x a\u0378b", false)
	if err != nil {
		t.Fatal(err)
	}
	unk, _ := tk.TokenToID("[UNK]")
	if got := e.IDs[len(e.IDs)-1]; got != unk || !reflect.DeepEqual(e.Offsets[len(e.Offsets)-1], Offset{2, 6}) {
		t.Fatalf("last token %d %v, want [UNK] (2, 6)", got, e.Offsets[len(e.Offsets)-1])
	}
}
