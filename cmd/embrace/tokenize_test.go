package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
	"github.com/embrace-go/embrace/tokenizer"
)

// fixtureTokenizer returns the tiny uncased WordPiece fixture folder and the
// library's own tokenizer loaded from it, the reference for every check.
func fixtureTokenizer(t *testing.T) (string, *tokenizer.Tokenizer) {
	t.Helper()
	dir := filepath.Join(clitest.Fixtures(t), "tokenizers", "wordpiece-uncased")
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		t.Fatalf("tokenizer.FromDir(%s): %v", dir, err)
	}
	return dir, tok
}

func decodeLines(t *testing.T, out string) []encodingJSON {
	t.Helper()
	var got []encodingJSON
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var e encodingJSON
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("output line %q is not JSON: %v", line, err)
		}
		got = append(got, e)
	}
	return got
}

func checkEncoding(t *testing.T, got encodingJSON, want *tokenizer.Encoding, text, pair string) {
	t.Helper()
	if !reflect.DeepEqual(got.IDs, tokenizeNonNil(want.IDs)) || !reflect.DeepEqual(got.Tokens, want.Tokens) {
		t.Errorf("%q: ids/tokens %v %q; library gives %v %q", text, got.IDs, got.Tokens, want.IDs, want.Tokens)
	}
	if !reflect.DeepEqual(got.Offsets, pairs(want.Offsets)) || !reflect.DeepEqual(got.CharOffsets, pairs(want.CharOffsets(text, pair))) {
		t.Errorf("%q: offsets %v / %v; library gives %v / %v", text, got.Offsets, got.CharOffsets, want.Offsets, want.CharOffsets(text, pair))
	}
	if !reflect.DeepEqual(got.TypeIDs, tokenizeNonNil(want.TypeIDs)) || !reflect.DeepEqual(got.WordIDs, tokenizeNonNil(want.WordIDs)) ||
		!reflect.DeepEqual(got.SpecialTokensMask, tokenizeNonNil(want.SpecialTokensMask)) || !reflect.DeepEqual(got.AttentionMask, tokenizeNonNil(want.AttentionMask)) {
		t.Errorf("%q: masks differ from the library: got %+v, want %+v", text, got, want)
	}
}

