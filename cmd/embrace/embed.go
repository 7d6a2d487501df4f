// "embrace embed" computes sentence embeddings, as SentenceTransformer.encode
// does for sentence-transformers models (pooling and normalization read from
// the model folder), and optionally their cosine similarities.
//
//	embrace embed "The cat sits outside" "A man is playing guitar"
//	embrace embed -similarity "The cat sits outside" "A cat is outdoors"
//	cat sentences.txt | embrace embed -model path/to/model -json
//
// Run "embrace embed -h" for every flag.

package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
)

var embedCommand = &cli.Command{
	Name:     "embrace embed",
	Summary:  "compute sentence embeddings (and their cosine similarities)",
	Synopsis: "[TEXT...]",
	Details: `Input: each argument is one text; without arguments, each non-blank line of
stdin is one text. Texts are embedded in batches of -batch-size as they arrive.

Output: per text, its dimension and first values (all of them with -full).
With -similarity, the matrix of cosine similarities between all texts instead.
With -json, one line per text: {"text": "...", "embedding": [...]}; with
-json -similarity, one line {"texts": [...], "similarity": [[...], ...]}.

For sentence-transformers folders (modules.json) the pooling and normalization
are the model's own, so the numbers equal SentenceTransformer.encode.`,
	DefaultModel: "sentence-transformers/all-MiniLM-L6-v2",
}

// run is the whole program, callable from tests.
func runEmbed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := embedCommand.NewFlagSet()
	model := embedCommand.ModelFlag(fs)
	threads := embedCommand.ThreadsFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON Lines")
	similarity := fs.Bool("similarity", false, "print the cosine-similarity matrix of all inputs")
	full := fs.Bool("full", false, "print every value of each embedding (text output)")
	batchSize := fs.Int("batch-size", 32, "texts embedded per forward pass")
	if ok, code := embedCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if *batchSize < 1 {
		return embedCommand.Failf(stderr, "-batch-size must be at least 1, got %d", *batchSize)
	}

	dir, err := cli.ResolveModel(ctx, *model)
	if err != nil {
		return embedCommand.Fail(stderr, err)
	}
	emb, err := pipeline.NewSentenceEmbedder(ctx, dir, &pipeline.Options{BatchSize: *batchSize, Load: arch.LoadOptions{Threads: *threads}})
	if err != nil {
		return embedCommand.Fail(stderr, fmt.Errorf("loading %s: %w", dir, err))
	}
	defer emb.Close()
	if len(fs.Args()) == 0 && stdin == os.Stdin && cli.StdinIsTerminal() {
		fmt.Fprintln(stderr, "embrace embed: reading texts from stdin, one per line (Ctrl-D ends)")
	}

	out := &embedPrinter{w: stdout, json: cli.NewJSONLines(stdout), asJSON: *asJSON, full: *full}
	var (
		texts   []string // all texts, kept only for -similarity
		vectors [][]float32
	)
	err = cli.Batches(ctx, fs.Args(), stdin, *batchSize, func(batch []string) error {
		vs, err := emb.Embed(ctx, batch)
		if err != nil {
			return err
		}
		if len(vs) != len(batch) {
			return fmt.Errorf("the model returned %d embeddings for %d texts", len(vs), len(batch))
		}
		if *similarity {
			texts = append(texts, batch...)
			vectors = append(vectors, vs...)
			return nil
		}
		for i, v := range vs {
			if err := out.embedding(batch[i], v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && *similarity {
		err = out.similarity(texts, vectors)
	}
	if err != nil {
		return embedCommand.Fail(stderr, err)
	}
	return cli.ExitOK
}

// embedPrinter renders embeddings as text or JSON Lines.
type embedPrinter struct {
	w      io.Writer
	json   *cli.JSONLines
	asJSON bool
	full   bool
}

// shown is how many leading values the text output prints without -full.
const shown = 6

func (p *embedPrinter) embedding(text string, v []float32) error {
	if p.asJSON {
		return p.json.Write(struct {
			Text      string    `json:"text"`
			Embedding []float32 `json:"embedding"`
		}{text, v})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q (%d dims): [", text, len(v))
	for i, x := range v {
		if !p.full && i == shown && len(v) > shown {
			b.WriteString(" ...")
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.6f", x)
	}
	b.WriteString("]\n")
	_, err := io.WriteString(p.w, b.String())
	return err
}

func (p *embedPrinter) similarity(texts []string, vs [][]float32) error {
	m := make([][]float64, len(vs))
	for i := range vs {
		m[i] = make([]float64, len(vs))
		for j := range vs {
			c, err := cosine(vs[i], vs[j])
			if err != nil {
				return fmt.Errorf("texts %d and %d: %w", i+1, j+1, err)
			}
			m[i][j] = c
		}
	}
	if p.asJSON {
		if texts == nil {
			texts = []string{}
		}
		return p.json.Write(struct {
			Texts      []string    `json:"texts"`
			Similarity [][]float64 `json:"similarity"`
		}{texts, m})
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for j := range texts {
		fmt.Fprintf(tw, "[%d]\t", j+1)
	}
	fmt.Fprintln(tw)
	for i := range texts {
		fmt.Fprintf(tw, "[%d]\t", i+1)
		for j := range texts {
			fmt.Fprintf(tw, "%.4f\t", m[i][j])
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, t := range texts {
		fmt.Fprintf(p.w, "[%d] %s\n", i+1, t)
	}
	return nil
}

// cosine is the cosine similarity of a and b, computed in float64.
func cosine(a, b []float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("embeddings of different sizes %d and %d", len(a), len(b))
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0, nil
	}
	return dot / math.Sqrt(na*nb), nil
}
