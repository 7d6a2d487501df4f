// Command embed-corpus embeds a corpus with Apache Beam: it reads JSONL
// ({"id": ..., "text": ...}) or plain text (one document a line, id
// FILE:LINE), embeds every text with a sentence-embedding model, and writes
// sharded JSONL ({"id": ..., "vector": [...]}) to
// PREFIX-SSSSS-of-NNNNN.jsonl, with the records it could not embed in
// PREFIX-dead-letters-SSSSS-of-NNNNN.jsonl.
//
//	embed-corpus --input 'corpus/*.jsonl' --output out/vectors --model sentence-transformers/all-MiniLM-L6-v2
//
// The runner is chosen by Beam's own flags: --runner=prism (the default, in
// this process), dataflow, flink or spark, with their endpoint and project
// flags. Local paths, gs:// and s3:// are read and written through Beam's
// filesystems.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"

	beam "github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/s3"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	ebeam "github.com/embrace-go/embrace/beam"
)

var (
	input       = flag.String("input", "", "files to read: a path or glob, local, gs:// or s3:// (required)")
	output      = flag.String("output", "", "output prefix: writes PREFIX-SSSSS-of-NNNNN.jsonl and PREFIX-dead-letters-* (required)")
	model       = flag.String("model", "", "sentence-embedding model: a folder on the workers or a Hub id org/name[@revision] (required)")
	format      = flag.String("format", "auto", "input format: auto (JSONL for .jsonl and .jsonl.gz files, text otherwise), jsonl or text")
	numShards   = flag.Int("num_shards", 4, "number of output files")
	batchSize   = flag.Int("batch_size", ebeam.DefaultBatchSize, "most texts in one forward pass")
	tokenBudget = flag.Int("token_budget", ebeam.DefaultTokenBudget, "most padded tokens (texts × longest) in one forward pass")
	truncate    = flag.Bool("truncate", true, "cut texts longer than the model takes; false sends them to the dead letters")
	maxLine     = flag.Int("max_line_bytes", 16<<20, "longest input line read; longer lines go to the dead letters")
	reshuffle   = flag.Bool("reshuffle", true, "redistribute the records after reading, so that one large file is embedded in parallel")
)

func main() {
	flag.Parse()
	beam.Init()
	ctx := context.Background()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "embed-corpus:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg := config{
		Input: *input, Output: *output, Format: *format, Shards: *numShards, MaxLine: *maxLine, Reshuffle: *reshuffle,
		Embed: ebeam.EmbedConfig{ModelConfig: ebeam.ModelConfig{Model: *model, BatchSize: *batchSize, TokenBudget: *tokenBudget, Truncate: *truncate}},
	}
	if err := cfg.check(ctx); err != nil {
		return err
	}
	p, err := build(cfg)
	if err != nil {
		return err
	}
	res, err := beamx.RunWithMetrics(ctx, p)
	if err != nil {
		return err
	}
	if res != nil {
		printCounters(res)
	}
	return nil
}

// printCounters reports the job's counters, summed over transforms.
func printCounters(res beam.PipelineResult) {
	sums := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "embrace" || c.Namespace() == "embed-corpus" {
			sums[c.Namespace()+"/"+c.Name()] += c.Result()
		}
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "%s: %d\n", n, sums[n])
	}
}

// checkInputExists fails early, before a job starts, when the input
// pattern matches nothing.
func checkInputExists(ctx context.Context, pattern string) error {
	fs, err := filesystem.New(ctx, pattern)
	if err != nil {
		return fmt.Errorf("--input %s: %w", pattern, err)
	}
	defer fs.Close()
	files, err := fs.List(ctx, pattern)
	if err != nil {
		return fmt.Errorf("--input %s: %w", pattern, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("--input %s: no file matches", pattern)
	}
	return nil
}