func TestTokenizeEncodeJSONMatchesLibrary(t *testing.T) {
	dir, tok := fixtureTokenizer(t)
	texts := []string{"Hello world!", "café naïve résumé", "The quick brown fox."}
	r := clitest.Run(t, runTokenize, "", append([]string{"-model", dir, "-json"}, texts...)...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	got := decodeLines(t, r.Stdout)
	if len(got) != len(texts) {
		t.Fatalf("%d output lines for %d inputs", len(got), len(texts))
	}
	for i, text := range texts {
		want, err := tok.Encode(text, true)
		if err != nil {
			t.Fatal(err)
		}
		if got[i].Text != text || got[i].Pair != nil {
			t.Errorf("line %d: text %q pair %v", i, got[i].Text, got[i].Pair)
		}
		checkEncoding(t, got[i], want, text, "")
	}
	// The special tokens are really there: [CLS] ... [SEP] adds two.
	plain, _ := tok.Encode(texts[0], false)
	if len(got[0].IDs) != len(plain.IDs)+2 {
		t.Errorf("with special tokens %d ids, without %d; want 2 more", len(got[0].IDs), len(plain.IDs))
	}
}

func TestTokenizeStdinPairsAndNoSpecial(t *testing.T) {
	dir, tok := fixtureTokenizer(t)
	stdin := "What is it?\tIt is a test.\n\n  \nWho?\tMe.\r\n"
	r := clitest.Run(t, runTokenize, stdin, "-model", dir, "-json", "-pair")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	got := decodeLines(t, r.Stdout)
	want := [][2]string{{"What is it?", "It is a test."}, {"Who?", "Me."}}
	if len(got) != len(want) {
		t.Fatalf("%d output lines, want %d (blank lines skipped)", len(got), len(want))
	}
	for i, w := range want {
		enc, err := tok.EncodePair(w[0], w[1], true)
		if err != nil {
			t.Fatal(err)
		}
		if got[i].Pair == nil || *got[i].Pair != w[1] {
			t.Errorf("line %d: pair %v, want %q", i, got[i].Pair, w[1])
		}
		checkEncoding(t, got[i], enc, w[0], w[1])
	}

	r = clitest.Run(t, runTokenize, "Hello world!\n", "-model", dir, "-json", "-no-special")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	enc, _ := tok.Encode("Hello world!", false)
	checkEncoding(t, decodeLines(t, r.Stdout)[0], enc, "Hello world!", "")
}

func TestTokenizeTextTable(t *testing.T) {
	dir, tok := fixtureTokenizer(t)
	text := "Hello, world!"
	enc, err := tok.Encode(text, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, chars := range []bool{false, true} {
		args := []string{"-model", dir, text}
		offs := enc.Offsets
		if chars {
			args = append([]string{"-chars"}, args...)
			offs = enc.CharOffsets(text, "")
		}
		r := clitest.Run(t, runTokenize, "", args...)
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
		if want := fmt.Sprintf("%q: %d tokens", text, len(enc.IDs)); lines[0] != want {
			t.Errorf("header %q, want %q", lines[0], want)
		}
		if len(lines) != 2+len(enc.IDs) {
			t.Fatalf("%d lines, want header, column names and %d rows:\n%s", len(lines), len(enc.IDs), r.Stdout)
		}
		for i, id := range enc.IDs {
			f := strings.Fields(lines[2+i])
			want := []string{fmt.Sprint(i), fmt.Sprint(id), enc.Tokens[i], fmt.Sprintf("%d-%d", offs[i].Start, offs[i].End)}
			if !reflect.DeepEqual(f, want) {
				t.Errorf("row %d = %q, want %q", i, f, want)
			}
		}
	}
}

func TestTokenizeDecode(t *testing.T) {
	dir, tok := fixtureTokenizer(t)
	enc, err := tok.Encode("Hello world, again!", true)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, id := range enc.IDs {
		ids = append(ids, fmt.Sprint(id))
	}
	list := strings.Join(ids, " ")
	for _, keep := range []bool{false, true} {
		args := []string{"-model", dir, "-decode", list}
		if keep {
			args = append([]string{"-keep-special"}, args...)
		}
		want, err := tok.Decode(enc.IDs, !keep)
		if err != nil {
			t.Fatal(err)
		}
		r := clitest.Run(t, runTokenize, "", args...)
		if r.Code != 0 || r.Stdout != want+"\n" {
			t.Errorf("keep-special %v: exit %d, stdout %q; want %q (stderr %s)", keep, r.Code, r.Stdout, want, r.Stderr)
		}
	}
	r := clitest.Run(t, runTokenize, "["+strings.Join(ids, ", ")+"]\n", "-model", dir, "-decode", "-json")
	var got struct {
		IDs  []int  `json:"ids"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || !reflect.DeepEqual(got.IDs, enc.IDs) {
		t.Errorf("-decode -json: %q (%v), stderr %s", r.Stdout, err, r.Stderr)
	}
}

func TestTokenizeErrors(t *testing.T) {
	dir, _ := fixtureTokenizer(t)
	missing := filepath.Join(t.TempDir(), "nope")
	clitest.WantOneLineError(t, clitest.Run(t, runTokenize, "", "-model", missing, "hi"), "embrace tokenize", missing, "does not exist")
	clitest.WantOneLineError(t, clitest.Run(t, runTokenize, "", "-model", t.TempDir(), "hi"), "embrace tokenize", "tokenizer")
	clitest.WantOneLineError(t, clitest.Run(t, runTokenize, "q\tc\nno tab here\n", "-model", dir, "-pair"), "embrace tokenize", "stdin line 2", "tab")
	clitest.WantOneLineError(t, clitest.Run(t, runTokenize, "", "-model", dir, "-decode", "1 x 2"), "embrace tokenize", "argument 1", `"x"`)
	clitest.WantOneLineError(t, clitest.Run(t, runTokenize, "", "-model", dir, "-decode", "99999999"), "embrace tokenize", "99999999")
	clitest.WantOneLineError(t, clitest.Run(t, runTokenize, "", "-bogus"), "embrace tokenize", "-bogus")
}

func TestTokenizeHelp(t *testing.T) {
	r := clitest.Run(t, runTokenize, "", "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Usage:") || !strings.Contains(r.Stdout, "-decode") ||
		!strings.Contains(r.Stdout, tokenizeCommand.DefaultModel) {
		t.Errorf("-h: exit %d, stdout %q", r.Code, r.Stdout)
	}
}

func TestTokenizeCancelled(t *testing.T) {
	dir, _ := fixtureTokenizer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb strings.Builder
	if code := runTokenize(ctx, []string{"-model", dir}, strings.NewReader("a\nb\n"), &out, &errb); code == 0 {
		t.Errorf("cancelled run exited 0 (stdout %q)", out.String())
	}
}

// TestHubRepoID: -model with a repo id downloads from a (fake) Hub into the
// Hugging Face cache and gives the same output as the local folder.
func TestTokenizeHubRepoID(t *testing.T) {
	clitest.CheckHubRun(t, runTokenize, clitest.Model(t, "bert-cls"), "test-org/tiny-tokenizer", "-json", "Hello, world!")
}
