package tokenizer

import (
	"errors"
	"fmt"

	"github.com/dlclark/regexp2/v2"
)

// regexFinder finds the matches of a regex pattern from a tokenizer file.
// Hugging Face tokenizers compiles those patterns with Oniguruma, so the
// matches must be Oniguruma's: leftmost-first alternation, Unicode \s \d
// \w, line anchors for ^ and $, lookaround.
type regexFinder interface {
	// find appends the [start, end) byte ranges of the matches of s, in
	// order. Empty matches count (a lookahead-only pattern splits the
	// text), except one that abuts the previous match, as with
	// Oniguruma's (and Go's) find-all.
	find(s string, out [][2]int) ([][2]int, error)
}

// newRegexFinder picks how to match a pattern: a hand-written matcher for
// the well-known pre-tokenizer patterns (knownPatterns), regexp2 (a
// backtracking engine with lookaround) for everything else.
//
// Go's regexp is not used: regexp2 measured faster on most lookahead-free
// tokenizer patterns (BenchmarkSplitEngines; figures in bench/README.md),
// and Go's \s \d \w are ASCII-only where Oniguruma's are Unicode.
func newRegexFinder(pat string) (regexFinder, error) {
	if k, ok := knownPatterns[pat]; ok {
		return &coverFinder{src: pat, next: k}, nil
	}
	return newRegexp2Finder(pat)
}

// regexp2Finder matches with regexp2, whose default mode has Unicode \s
// \d \w and \p classes, Go's simple case folding (as Oniguruma's, (?i)
// 's matches 'ſ), lookahead, lookbehind and atomic groups.
type regexp2Finder struct {
	re  *regexp2.Regexp
	src string
}

func newRegexp2Finder(pat string) (regexFinder, error) {
	tr, err := onigToRegexp2(pat)
	if err != nil {
		return nil, err
	}
	// Multiline: Oniguruma's default syntax treats ^ and $ as line
	// anchors. The backtracking stack is left to grow with the input
	// (it is bounded by the text, not by the file): a long run of spaces
	// under \s+(?!\S) must not fail.
	re, err := regexp2.Compile(tr, regexp2.Multiline, regexp2.OptionMaxBacktrackingStackSize(-1))
	if err != nil {
		return nil, fmt.Errorf("%w: regex %q: %w", ErrUnsupported, pat, err)
	}
	return regexp2Finder{re: re, src: pat}, nil
}

func (g regexp2Finder) find(s string, out [][2]int) ([][2]int, error) {
	ms, err := g.re.FindAllStringIndex(s, -1)
	if err != nil {
		return out, fmt.Errorf("tokenizer: regex %q: %w", g.src, err)
	}
	lastEnd := -1
	for _, m := range ms {
		if m[0] == m[1] && m[0] == lastEnd {
			// .NET semantics report an empty match right after a
			// match; Oniguruma does not.
			continue
		}
		out = append(out, [2]int{m[0], m[1]})
		lastEnd = m[1]
	}
	return out, nil
}

// coverFinder runs a hand-written matcher for a pattern whose matches
// cover the whole text: next(s, i) is the end of the match at i.
type coverFinder struct {
	src  string
	next func(s string, i int) int
}

func (c *coverFinder) find(s string, out [][2]int) ([][2]int, error) {
	for i := 0; i < len(s); {
		j := c.next(s, i)
		if j <= i {
			return out, errors.New("tokenizer: internal error: split matcher made no progress")
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out, nil
}
