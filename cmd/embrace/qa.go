// "embrace qa" answers questions from a context with an extractive
// question-answering model, like Hugging Face's question-answering
// pipeline: the answer is a span of the context.
//
//	embrace qa -question "Where is Hugging Face based?" -context "Hugging Face is based in New York City."
//	printf 'Who wrote it?\tThe book was written by Ada.\n' | embrace qa -json
//	embrace qa -context "$(cat article.txt)" "Who?" "When?"
//
// Run "embrace qa -h" for every flag.

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
)

var qaCommand = &cli.Command{
	Name:     "embrace qa",
	Summary:  "answer questions with a span of a context (extractive question answering)",
	Synopsis: "[-question Q -context C | QUESTION...]",
	Details: `Input: -question and -context for one question; or -context with each
argument (or each non-blank stdin line) a question about it; or, without
-context, each argument or stdin line is "QUESTION<TAB>CONTEXT". Contexts longer
than the model's window are split into overlapping windows, as Hugging Face
does.

Output: per question, the best -top-k answers with score and position in the
context (byte offsets; code points in JSON's char_start/char_end).
With -json, one line per question: {"question": "...", "context": "...",
"answers": [{"answer", "score", "start", "end", "char_start", "char_end"}]}.`,
	DefaultModel: "distilbert/distilbert-base-cased-distilled-squad",
}

// qaAnswer is one candidate span.
type qaAnswer struct {
	Answer    string  `json:"answer"`
	Score     float64 `json:"score"`
	Start     int     `json:"start"` // byte offsets into the context
	End       int     `json:"end"`
	CharStart int     `json:"char_start"` // code-point offsets into the context
	CharEnd   int     `json:"char_end"`
}

// run is the whole program, callable from tests.
func runQA(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := qaCommand.NewFlagSet()
	model := qaCommand.ModelFlag(fs)
	threads := qaCommand.ThreadsFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON Lines")
	question := fs.String("question", "", "the question (needs -context)")
	qaContext := fs.String("context", "", "the text holding the answer")
	topK := fs.Int("top-k", 1, "answers shown per question, best first")
	maxLen := fs.Int("max-qaAnswer-len", 15, "longest qaAnswer, in tokens")
	if ok, code := qaCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	switch {
	case *topK < 1:
		return qaCommand.Failf(stderr, "-top-k must be at least 1, got %d", *topK)
	case *maxLen < 1:
		return qaCommand.Failf(stderr, "-max-qaAnswer-len must be at least 1, got %d", *maxLen)
	case *question != "" && *qaContext == "":
		return qaCommand.Failf(stderr, "-question needs -context")
	case *question != "" && len(fs.Args()) > 0:
		return qaCommand.Failf(stderr, "give the question either with -question or as arguments, not both")
	}

	dir, err := cli.ResolveModel(ctx, *model)
	if err != nil {
		return qaCommand.Fail(stderr, err)
	}
	qa, err := pipeline.NewQuestionAnswerer(ctx, dir, &pipeline.Options{Load: arch.LoadOptions{Threads: *threads}})
	if err != nil {
		return qaCommand.Fail(stderr, fmt.Errorf("loading %s: %w", dir, err))
	}
	defer qa.Close()

	jl := cli.NewJSONLines(stdout)
	n := 0
	ask := func(where, q, c string) error {
		if strings.TrimSpace(q) == "" || strings.TrimSpace(c) == "" {
			return fmt.Errorf("%s: the question and the context must both be non-empty", where)
		}
		res, err := qa.Answer(ctx, []pipeline.QAInput{{Question: q, Context: c}},
			pipeline.QAOptions{TopK: *topK, MaxAnswerLen: *maxLen})
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if len(res) != 1 {
			return fmt.Errorf("%s: the model returned %d results for 1 question", where, len(res))
		}
		answers := make([]qaAnswer, len(res[0]))
		for i, a := range res[0] {
			answers[i] = qaAnswer{Answer: a.Answer, Score: a.Score, Start: a.Start, End: a.End, CharStart: a.StartRune, CharEnd: a.EndRune}
		}
		if *asJSON {
			return jl.Write(struct {
				Question string     `json:"question"`
				Context  string     `json:"context"`
				Answers  []qaAnswer `json:"answers"`
			}{q, c, answers})
		}
		if n > 0 && *topK > 1 {
			fmt.Fprintln(stdout)
		}
		n++
		return qaPrintText(stdout, q, answers)
	}
	// split turns one input item into a question and its context.
	split := func(where, item string) error {
		if *qaContext != "" {
			return ask(where, item, *qaContext)
		}
		q, c, ok := strings.Cut(item, "\t")
		if !ok {
			return fmt.Errorf("%s: want QUESTION<TAB>CONTEXT (or give -context), found no tab", where)
		}
		return ask(where, q, c)
	}

	switch {
	case *question != "":
		err = ask("-question", *question, *qaContext)
	case len(fs.Args()) > 0:
		for i, a := range fs.Args() {
			if err = split(fmt.Sprintf("argument %d", i+1), a); err != nil {
				break
			}
		}
	default:
		if stdin == os.Stdin && cli.StdinIsTerminal() {
			fmt.Fprintln(stderr, "embrace qa: reading QUESTION<TAB>CONTEXT lines (or questions, with -context) from stdin (Ctrl-D ends)")
		}
		err = cli.Lines(ctx, stdin, func(n int, line string) error {
			return split(fmt.Sprintf("stdin line %d", n), line)
		})
	}
	if err != nil {
		return qaCommand.Fail(stderr, err)
	}
	return cli.ExitOK
}

// qaPrintText writes the question and its answers, one per line.
func qaPrintText(w io.Writer, q string, answers []qaAnswer) error {
	if len(answers) == 0 {
		_, err := fmt.Fprintf(w, "%s\t(no qaAnswer)\n", q)
		return err
	}
	if len(answers) == 1 {
		a := answers[0]
		_, err := fmt.Fprintf(w, "%s\t%q (score %.4f, bytes %d-%d)\n", q, a.Answer, a.Score, a.Start, a.End)
		return err
	}
	fmt.Fprintln(w, q)
	for i, a := range answers {
		if _, err := fmt.Fprintf(w, "  %d. %q (score %.4f, bytes %d-%d)\n", i+1, a.Answer, a.Score, a.Start, a.End); err != nil {
			return err
		}
	}
	return nil
}
