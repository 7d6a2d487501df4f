package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// splitEdgeCases are texts where the patterns' alternatives interact:
// contractions, the optional prefix before letters, digit runs, white
// space runs before letters, newlines and the end of the text, marks.
var splitEdgeCases = []string{
	"", " ", "  ", "\n", "\r\n", " \n", "\n ", "a", " a", "  a", "\ta", "\t\ta", " \ta", "\n\na", "a\n\n",
	"a  ", "a \n ", "a \n b", "x\r\n\r\n  y", "x \r \n \t z", "  \n  \n  x", "\u00a0x", "\u3000\u3000x",
	"\u2028x\u2029", "\u0085a", "\v\fa",
	"don't", "DON'T", "I'M", "we've", "WE'VE", "they'll", "THEY'LL", "it'd", "you're", "'s", "'S", "'ſ", "'ſa",
	"''s", "'", "'x", "x'", "' s", "'sam", "'Re", "'rE", "'lL", "'l", "'v", "'r", "abc's", "ABC'S", "Abc'Ll",
	"12345678", "1 2", " 12", "a1b2", "٣٤٥٦", "½¾", "Ⅻ1", "1,234.56", "3.14159",
	"hello, world!", "(hello)", "...", " ...", " ...\n\n", "a/b//c", " //\n", "?!\r\n", "--x",
	"café", "cafe\u0301", "e\u0301\u0301", " \u0301a", "\u0301", "a\u0903b", "\u20dd", "ǅungla", "ʰa", "Aʰb",
	"ABCdef", "abcDEF", "HTTPServer", "iPhone", "中文字", "中A文b", "Ǆǅǆ", "ΣΑΣ σας", "İstanbul",
	"😀", " 😀😀", "👍🏽", "👨\u200d👩\u200d👧", "a😀b", "\u200d", "x\u200dy",
	"tab\tsep\tvalues", "trailing spaces   ", "   leading", "mixed \t\n\r\v\f whitespace",
	"<|endoftext|>", "<s>", "[CLS]", "A1'S", "a'sS", "'ll'll", "it's 12:30",
}

