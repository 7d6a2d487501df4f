// "embrace ner" finds named entities (people, places, organisations, ...)
// with a token-classification model, like Hugging Face's ner pipeline.
//
//	embrace ner "Hugging Face is based in New York City."
//	embrace ner -aggregation none -json "Angela Merkel visited Paris."
//
// Run "embrace ner -h" for every flag.

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
)

var nerCommand = &cli.Command{
	Name:     "embrace ner",
	Summary:  "find named entities with a token-classification model",
	Synopsis: "[TEXT...]",
	Details: `Input: each argument is one text; without arguments, each non-blank line of
stdin is one text.

Output: per text, one row per entity: its nerLabel, score, the words and where
they are in the text (byte offsets; -chars for code points, as Python reports
them). -aggregation is Hugging Face's aggregation_strategy: none (one row per
token, labels like B-PER), simple (default: adjacent tokens of one nerEntity
grouped), first, average or max (whole words, the word's nerLabel picked from its
first token, the average scores or the best token).
With -json, one line per text: {"text": "...", "entities": [{"entity" or
"entity_group", "score", "word", "start", "end", "char_start", "char_end"}]}
(start/end in bytes, char_start/char_end in code points).`,
	DefaultModel: "dslim/bert-base-NER",
}

// nerEntity is one token (aggregation none) or entity group found in a text.
type nerEntity struct {
	Entity      string  `json:"entity,omitempty"`       // nerLabel of a token, with aggregation none
	EntityGroup string  `json:"entity_group,omitempty"` // nerLabel of a group, with any other aggregation
	Score       float64 `json:"score"`
	Index       *int    `json:"index,omitempty"` // token position, with aggregation none
	Word        string  `json:"word"`
	Start       int     `json:"start"` // byte offsets into the text
	End         int     `json:"end"`
	CharStart   int     `json:"char_start"` // code-point offsets into the text
	CharEnd     int     `json:"char_end"`
}

// nerFromPipeline converts a pipeline entity to the output shape, whose
// field names are Hugging Face's.
func nerFromPipeline(e pipeline.Entity, agg pipeline.Aggregation) nerEntity {
	out := nerEntity{Score: e.Score, Word: e.Word, Start: e.Start, End: e.End, CharStart: e.StartRune, CharEnd: e.EndRune}
	if agg == pipeline.AggregateNone {
		out.Entity = e.Label
		idx := e.Index
		out.Index = &idx
	} else {
		out.EntityGroup = e.Label
	}
	return out
}

// nerAggregations are the strategies the -aggregation flag accepts.
var nerAggregations = []pipeline.Aggregation{pipeline.AggregateNone, pipeline.AggregateSimple, pipeline.AggregateFirst, pipeline.AggregateAverage, pipeline.AggregateMax}

// run is the whole program, callable from tests.
func runNER(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := nerCommand.NewFlagSet()
	model := nerCommand.ModelFlag(fs)
	threads := nerCommand.ThreadsFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON Lines")
	chars := fs.Bool("chars", false, "show offsets in code points instead of bytes (text output)")
	agg := fs.String("aggregation", "simple", "how tokens are grouped into entities: none, simple, first, average or max")
	batchSize := fs.Int("batch-size", 16, "texts tagged per forward pass")
	if ok, code := nerCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	known := false
	for _, a := range nerAggregations {
		known = known || a == pipeline.Aggregation(*agg)
	}
	if !known {
		return nerCommand.Failf(stderr, "-aggregation %q is not one of none, simple, first, average, max", *agg)
	}
	if *batchSize < 1 {
		return nerCommand.Failf(stderr, "-batch-size must be at least 1, got %d", *batchSize)
	}

	dir, err := cli.ResolveModel(ctx, *model)
	if err != nil {
		return nerCommand.Fail(stderr, err)
	}
	tagger, err := pipeline.NewTokenClassifier(ctx, dir, &pipeline.Options{BatchSize: *batchSize, Load: arch.LoadOptions{Threads: *threads}})
	if err != nil {
		return nerCommand.Fail(stderr, fmt.Errorf("loading %s: %w", dir, err))
	}
	defer tagger.Close()
	if len(fs.Args()) == 0 && stdin == os.Stdin && cli.StdinIsTerminal() {
		fmt.Fprintln(stderr, "embrace ner: reading texts from stdin, one per line (Ctrl-D ends)")
	}

	jl := cli.NewJSONLines(stdout)
	n := 0
	err = cli.Batches(ctx, fs.Args(), stdin, *batchSize, func(batch []string) error {
		res, err := tagger.Classify(ctx, batch, pipeline.TokenOptions{Aggregation: pipeline.Aggregation(*agg)})
		if err != nil {
			return err
		}
		if len(res) != len(batch) {
			return fmt.Errorf("the model returned %d results for %d texts", len(res), len(batch))
		}
		for i, found := range res {
			ents := make([]nerEntity, len(found))
			for j, e := range found {
				ents[j] = nerFromPipeline(e, pipeline.Aggregation(*agg))
			}
			if *asJSON {
				err = jl.Write(struct {
					Text     string      `json:"text"`
					Entities []nerEntity `json:"entities"`
				}{batch[i], ents})
			} else {
				if n > 0 {
					fmt.Fprintln(stdout)
				}
				err = nerPrintText(stdout, batch[i], ents, *chars)
			}
			n++
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nerCommand.Fail(stderr, err)
	}
	return cli.ExitOK
}

// nerPrintText writes the text, then one aligned row per entity.
func nerPrintText(w io.Writer, text string, ents []nerEntity, chars bool) error {
	fmt.Fprintf(w, "%q: %d entities\n", text, len(ents))
	if len(ents) == 0 {
		return nil
	}
	unit := "bytes"
	if chars {
		unit = "chars"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  nerLabel\tscore\t%s\tword\n", unit)
	for _, e := range ents {
		lbl := e.EntityGroup
		if lbl == "" {
			lbl = e.Entity
		}
		s, en := e.Start, e.End
		if chars {
			s, en = e.CharStart, e.CharEnd
		}
		fmt.Fprintf(tw, "  %s\t%.4f\t%d-%d\t%s\n", lbl, e.Score, s, en, e.Word)
	}
	return tw.Flush()
}
