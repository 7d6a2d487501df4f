// "embrace classify" labels texts with a sequence-classification model
// (sentiment, topic, ...), like Hugging Face's text-classification pipeline.
//
//	embrace classify "I loved this film" "Terrible service"
//	embrace classify -top-k 0 -json "I loved this film"
//
// Run "embrace classify -h" for every flag.

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

var classifyCommand = &cli.Command{
	Name:     "embrace classify",
	Summary:  "label texts with a text-classification model",
	Synopsis: "[TEXT...]",
	Details: `Input: each argument is one text; without arguments, each non-blank line of
stdin is one text. Texts are classified in batches of -batch-size.

Output: per text, its best -top-k labels with scores (0 = every classifyLabel), from
the model's config.json id2label. Scores are a softmax over the labels, or a
sigmoid per classifyLabel for multi-classifyLabel models (problem_type), as in Hugging Face.
With -json, one line per text: {"text": "...", "labels": [{"label": ..., "score": ...}]}.`,
	DefaultModel: "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
}

// classifyLabel is one scored label of one text.
type classifyLabel struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// run is the whole program, callable from tests.
func runClassify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := classifyCommand.NewFlagSet()
	model := classifyCommand.ModelFlag(fs)
	threads := classifyCommand.ThreadsFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON Lines")
	topK := fs.Int("top-k", 1, "labels shown per text, best first (0 = all)")
	batchSize := fs.Int("batch-size", 32, "texts classified per forward pass")
	if ok, code := classifyCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if *topK < 0 {
		return classifyCommand.Failf(stderr, "-top-k must be 0 (all) or more, got %d", *topK)
	}
	if *batchSize < 1 {
		return classifyCommand.Failf(stderr, "-batch-size must be at least 1, got %d", *batchSize)
	}

	dir, err := cli.ResolveModel(ctx, *model)
	if err != nil {
		return classifyCommand.Fail(stderr, err)
	}
	clf, err := pipeline.NewTextClassifier(ctx, dir, &pipeline.Options{BatchSize: *batchSize, Load: arch.LoadOptions{Threads: *threads}})
	if err != nil {
		return classifyCommand.Fail(stderr, fmt.Errorf("loading %s: %w", dir, err))
	}
	defer clf.Close()
	if len(fs.Args()) == 0 && stdin == os.Stdin && cli.StdinIsTerminal() {
		fmt.Fprintln(stderr, "embrace classify: reading texts from stdin, one per line (Ctrl-D ends)")
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
			labels := make([]classifyLabel, len(scores))
			for j, s := range scores {
				labels[j] = classifyLabel{Label: s.Label, Score: s.Score}
			}
			if *asJSON {
				err = jl.Write(struct {
					Text   string          `json:"text"`
					Labels []classifyLabel `json:"labels"`
				}{batch[i], labels})
			} else {
				err = classifyPrintText(stdout, batch[i], labels)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return classifyCommand.Fail(stderr, err)
	}
	return cli.ExitOK
}

// classifyPrintText writes "LABEL (score)" pairs after the text, tab-separated so
// the output also cuts well with cut(1).
func classifyPrintText(w io.Writer, text string, labels []classifyLabel) error {
	var b strings.Builder
	b.WriteString(text)
	for _, l := range labels {
		fmt.Fprintf(&b, "\t%s (%.4f)", l.Label, l.Score)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
