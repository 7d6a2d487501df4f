// Command classify labels texts with a sequence-classification model
// (sentiment, topic, ...), like Hugging Face's text-classification pipeline.
//
//	go run ./examples/classify "I loved this film" "Terrible service"
//	go run ./examples/classify -top-k 0 -json "I loved this film"
//
// Run it with -h for every flag.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/pipeline"
)

var command = &cli.Command{
	Name:     "classify",
	Summary:  "label texts with a text-classification model",
	Synopsis: "[TEXT...]",
	Details: `Input: each argument is one text; without arguments, each non-blank line of
stdin is one text. Texts are classified in batches of -batch-size.

Output: per text, its best -top-k labels with scores (0 = every label), from
the model's config.json id2label. Scores are a softmax over the labels, or a
sigmoid per label for multi-label models (problem_type), as in Hugging Face.
With -json, one line per text: {"text": "...", "labels": [{"label": ..., "score": ...}]}.`,
	DefaultModel: "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// label is one scored label of one text.
type label struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// run is the whole program, callable from tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := command.NewFlagSet()
	model := command.ModelFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON Lines")
	topK := fs.Int("top-k", 1, "labels shown per text, best first (0 = all)")
	batchSize := fs.Int("batch-size", 32, "texts classified per forward pass")
	if ok, code := command.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if *topK < 0 {
		return command.Failf(stderr, "-top-k must be 0 (all) or more, got %d", *topK)
	}
	if *batchSize < 1 {
		return command.Failf(stderr, "-batch-size must be at least 1, got %d", *batchSize)
	}

	dir, err := cli.ResolveModel(ctx, *model)
	if err != nil {
		return command.Fail(stderr, err)
	}
	clf, err := pipeline.NewTextClassifier(ctx, dir, &pipeline.Options{BatchSize: *batchSize})
	if err != nil {
		return command.Fail(stderr, fmt.Errorf("loading %s: %w", dir, err))
	}
	defer clf.Close()
	if len(fs.Args()) == 0 && stdin == os.Stdin && cli.StdinIsTerminal() {
		fmt.Fprintln(stderr, "classify: reading texts from stdin, one per line (Ctrl-D ends)")
	}

	jl := cli.NewJSONLines(stdout)
	err = cli.Batches(ctx, fs.Args(), stdin, *batchSize, func(batch []string) error {
		res, err := clf.Classify(ctx, batch, pipeline.ClassifyOptions{TopK: *topK})
		if err != nil {
			return err
		}
		if len(res) != len(batch) {
			return fmt.Errorf("the model returned %d results for %d texts", len(res), len(batch))
		}
		for i, scores := range res {
			labels := make([]label, len(scores))
			for j, s := range scores {
				labels[j] = label{Label: s.Label, Score: s.Score}
			}
			if *asJSON {
				err = jl.Write(struct {
					Text   string  `json:"text"`
					Labels []label `json:"labels"`
				}{batch[i], labels})
			} else {
				err = printText(stdout, batch[i], labels)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return command.Fail(stderr, err)
	}
	return cli.ExitOK
}

// printText writes "LABEL (score)" pairs after the text, tab-separated so
// the output also cuts well with cut(1).
func printText(w io.Writer, text string, labels []label) error {
	var b strings.Builder
	b.WriteString(text)
	for _, l := range labels {
		fmt.Fprintf(&b, "\t%s (%.4f)", l.Label, l.Score)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
