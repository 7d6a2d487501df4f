package generate

import (
	"context"
	"errors"
	"github.com/embrace-go/embrace/models/arch"
	"iter"
	"strings"
	"unicode/utf8"
)

// Stream generates a continuation of one prompt and yields it as text
// pieces while it is produced. The pieces concatenate to the decoded
// generated ids (special tokens skipped); a piece never ends inside a UTF-8
// sequence, and text that could be the start of a stop string is held back
// until it is known not to be one. With stop strings the text ends just
// before the first one. Breaking out of the loop or cancelling ctx stops
// generation; an error is yielded once, as the last element.
//
// cfg.Decoder must be set.
func Stream(ctx context.Context, m arch.CausalLM, prompt []int, cfg Config) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if cfg.Decoder == nil {
			yield("", errors.New("generate: streaming needs a Decoder"))
			return
		}
		if len(prompt) == 0 {
			yield("", errors.New("generate: empty prompt"))
			return
		}
		seq := len(prompt)
		emitted := 0 // bytes of the decoded text already yielded
		var text string
		stopped, quit := false, false
		emit := func(upto int) bool {
			if upto <= emitted {
				return true
			}
			piece := strings.ToValidUTF8(text[emitted:upto], "\uFFFD")
			emitted = upto
			if !yield(piece, nil) {
				quit = true
				return false
			}
			return true
		}
		_, _, err := run(ctx, m, prompt, nil, 1, cfg, func(rows [][]int, finished []bool) error {
			t, err := cfg.Decoder.Decode(rows[0][seq:], true)
			if err != nil {
				return err
			}
			text = t
			if at, found := findStop(text, cfg.StopStrings); found {
				stopped = true
				emit(at)
				return errStop
			}
			if finished[0] {
				return nil // the final flush below emits the rest
			}
			if !emit(stableEnd(text, emitted, cfg.StopStrings)) {
				return errStop
			}
			return nil
		})
		if quit {
			return
		}
		if err != nil {
			yield("", err)
			return
		}
		if !stopped {
			emit(len(text))
		}
	}
}

// stableEnd returns how much of text can be yielded now: it stops before a
// trailing incomplete or replacement character (the next token may complete
// it) and before a suffix that begins a stop string.
func stableEnd(text string, from int, stops []string) int {
	end := len(text)
	for end > from {
		r, size := utf8.DecodeLastRuneInString(text[:end])
		if r != utf8.RuneError {
			break
		}
		end -= size
	}
	hold := 0
	for _, s := range stops {
		for l := min(len(s)-1, end-from); l > hold; l-- {
			if strings.HasSuffix(text[:end], s[:l]) {
				hold = l
				break
			}
		}
	}
	return end - hold
}
