package tokenizer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder turns tokens back into text pieces (joined with "" afterwards).
type decoder interface {
	decode(toks []string) []string
}

// wordPieceDec joins tokens with spaces, gluing "##" continuations.
type wordPieceDec struct {
	prefix  string
	cleanup bool
}

func (d wordPieceDec) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		if i != 0 {
			if strings.HasPrefix(t, d.prefix) {
				t = strings.Replace(t, d.prefix, "", 1)
			} else {
				t = " " + t
			}
		}
		if d.cleanup {
			t = wordPieceCleanup(t)
		}
		out[i] = t
	}
	return out
}

var wpCleanup = chainReplacer{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

func wordPieceCleanup(s string) string { return wpCleanup.Replace(s) }

// byteLevelDec maps the byte-level alphabet back to bytes.
type byteLevelDec struct{}

func (byteLevelDec) decode(toks []string) []string {
	var buf []byte
	for _, t := range toks {
		mark := len(buf)
		ok := true
		for _, r := range t {
			b, found := runeToByte[r]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			// Not byte-level text (an added token, say): keep its bytes.
			buf = append(buf[:mark], t...)
		}
	}
	return []string{lossyUTF8(buf)}
}

// lossyUTF8 converts bytes to a string replacing every maximal invalid
// subsequence with U+FFFD, as Rust's String::from_utf8_lossy does.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || w > 1 {
			sb.Write(b[i : i+w])
			i += w
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += invalidPrefixLen(b[i:])
	}
	return sb.String()
}

// invalidPrefixLen is the length of the maximal prefix of b that could
// start a well-formed sequence (at least 1).
func invalidPrefixLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k > 0 {
			lo, hi = 0x80, 0xBF
		}
		if x < lo || x > hi {
			break
		}
		n++
	}
	return n
}

// bpeDec replaces the end-of-word suffix with a space (none at the end).
type bpeDec struct{ suffix string }

func (d bpeDec) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		rep := " "
		if i == len(toks)-1 {
			rep = ""
		}
		out[i] = strings.ReplaceAll(t, d.suffix, rep)
	}
	return out
}

// metaspaceDec turns the ▁ marker back into spaces, dropping it in the
// first token unless prepending is off.
type metaspaceDec struct {
	replacement string
	prepend     string
}

func (d metaspaceDec) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		rep := " "
		if i == 0 && d.prepend != "never" {
			rep = ""
		}
		out[i] = strings.ReplaceAll(t, d.replacement, rep)
	}
	return out
}

// replaceDec replaces a literal (from) or the matches of a regex (re) in
// every token.
type replaceDec struct {
	from string
	re   regexFinder
	to   string
}

func (d replaceDec) decode(toks []string) []string {
	out := make([]string, len(toks))
	var ms [][2]int
	for i, t := range toks {
		if d.re == nil {
			out[i] = strings.ReplaceAll(t, d.from, d.to)
			continue
		}
		var err error
		if ms, err = d.re.find(t, ms[:0]); err != nil {
			// Only the backtracking engine can fail (out of memory for
			// its stack): keep the token as it is.
			out[i] = t
			continue
		}
		var b strings.Builder
		last := 0
		for _, m := range ms {
			b.WriteString(t[last:m[0]])
			b.WriteString(d.to)
			last = m[1]
		}
		b.WriteString(t[last:])
		out[i] = b.String()
	}
	return out
}

// fuseDec joins all tokens into one.
type fuseDec struct{}

func (fuseDec) decode(toks []string) []string { return []string{strings.Join(toks, "")} }

// stripDec removes a character from the start and end of every token.
type stripDec struct {
	content     string
	start, stop int
}

func (d stripDec) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		for k := 0; k < d.start && strings.HasPrefix(t, d.content); k++ {
			t = t[len(d.content):]
		}
		for k := 0; k < d.stop && strings.HasSuffix(t, d.content); k++ {
			t = t[:len(t)-len(d.content)]
		}
		out[i] = t
	}
	return out
}

// byteFallbackDec turns runs of <0xXX> tokens back into UTF-8 text.
type byteFallbackDec struct{}

func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || t[:3] != "<0x" || t[5] != '>' {
		return 0, false
	}
	digits := t[3:5]
	if digits[0] == '+' {
		// Rust's u8::from_str_radix, which Hugging Face uses, accepts a
		// plus sign: "<0x+A>" is byte 0x0A there.
		digits = digits[1:]
	}
	if digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 16, 8)
	return byte(v), err == nil
}

func (byteFallbackDec) decode(toks []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range toks {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// decSequence chains decoders.
type decSequence []decoder

func (s decSequence) decode(toks []string) []string {
	for _, d := range s {
		toks = d.decode(toks)
	}
	return toks
}
