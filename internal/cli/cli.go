// Package cli holds what the command-line programs share: flag parsing with a
// self-explaining -h, reading inputs from arguments or stdin, turning -model
// into a local folder, JSON Lines output and one-line error exits.
//
// It is internal to the module on purpose: glue for the embrace command and
// the example programs, not library API, and it uses only what a user of
// Embrace could import.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes shared by every example.
const (
	ExitOK    = 0 // success, including -h
	ExitError = 1 // the work failed: bad model folder, bad input, ...
	ExitUsage = 2 // the command line itself is wrong
)

// MaxLineBytes bounds one line of stdin so a file without newlines cannot
// make an example allocate without limit.
const MaxLineBytes = 16 << 20

// Command describes one example binary: what -h prints and how errors are
// prefixed.
type Command struct {
	Name         string // binary name, e.g. "embed"
	Summary      string // one line: what it does
	Synopsis     string // argument synopsis after the flags, e.g. "[TEXT...]"
	Details      string // further paragraphs printed by -h (input format, output format)
	DefaultModel string // Hub repo id used when -model is not given
}

// NewFlagSet returns a flag set whose -h output is the command's own help
// and which never prints anything itself, so errors stay one line.
func (c *Command) NewFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// ModelFlag adds the -model flag every example has.
func (c *Command) ModelFlag(fs *flag.FlagSet) *string {
	return fs.String("model", c.DefaultModel,
		"a local model `folder` (runs fully offline) or a Hugging Face Hub repo id org/name (downloaded into the Hugging Face cache)")
}

// ThreadsFlag adds the -threads flag of the commands that run a model:
// the bound on the goroutines of one call (arch.LoadOptions.Threads).
func (c *Command) ThreadsFlag(fs *flag.FlagSet) *int {
	return fs.Int("threads", 0, "threads one model call runs on (0 = every processor, GOMAXPROCS)")
}

// Parse parses args. When it returns ok false the caller must return code:
// ExitOK after -h (help went to stdout), ExitUsage after a bad flag (one
// line went to stderr).
func (c *Command) Parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (ok bool, code int) {
	err := fs.Parse(args)
	if err == nil {
		return true, ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		c.PrintHelp(fs, stdout)
		return false, ExitOK
	}
	fmt.Fprintf(stderr, "%s: %s (run %s -h for help)\n", c.Name, oneLine(err.Error()), c.Name)
	return false, ExitUsage
}

// PrintHelp writes the usage text: summary, synopsis, flags and details.
func (c *Command) PrintHelp(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "%s: %s\n\nUsage:\n  %s [flags] %s\n\nFlags:\n", c.Name, c.Summary, c.Name, c.Synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	if c.Details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.Details, "\n"))
	}
}

// Fail writes err as one line prefixed with the command name and returns
// ExitError.
func (c *Command) Fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "%s: %s\n", c.Name, oneLine(err.Error()))
	return ExitError
}

// Failf is Fail with a formatted message.
func (c *Command) Failf(stderr io.Writer, format string, args ...any) int {
	return c.Fail(stderr, fmt.Errorf(format, args...))
}

// oneLine folds a multi-line message so each failure is exactly one line
// on stderr, easy to grep and to show in a CI log.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "; ")
}

// Inputs returns the items to process: the positional arguments when there
// are any, else the lines of stdin (one item per line; a trailing "\r" is
// dropped and blank lines are skipped). Reading stops early when ctx is
// done.
func Inputs(ctx context.Context, args []string, stdin io.Reader) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	var items []string
	err := Lines(ctx, stdin, func(_ int, line string) error {
		items = append(items, line)
		return nil
	})
	return items, err
}

// Lines calls fn for each non-blank line of r, in order, with its 1-based
// line number, so long inputs can be processed as they arrive (a pipe from
// another program, a person typing). It stops at the first error from fn.
func Lines(ctx context.Context, r io.Reader, fn func(lineNo int, line string) error) error {
	if r == nil {
		return errors.New("no input: give items as arguments or on stdin, one per line")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		if err := ctx.Err(); err != nil {
			return err
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("stdin line %d: longer than %d bytes", n+1, MaxLineBytes)
		}
		return fmt.Errorf("reading stdin after line %d: %w", n, err)
	}
	return nil
}

// StdinIsTerminal reports whether stdin is an interactive terminal, so a
// program waiting for lines can say so instead of looking hung.
func StdinIsTerminal() bool {
	fi, err := os.Stdin.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// JSONLines writes one JSON value per line: a stream that is easy to pipe
// into jq and to read back line by line.
type JSONLines struct {
	enc *json.Encoder
}

// NewJSONLines returns a JSON Lines writer on w. HTML characters are not
// escaped so text survives unchanged.
func NewJSONLines(w io.Writer) *JSONLines {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONLines{enc: enc}
}

// Write writes v as one line.
func (j *JSONLines) Write(v any) error {
	if err := j.enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON output: %w", err)
	}
	return nil
}

// Batches feeds the inputs (the arguments, else the non-blank lines of
// stdin) to fn in slices of at most size items, as they arrive, so a long
// stream is processed batch by batch with bounded memory. The slice passed
// to fn is reused afterwards; fn must not keep it.
func Batches(ctx context.Context, args []string, stdin io.Reader, size int, fn func(batch []string) error) error {
	if size < 1 {
		return fmt.Errorf("batch size must be at least 1, got %d", size)
	}
	batch := make([]string, 0, min(size, 1024))
	done := 0 // items handed to fn so far
	call := func() error {
		if err := fn(batch); err != nil {
			// Errors from below count within the batch; say which inputs.
			if len(batch) == 1 {
				return fmt.Errorf("input %d: %w", done+1, err)
			}
			return fmt.Errorf("inputs %d-%d: %w", done+1, done+len(batch), err)
		}
		done += len(batch)
		batch = batch[:0]
		return nil
	}
	add := func(item string) error {
		batch = append(batch, item)
		if len(batch) < size {
			return nil
		}
		return call()
	}
	var err error
	if len(args) > 0 {
		for _, a := range args {
			if err = ctx.Err(); err != nil {
				return err
			}
			if err = add(a); err != nil {
				return err
			}
		}
	} else if err = Lines(ctx, stdin, func(_ int, line string) error { return add(line) }); err != nil {
		return err
	}
	if len(batch) > 0 {
		return call()
	}
	return nil
}
