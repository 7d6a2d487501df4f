package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The Split patterns of well-known tokenizers, as their tokenizer.json
// files spell them. Each one's matches cover the whole text (every code
// point is a letter, a number, white space or something else, and each
// kind starts some alternative), so a hand-written matcher returns the end
// of the match that starts where the previous one ended. TestKnownPatterns
// checks each against the general regex engine.
const (
	// cl100kPattern is GPT-4's cl100k_base pattern, which Llama 3 ships.
	cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// qwen2Pattern is cl100k with single digits (Qwen2, Qwen2.5, Qwen3).
	qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// o200kPattern is GPT-4o's o200k_base pattern (also Llama 4's).
	o200kPattern = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// tekkenPattern is o200k without contractions and with single digits
	// (Mistral's Tekken tokenizer).
	tekkenPattern = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// knownPatterns maps a pattern to its hand-written matcher.
var knownPatterns = map[string]func(s string, i int) int{
	gpt2Pattern:   gpt2Next,
	cl100kPattern: func(s string, i int) int { return cl100kNext(s, i, 3) },
	qwen2Pattern:  func(s string, i int) int { return cl100kNext(s, i, 1) },
	o200kPattern:  func(s string, i int) int { return o200kNext(s, i, 3, true) },
	tekkenPattern: func(s string, i int) int { return o200kNext(s, i, 1, false) },
}

// Character classes of the patterns, one bit each, precomputed for ASCII.
const (
	cLetter  = 1 << iota // \p{L}
	cNumber              // \p{N}
	cSpace               // \s
	cNewline             // \r or \n
	cUpper               // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k)
	cLower               // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k)
)

var asciiClasses = func() (t [utf8.RuneSelf]uint8) {
	for c := range rune(utf8.RuneSelf) {
		t[c] = slowClasses(c)
	}
	return t
}()

func slowClasses(r rune) uint8 {
	var c uint8
	switch {
	case unicode.IsLetter(r):
		c |= cLetter
		if unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo) {
			c |= cUpper
		}
		if unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo) {
			c |= cLower
		}
	case unicode.IsNumber(r):
		c |= cNumber
	case isSpace(r):
		c |= cSpace
		if r == '\r' || r == '\n' {
			c |= cNewline
		}
	case unicode.Is(unicode.M, r):
		c |= cUpper | cLower
	}
	return c
}

// classAt returns the classes of the code point at i and its width.
func classAt(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClasses[c], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	return slowClasses(r), w
}

// isOtherClass is [^\s\p{L}\p{N}].
func isOtherClass(c uint8) bool { return c&(cLetter|cNumber|cSpace) == 0 }

// isPrefixClass is [^\r\n\p{L}\p{N}].
func isPrefixClass(c uint8) bool { return c&(cLetter|cNumber|cNewline) == 0 }

// contraction returns the end of (?i:'s|'t|'re|'ve|'m|'ll|'d) at i, or
// -1. Case folding is Unicode simple folding, as Oniguruma's: 's also
// matches 'S and 'ſ (U+017F).
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return -1
	}
	// lower folds an ASCII letter to lower case; other bytes map to
	// values that no case below tests.
	lower := func(k int) byte {
		if k >= len(s) || s[k] >= utf8.RuneSelf {
			return 0
		}
		return s[k] | 0x20
	}
	switch lower(i + 1) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if lower(i+2) == 'e' {
			return i + 3
		}
	case 'l':
		if lower(i+2) == 'l' {
			return i + 3
		}
	case 0:
		if strings.HasPrefix(s[i+1:], "ſ") {
			return i + 1 + len("ſ")
		}
	}
	return -1
}

// runOf returns the end of the run of code points from i whose classes
// include one of mask, taking at most max of them (max < 0: no limit).
func runOf(s string, i int, mask uint8, max int) int {
	for n := 0; i < len(s) && n != max; n++ {
		c, w := classAt(s, i)
		if c&mask == 0 {
			break
		}
		i += w
	}
	return i
}

