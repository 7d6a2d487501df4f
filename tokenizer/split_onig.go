package tokenizer

import (
	"fmt"
	"strings"
)

// onigWord is Oniguruma's Unicode \w (letters, marks, numbers, connector
// punctuation); .NET's, which regexp2 follows, lacks Mc, Me, Nl and No.
const onigWord = `\p{L}\p{M}\p{N}\p{Pc}`

// onigToRegexp2 rewrites an Oniguruma pattern (the syntax Hugging Face
// tokenizers compiles tokenizer.json patterns with) into one regexp2
// matches the same way, or says why it cannot. regexp2 runs with
// Multiline, as Oniguruma's ^ and $ are line anchors.
//
// Rewritten: \w \W \h \H (their Oniguruma classes), and the m flag of an
// option group (Oniguruma's m makes . match newlines: regexp2's s).
// Refused: what regexp2 would silently match otherwise: \b \B (its word
// boundaries use .NET's \w), POSIX bracket classes, nested classes and
// class intersection, the ASCII-range flags W D S P, and \W or \H inside a
// class.
func onigToRegexp2(pat string) (string, error) {
	var b strings.Builder
	unsupported := func(what string) (string, error) {
		return "", fmt.Errorf("%w: regex %q: %s has no exact equivalent in the Go engines", ErrUnsupported, pat, what)
	}
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\' && i+1 < len(pat):
			e := pat[i+1]
			i++
			switch e {
			case 'w':
				if inClass {
					b.WriteString(onigWord)
				} else {
					b.WriteString("[" + onigWord + "]")
				}
				continue
			case 'W':
				if inClass {
					return unsupported(`\W inside a character class`)
				}
				b.WriteString("[^" + onigWord + "]")
				continue
			case 'h':
				if inClass {
					b.WriteString("0-9a-fA-F")
				} else {
					b.WriteString("[0-9a-fA-F]")
				}
				continue
			case 'H':
				if inClass {
					return unsupported(`\H inside a character class`)
				}
				b.WriteString("[^0-9a-fA-F]")
				continue
			case 'b', 'B':
				if !inClass {
					return unsupported(`the word boundary \` + string(e))
				}
			}
			b.WriteByte(c)
			b.WriteByte(e)
			if e == 'p' || e == 'P' {
				// Copy a \p{...} name whole.
				if i+1 < len(pat) && pat[i+1] == '{' {
					if k := strings.IndexByte(pat[i+1:], '}'); k >= 0 {
						b.WriteString(pat[i+1 : i+2+k])
						i += 1 + k
					}
				}
			}
			continue
		case inClass && c == '[':
			if strings.HasPrefix(pat[i:], "[:") {
				return unsupported("a POSIX bracket class")
			}
			return unsupported("a nested character class")
		case inClass && c == '&' && strings.HasPrefix(pat[i:], "&&"):
			return unsupported("class intersection (&&)")
		case inClass && c == ']':
			inClass = false
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ] right after [ or [^ is a literal in both syntaxes.
			if strings.HasPrefix(pat[i+1:], "^") {
				b.WriteByte('^')
				i++
			}
			if strings.HasPrefix(pat[i+1:], "]") {
				b.WriteByte(']')
				i++
			}
			continue
		case !inClass && c == '(' && strings.HasPrefix(pat[i:], "(?"):
			// An option group: (?flags) or (?flags:...).
			j := i + 2
			for j < len(pat) && strings.IndexByte("imxsWDSPy-", pat[j]) >= 0 {
				j++
			}
			if j > i+2 && j < len(pat) && (pat[j] == ')' || pat[j] == ':') {
				flags := pat[i+2 : j]
				if strings.ContainsAny(flags, "WDSPys") {
					return unsupported("the option flags " + flags)
				}
				b.WriteString("(?" + strings.ReplaceAll(flags, "m", "s"))
				i = j - 1
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}