// randomText draws a string from an alphabet chosen to exercise every
// class the patterns use.
func randomText(r *rand.Rand) string {
	alphabet := []string{
		" ", " ", " ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\u00a0", "\u2028", "\u3000", "\u0085", "\u1680",
		"a", "b", "s", "t", "r", "e", "v", "m", "l", "d", "S", "T", "R", "E", "L", "D", "Z", "é", "ß",
		"ǅ", "ʰ", "中", "ſ", "Σ", "σ", "İ", "0", "7", "٣", "½", "Ⅻ", "\u212a", "\x1c", "\x1f", "\u180e", "\u200b", "\u2007", "\u202f", "\u205f", "\ufeff", "\u2029",
		"\u0301", "\u0903", "\u20dd", "'", "'", "'", ".", "/", "!", "-", "_", "😀", "👍🏽", "\u200d", "\x00", "\x7f",
	}
	n := r.IntN(24)
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// corpusTexts reads the shared fixture corpus, or nil when absent.
func corpusTexts(t testing.TB) []string {
	s := sharedFixtures()
	if s == "" {
		t.Log(skipMsg + " (corpus.json not used)")
		return nil
	}
	data, err := os.ReadFile(filepath.Join(s, "corpus.json"))
	if err != nil {
		t.Log(err)
		return nil
	}
	var texts []string
	if err := json.Unmarshal(data, &texts); err != nil {
		t.Fatalf("corpus.json: %v", err)
	}
	return texts
}

// checkAgainstRegexp2 compares a hand matcher with regexp2 on s.
func checkAgainstRegexp2(t testing.TB, pat string, hand, general regexFinder, s string) {
	t.Helper()
	got, err := hand.find(s, nil)
	if err != nil {
		t.Fatalf("hand matcher on %q: %v", s, err)
	}
	want, err := general.find(s, nil)
	if err != nil {
		t.Fatalf("regexp2 on %q: %v", s, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pattern %.40q... on %q:\n hand    %v\n regexp2 %v", pat, s, pieces(s, got), pieces(s, want))
	}
}

func pieces(s string, ms [][2]int) []string {
	var out []string
	for _, m := range ms {
		out = append(out, s[m[0]:m[1]])
	}
	return out
}

// TestKnownPatternsAgreeWithRegexp2 checks every hand-written matcher
// against the general engine on the fixture corpus, edge cases and
// random text.
func TestKnownPatternsAgreeWithRegexp2(t *testing.T) {
	corpus := corpusTexts(t)
	for pat := range knownPatterns {
		hand, err := newRegexFinder(pat)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := hand.(*coverFinder); !ok {
			t.Fatalf("known pattern %q got %T, want the hand matcher", pat, hand)
		}
		general, err := newRegexp2Finder(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range splitEdgeCases {
			checkAgainstRegexp2(t, pat, hand, general, s)
		}
		for _, s := range corpus {
			checkAgainstRegexp2(t, pat, hand, general, s)
		}
		r := rand.New(rand.NewPCG(1, 2))
		n := 20000
		if testing.Short() {
			n = 2000
		}
		for range n {
			checkAgainstRegexp2(t, pat, hand, general, randomText(r))
		}
	}
}

// FuzzKnownPatterns compares the hand matchers with regexp2 on arbitrary
// valid UTF-8.
func FuzzKnownPatterns(f *testing.F) {
	for _, s := range splitEdgeCases {
		f.Add(s)
	}
	type pair struct{ hand, general regexFinder }
	var ps []pair
	var pats []string
	for pat := range knownPatterns {
		h, err := newRegexFinder(pat)
		if err != nil {
			f.Fatal(err)
		}
		g, err := newRegexp2Finder(pat)
		if err != nil {
			f.Fatal(err)
		}
		ps = append(ps, pair{h, g})
		pats = append(pats, pat)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // the tokenizer refuses invalid UTF-8 before splitting
		}
		for i, p := range ps {
			checkAgainstRegexp2(t, pats[i], p.hand, p.general, s)
		}
	})
}

// TestRegexEngineChoice checks which engine each kind of pattern gets.
func TestRegexEngineChoice(t *testing.T) {
	for _, c := range []struct {
		pat  string
		want string
	}{
		{cl100kPattern, "hand"},
		{qwen2Pattern, "hand"},
		{o200kPattern, "hand"},
		{tekkenPattern, "hand"},
		{gpt2Pattern, "hand"},
		{"(?:" + cl100kPattern + ")", "regexp2"}, // lookahead
		{`\s+`, "regexp2"},
		{`\p{N}+`, "regexp2"},
		{` {2,}`, "regexp2"},
	} {
		f, err := newRegexFinder(c.pat)
		if err != nil {
			t.Fatalf("%q: %v", c.pat, err)
		}
		var got string
		switch f.(type) {
		case *coverFinder:
			got = "hand"
		case regexp2Finder:
			got = "regexp2"
		}
		if got != c.want {
			t.Errorf("%q: engine %s, want %s", c.pat, got, c.want)
		}
	}
}

// TestGeneralRegexSemantics pins the Oniguruma behaviours the general
// path must reproduce.
func TestGeneralRegexSemantics(t *testing.T) {
	for _, c := range []struct {
		pat, text string
		want      []string
	}{
		// \s is Unicode White_Space (no-break space, ideographic space, NEL).
		{`\s+`, "a\u00a0\u3000b\u0085c", []string{"\u00a0\u3000", "\u0085"}},
		// \d is any decimal digit.
		{`\d+`, "a٣٤b12", []string{"٣٤", "12"}},
		// (?i) folds with Unicode simple folding: 's matches 'S and 'ſ.
		{`(?i:'s)`, "'s 'S 'ſ", []string{"'s", "'S", "'ſ"}},
		// ^ and $ are line anchors.
		{`^a|b$`, "a\na b\nb", []string{"a", "a", "b", "b"}},
		// Lookahead.
		{`\s+(?!\S)`, "a   b  ", []string{"  ", "  "}},
		{`\p{L}+`, "héllo wörld", []string{"héllo", "wörld"}},
	} {
		f, err := newRegexFinder(c.pat)
		if err != nil {
			t.Fatalf("%q: %v", c.pat, err)
		}
		ms, err := f.find(c.text, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := pieces(c.text, ms); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q on %q: %q, want %q", c.pat, c.text, got, c.want)
		}
	}
}

// TestGeneralRegexLongInput checks that the backtracking engine handles a
// long white-space run (its stack grows with the input) without error.
func TestGeneralRegexLongInput(t *testing.T) {
	f, err := newRegexp2Finder(`\s+(?!\S)|\s+`)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Repeat(" ", 300000) + "x"
	ms, err := f.find(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0] != [2]int{0, 299999} || ms[1] != [2]int{299999, 300000} {
		t.Fatalf("got %v", ms)
	}
}

// TestSplitGeneralPathConformance runs the llama3-bpe and qwen2-bpe
// fixture cases with their Split pattern forced through regexp2 (wrapped
// in a group, so it is no longer recognised), the reference the hand
// matchers are held to.
func TestSplitGeneralPathConformance(t *testing.T) {
	dirs := fixtureDirs(t)
	ran := 0
	for _, name := range []string{"llama3-bpe", "qwen2-bpe"} {
		dir, ok := dirs[name]
		if !ok {
			t.Logf("%s: %s", name, skipMsg)
			continue
		}
		ran++
		data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		pre := doc["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)
		pat := pre["pattern"].(map[string]any)
		pat["Regex"] = "(?:" + pat["Regex"].(string) + ")"
		data, _ = json.Marshal(doc)
		tk, err := FromJSON(data)
		if err != nil {
			t.Fatal(err)
		}
		sp := tk.pre.(preSequence)[0].(splitPre)
		if _, ok := sp.re.(regexp2Finder); !ok {
			t.Fatalf("%s: wrapped pattern uses %T, want regexp2", name, sp.re)
		}
		cases := readCases(t, filepath.Join(dir, "cases.jsonl"))
		for i := range cases {
			if errs := checkCase(tk, &cases[i]); len(errs) > 0 {
				t.Errorf("%s case %d (%q): %v", name, i+1, cases[i].Text, errs)
			}
		}
	}
	if ran == 0 {
		t.Skip(skipMsg)
	}
}

// TestEmptyMatches checks Oniguruma's find-all rule on both general
// engines: empty matches count, except one abutting the previous match
// (regexp2, like .NET, reports those; they are dropped).
func TestEmptyMatches(t *testing.T) {
	want := [][2]int{{0, 0}, {1, 4}, {5, 5}}
	g := goFinder{re: regexp.MustCompile(`a*`)}
	r, err := newRegexp2Finder(`a*`)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []regexFinder{g, r} {
		got, err := f.find("baaac", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T: %v, want %v", f, got, want)
		}
	}
}

// TestSplitLookaheadOnly checks that a pattern whose matches are all
// empty still splits the text, as in Hugging Face, and that the general
// regex path serves the Replace normalizer and decoder (Unicode \s).
func TestSplitLookaheadOnly(t *testing.T) {
	js := `{"model":{"type":"WordLevel","unk_token":"?","vocab":{"?":0,"Hello":1,"World":2,"Foo":3,"x_y":4}},` +
		`"normalizer":{"type":"Replace","pattern":{"Regex":"\\s+"},"content":"_"},` +
		`"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(?=\\p{Lu})"},"behavior":"Isolated","invert":false},` +
		`"decoder":{"type":"Replace","pattern":{"Regex":"_(?=y)"},"content":" "}}`
	tk, err := FromJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tk.Encode("HelloWorldFoo", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Hello", "World", "Foo"}; !reflect.DeepEqual(e.Tokens, want) {
		t.Errorf("tokens %q, want %q", e.Tokens, want)
	}
	// The no-break space is \s for Oniguruma (and regexp2), not for Go's
	// regexp.
	e, err = tk.Encode("x\u00a0 y", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{4}; !reflect.DeepEqual(e.IDs, want) {
		t.Errorf("ids %v (%q), want %v", e.IDs, e.Tokens, want)
	}
	s, err := tk.Decode([]int{4, 4}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "x yx y"; s != want {
		t.Errorf("decoded %q, want %q", s, want)
	}
}

// TestOnigTranslation checks the rewriting of Oniguruma constructs that
// regexp2 spells or matches differently, and the refusal of those it
// cannot match exactly.
func TestOnigTranslation(t *testing.T) {
	for _, c := range []struct {
		pat, text string
		want      []string
	}{
		// Oniguruma's \w has all marks and numbers (U+0903 is Mc, ½ is No).
		{`\w+`, "aः½_ b", []string{"aः½_", "b"}},
		{`[\w']+`, "don't stop", []string{"don't", "stop"}},
		{`\W+`, "a, b", []string{", "}},
		{`\h+`, "0aFg", []string{"0aF"}},
		// The m flag makes . match a newline.
		{`(?m:a.b)|c.d`, "a\nb c\nd", []string{"a\nb"}},
		{`(?i)AB`, "ab aB", []string{"ab", "aB"}},
		// Escaped brackets and a leading ] are literals, not nesting.
		{`[\[\]]+|[]x]`, "[a]]x", []string{"[", "]]", "x"}},
	} {
		f, err := newRegexFinder(c.pat)
		if err != nil {
			t.Fatalf("%q: %v", c.pat, err)
		}
		ms, err := f.find(c.text, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := pieces(c.text, ms); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q (%T) on %q: %q, want %q", c.pat, f, c.text, got, c.want)
		}
	}
	for _, pat := range []string{`\bx`, `x\B`, `[[:alpha:]]`, `[a[b]]`, `[a-z&&[^e]]`, `(?W:\w)`, `(?s:.)`, `[\W]`, `[\H]`} {
		if _, err := newRegexFinder(pat); err == nil || !strings.Contains(err.Error(), "unsupported") {
			t.Errorf("%q: error %v, want unsupported", pat, err)
		}
	}
}

// goFinder matches with Go's regexp (RE2), for comparisons in tests and
// benchmarks only.
type goFinder struct {
	re  *regexp.Regexp
	src string
}

func (g goFinder) find(s string, out [][2]int) ([][2]int, error) {
	for _, m := range g.re.FindAllStringIndex(s, -1) {
		out = append(out, [2]int{m[0], m[1]})
	}
	return out, nil
}

// TestRegexp2AgreesWithRE2 cross-checks regexp2's leftmost-first matching
// and empty-match rule against Go's regexp on patterns both read alike
// (no lookaround, no \s \d \w), on random text.
func TestRegexp2AgreesWithRE2(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, pat := range []string{
		`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\r\n\t \p{L}\p{N}]+[\r\n]*|[\r\n\t ]+`,
		`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\t\n\v\f\r \p{L}\p{N}]+|[\t\n\v\f\r ]+`,
		` {2,}`, `\p{N}`, `a*`, `x?`, `[\p{P}\$\+<=>\^~\|]+`, `^ +| +$`, `\p{Lu}\p{Ll}*?`,
	} {
		g := goFinder{re: regexp.MustCompile("(?m)" + pat), src: pat}
		x, err := newRegexFinder(pat)
		if err != nil {
			t.Fatal(err)
		}
		for range 3000 {
			checkAgainstRegexp2(t, pat, g, x, randomText(r))
		}
	}
}

// TestSplitBehaviorsHandVsGeneral checks every split behavior, inverted
// or not, through the hand matcher and through regexp2: the Isolated fast
// path and the general segment path must give the same words.
func TestSplitBehaviorsHandVsGeneral(t *testing.T) {
	hand, err := newRegexFinder(qwen2Pattern)
	if err != nil {
		t.Fatal(err)
	}
	general, err := newRegexp2Finder(qwen2Pattern)
	if err != nil {
		t.Fatal(err)
	}
	texts := append([]string{"Hello, world! 123  go\n\n", "  x", "don't"}, splitEdgeCases[:20]...)
	for _, beh := range []splitBehavior{behRemoved, behIsolated, behMergedWithPrevious, behMergedWithNext, behContiguous} {
		for _, inv := range []bool{false, true} {
			for _, s := range texts {
				var got, want []string
				a, err := splitPre{re: hand, beh: beh, invert: inv}.split(piece{s: s}, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, err := splitPre{re: general, beh: beh, invert: inv}.split(piece{s: s}, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range a {
					got = append(got, p.s)
				}
				for _, p := range b {
					want = append(want, p.s)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("behavior %d invert %v on %q: hand %q, regexp2 %q", beh, inv, s, got, want)
				}
			}
		}
	}
}