// spaceNext matches the white-space alternatives shared by the cl100k and
// o200k patterns at i, where a white-space code point starts:
//
//	\s*[\r\n]+|\s+(?!\S)|\s+
func spaceNext(s string, i int) int {
	// The run of white space, and the last newline and last code point
	// in it.
	j, lastNL, last := i, -1, i
	for j < len(s) {
		c, w := classAt(s, j)
		if c&cSpace == 0 {
			break
		}
		if c&cNewline != 0 {
			lastNL = j
		}
		last = j
		j += w
	}
	if lastNL >= 0 {
		// \s* backtracks to the last newline and [\r\n]+ takes it (the
		// code point after it is not a newline).
		return lastNL + 1
	}
	if j == len(s) || last == i {
		// \s+(?!\S) takes a run that ends the text; a lone white-space
		// code point before a non-space falls to \s+.
		return j
	}
	// \s+(?!\S) leaves the last white space to the next match.
	return last
}

// cl100kNext returns the end of the match at i of cl100kPattern (digits
// 3) or qwen2Pattern (digits 1).
func cl100kNext(s string, i, digits int) int {
	if j := contraction(s, i); j >= 0 {
		return j
	}
	c, w := classAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c&cLetter != 0 {
		return runOf(s, i+w, cLetter, -1)
	}
	if isPrefixClass(c) && i+w < len(s) {
		if c2, _ := classAt(s, i+w); c2&cLetter != 0 {
			return runOf(s, i+w, cLetter, -1)
		}
	}
	// \p{N}{1,3}
	if c&cNumber != 0 {
		return runOf(s, i, cNumber, digits)
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if isOtherClass(c) {
		start = i
	} else if s[i] == ' ' && i+1 < len(s) {
		if c2, _ := classAt(s, i+1); isOtherClass(c2) {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runOfOther(s, start)
		return runOf(s, j, cNewline, -1)
	}
	return spaceNext(s, i)
}

// runOfOther returns the end of the run of [^\s\p{L}\p{N}] from i.
func runOfOther(s string, i int) int {
	for i < len(s) {
		c, w := classAt(s, i)
		if !isOtherClass(c) {
			break
		}
		i += w
	}
	return i
}

// o200kNext returns the end of the match at i of o200kPattern (digits 3,
// contractions) or tekkenPattern (digits 1, none).
func o200kNext(s string, i, digits int, contractions bool) int {
	c, w := classAt(s, i)
	// The two word alternatives, each tried with the optional prefix
	// code point taken, then without it, as a backtracking engine does.
	if isPrefixClass(c) {
		if j := o200kWordA(s, i+w, contractions); j >= 0 {
			return j
		}
	}
	if j := o200kWordA(s, i, contractions); j >= 0 {
		return j
	}
	if isPrefixClass(c) {
		if j := o200kWordB(s, i+w, contractions); j >= 0 {
			return j
		}
	}
	if j := o200kWordB(s, i, contractions); j >= 0 {
		return j
	}
	if c&cNumber != 0 {
		return runOf(s, i, cNumber, digits)
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n/]*'
	start := -1
	if isOtherClass(c) {
		start = i
	} else if s[i] == ' ' && i+1 < len(s) {
		if c2, _ := classAt(s, i+1); isOtherClass(c2) {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runOfOther(s, start)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n' || s[j] == '/') {
			j++
		}
		return j
	}
	return spaceNext(s, i)
}

// o200kWordA matches U*W+C? at p (U, W: the cUpper and cLower classes; C:
// the optional contraction), or returns -1. When the greedy U* leaves no W
// after it, U* gives back code points until one that is also in W can
// start W+ (a backtracking engine's choice).
func o200kWordA(s string, p int, contractions bool) int {
	u, lastBoth := p, -1
	for u < len(s) {
		c, w := classAt(s, u)
		if c&cUpper == 0 {
			break
		}
		if c&cLower != 0 {
			lastBoth = u
		}
		u += w
	}
	var e int
	if u < len(s) {
		if c, _ := classAt(s, u); c&cLower != 0 {
			e = runOf(s, u, cLower, -1)
			return withContraction(s, e, contractions)
		}
	}
	if lastBoth < 0 {
		return -1
	}
	// W+ starts at the last code point in both classes and stops after it
	// (the next one is in U only, or is u, which is not in W).
	_, w := classAt(s, lastBoth)
	e = lastBoth + w
	return withContraction(s, e, contractions)
}

// o200kWordB matches U+W*C? at p, or returns -1.
func o200kWordB(s string, p int, contractions bool) int {
	u := runOf(s, p, cUpper, -1)
	if u == p {
		return -1
	}
	return withContraction(s, runOf(s, u, cLower, -1), contractions)
}

func withContraction(s string, e int, contractions bool) int {
	if contractions {
		if j := contraction(s, e); j >= 0 {
			return j
		}
	}
	return e
}
