package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tinyModel = `"model":{"type":"WordLevel","vocab":{"a":0,"[PAD]":1},"unk_token":"a"},"pre_tokenizer":{"type":"WhitespaceSplit"}`

// TestSizeLimitsAtLoad checks that every size tokenizer.json asks for is
// bounded when the file is loaded, with the field named, before anything
// is allocated for it (issue 17: pad_to_multiple_of 2^40 used to kill the
// process on the first Encode).
func TestSizeLimitsAtLoad(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`"padding":{"strategy":"BatchLongest","pad_to_multiple_of":1099511627776,"pad_id":1,"pad_token":"[PAD]"}`,
			"padding.pad_to_multiple_of 1099511627776 exceeds the limit of 1048576"},
		{`"padding":{"strategy":{"Fixed":16777216},"pad_id":1,"pad_token":"[PAD]"}`,
			"padding.strategy.Fixed 16777216 exceeds the limit of 1048576"},
		{`"padding":{"strategy":{"Fixed":-1},"pad_id":1,"pad_token":"[PAD]"}`,
			"padding.strategy.Fixed -1 is negative"},
		{`"padding":{"strategy":"BatchLongest","pad_to_multiple_of":-8,"pad_id":1,"pad_token":"[PAD]"}`,
			"padding.pad_to_multiple_of -8 is negative"},
		{`"truncation":{"max_length":1099511627776,"strategy":"LongestFirst","stride":0}`,
			"truncation.max_length 1099511627776 exceeds the limit of 1048576"},
		{`"truncation":{"max_length":512,"strategy":"LongestFirst","stride":1099511627776}`,
			"truncation.stride 1099511627776 exceeds the limit of 1048576"},
		{`"truncation":{"max_length":-1,"strategy":"LongestFirst","stride":0}`,
			"truncation.max_length -1 is negative"},
	} {
		js := "{" + tinyModel + "," + c.json + "}"
		tk, err := FromJSON([]byte(js))
		if err == nil {
			// Never encode with such a tokenizer: that is the crash.
			t.Fatalf("%s: loaded (padding %+v, truncation %+v), want an error", c.json, tk.Padding(), tk.Truncation())
		}
		if !strings.Contains(err.Error(), "tokenizer.json: "+c.want) {
			t.Errorf("%s: error %q, want it to contain %q", c.json, err, c.want)
		}
	}
}

// TestSizeLimitErrorNamesFile checks that FromFile's error names the file
// and the field.
func TestSizeLimitErrorNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	js := "{" + tinyModel + `,"padding":{"strategy":"BatchLongest","pad_to_multiple_of":1099511627776,"pad_id":1,"pad_token":"[PAD]"}}`
	if err := os.WriteFile(p, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := FromFile(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "padding.pad_to_multiple_of") {
		t.Fatalf("error %v, want one naming %s and padding.pad_to_multiple_of", err, p)
	}
}

// TestSizeLimitsAccepted checks that sizes within the limit load, and
// that the getters report them.
func TestSizeLimitsAccepted(t *testing.T) {
	js := "{" + tinyModel + `,"padding":{"strategy":{"Fixed":1048576},"pad_to_multiple_of":8,"pad_id":1,"pad_token":"[PAD]"},` +
		`"truncation":{"max_length":512,"strategy":"LongestFirst","stride":16,"direction":"Left"}}`
	tk, err := FromJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	p, tr := tk.Padding(), tk.Truncation()
	if p == nil || p.Strategy != "fixed" || p.Length != 1<<20 || p.MultipleOf != 8 || p.PadID != 1 || p.PadToken != "[PAD]" {
		t.Errorf("Padding() = %+v", p)
	}
	if tr == nil || tr.MaxLength != 512 || tr.Stride != 16 || tr.Strategy != "longest_first" || tr.Direction != "left" {
		t.Errorf("Truncation() = %+v", tr)
	}
	// The getters return copies: changing one does not change the tokenizer.
	p.Length = 3
	if tk.Padding().Length != 1<<20 {
		t.Error("Padding() returned the tokenizer's own settings")
	}
}

// TestWithPaddingLimit checks that padding a caller sets is bounded too:
// Encode errors before allocating the padding. The value is just over the
// limit, so a missing check costs a few hundred megabytes, not the
// process.
func TestWithPaddingLimit(t *testing.T) {
	tk, err := FromJSON([]byte("{" + tinyModel + "}"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []PaddingParams{
		{Strategy: "longest", MultipleOf: MaxSequenceLength + 1, PadID: 1, PadToken: "[PAD]"},
		{Strategy: "fixed", Length: MaxSequenceLength + 1, PadID: 1, PadToken: "[PAD]"},
	} {
		pt := tk.WithPadding(&p)
		e, err := pt.Encode("a a", false)
		if err == nil {
			t.Fatalf("%+v: encoded %d tokens, want an error", p, len(e.IDs))
		}
		if !strings.Contains(err.Error(), "padding") {
			t.Errorf("%+v: error %q does not name padding", p, err)
		}
	}
}

// TestSparseVocabRefused checks that a vocabulary with a huge id and few
// tokens fails at load instead of allocating an id table as long as the
// id, and that a dense one with a few holes loads.
func TestSparseVocabRefused(t *testing.T) {
	_, err := FromJSON([]byte(`{"model":{"type":"WordLevel","unk_token":"a","vocab":{"a":0,"b":16777215}}}`))
	if err == nil || !strings.Contains(err.Error(), `"b" has id 16777215 but the vocabulary has only 2 tokens`) {
		t.Fatalf("error %v, want one naming the sparse id", err)
	}
	if _, err := FromJSON([]byte(`{"model":{"type":"WordLevel","unk_token":"a","vocab":{"a":0,"b":60000}}}`)); err != nil {
		t.Fatalf("a vocabulary with a gap under the limit: %v", err)
	}
}
