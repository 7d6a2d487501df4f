// "embrace fill-mask" predicts the word hidden behind a mask token with a
// masked-language model, like Hugging Face's fill-mask pipeline.
//
//	embrace fill-mask "Paris is the [MASK] of France."
//	embrace fill-mask -top-k 3 -json "The man worked as a [MASK]."
//
// Run "embrace fill-mask -h" for every flag.

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
)

var fillMaskCommand = &cli.Command{
	Name:     "embrace fill-mask",
	Summary:  "predict the words behind the mask token with a masked-language model",
	Synopsis: "[TEXT...]",
	Details: `Input: each argument is one text; without arguments, each non-blank line of
stdin is one text. Each text holds the model's mask token ([MASK] for BERT,
<mask> for RoBERTa) at least once.

Output: per text, the best -top-k tokens for each mask with score and the
completed sentence. With -json, one line per text: {"text": "...",
"masks": [[{"score", "token", "token_str", "sequence"}, ...], ...]}, one list
per mask token in order.`,
	DefaultModel: "google-bert/bert-base-uncased",
}

// fillMaskPrediction is one candidate for one mask.
type fillMaskPrediction struct {
	Score    float64 `json:"score"`
	Token    int     `json:"token"`
	TokenStr string  `json:"token_str"`
	Sequence string  `json:"sequence"`
}

// run is the whole program, callable from tests.
func runFillMask(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := fillMaskCommand.NewFlagSet()
	model := fillMaskCommand.ModelFlag(fs)
	threads := fillMaskCommand.ThreadsFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON Lines")
	topK := fs.Int("top-k", 5, "predictions shown per mask, best first")
	targetList := fs.String("targets", "", "comma-separated `words`: score only these candidates")
	if ok, code := fillMaskCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if *topK < 1 {
		return fillMaskCommand.Failf(stderr, "-top-k must be at least 1, got %d", *topK)
	}

	var targets []string
	for _, t := range strings.Split(*targetList, ",") {
		if t = strings.TrimSpace(t); t != "" {
			targets = append(targets, t)
		}
	}

	dir, err := cli.ResolveModel(ctx, *model)
	if err != nil {
		return fillMaskCommand.Fail(stderr, err)
	}
	fm, err := pipeline.NewFillMask(ctx, dir, &pipeline.Options{Load: arch.LoadOptions{Threads: *threads}})
	if err != nil {
		return fillMaskCommand.Fail(stderr, fmt.Errorf("loading %s: %w", dir, err))
	}
	defer fm.Close()

	jl := cli.NewJSONLines(stdout)
	n := 0
	fill := func(where, text string) error {
		res, err := fm.Fill(ctx, []string{text}, pipeline.FillMaskOptions{TopK: *topK, Targets: targets})
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if len(res) != 1 {
			return fmt.Errorf("%s: the model returned %d results for 1 text", where, len(res))
		}
		masks := make([][]fillMaskPrediction, len(res[0].Masks))
		for m, mr := range res[0].Masks {
			masks[m] = make([]fillMaskPrediction, len(mr.Predictions))
			for j, p := range mr.Predictions {
				masks[m][j] = fillMaskPrediction{Score: p.Score, Token: p.Token, TokenStr: p.TokenStr, Sequence: p.Sequence}
			}
		}
		if *asJSON {
			return jl.Write(struct {
				Text  string                 `json:"text"`
				Masks [][]fillMaskPrediction `json:"masks"`
			}{text, masks})
		}
		if n > 0 {
			fmt.Fprintln(stdout)
		}
		n++
		return fillMaskPrintText(stdout, text, masks)
	}
	if len(fs.Args()) > 0 {
		for i, a := range fs.Args() {
			if err = fill(fmt.Sprintf("argument %d", i+1), a); err != nil {
				break
			}
		}
	} else {
		if stdin == os.Stdin && cli.StdinIsTerminal() {
			fmt.Fprintf(stderr, "embrace fill-mask: reading texts with %s from stdin, one per line (Ctrl-D ends)\n", fm.MaskToken())
		}
		err = cli.Lines(ctx, stdin, func(n int, line string) error {
			return fill(fmt.Sprintf("stdin line %d", n), line)
		})
	}
	if err != nil {
		return fillMaskCommand.Fail(stderr, err)
	}
	return cli.ExitOK
}

// fillMaskPrintText writes the text and an aligned table of predictions per mask.
func fillMaskPrintText(w io.Writer, text string, masks [][]fillMaskPrediction) error {
	fmt.Fprintf(w, "%q\n", text)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for m, preds := range masks {
		if len(masks) > 1 {
			fmt.Fprintf(tw, "  mask %d\n", m+1)
		}
		for _, p := range preds {
			fmt.Fprintf(tw, "  %.4f\t%s\t%s\n", p.Score, p.TokenStr, p.Sequence)
		}
	}
	return tw.Flush()
}
