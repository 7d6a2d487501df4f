// Command libloop is the baseline for embed-corpus's throughput: the plain
// library loop over the same JSONL input, with no Beam. It reads every
// record, embeds the texts in batches with pipeline.SentenceEmbedder on
// --workers goroutines, writes {"id", "vector"} lines, and prints the
// documents per second.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/embrace-go/embrace/pipeline"
)

func main() {
	input := flag.String("input", "", "JSONL file of {\"id\", \"text\"} records")
	output := flag.String("output", "", "JSONL file to write the vectors to")
	model := flag.String("model", "", "sentence-embedding model folder or Hub id")
	batch := flag.Int("batch_size", 32, "texts per Embed call")
	workers := flag.Int("workers", 2, "goroutines calling Embed")
	flag.Parse()
	if err := run(*input, *output, *model, *batch, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "libloop:", err)
		os.Exit(1)
	}
}

type record struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

func run(input, output, model string, batch, workers int) error {
	if input == "" || output == "" || model == "" || batch < 1 || workers < 1 {
		return fmt.Errorf("--input, --output and --model are required; --batch_size and --workers at least 1")
	}
	start := time.Now()
	ctx := context.Background()
	emb, err := pipeline.NewSentenceEmbedder(ctx, model, &pipeline.Options{BatchSize: batch})
	if err != nil {
		return err
	}
	defer emb.Close()
	f, err := os.Open(input)
	if err != nil {
		return err
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s: %w", input, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	out, err := os.Create(output)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	embedStart := time.Now()
	jobs := make(chan []record)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rs := range jobs {
				texts := make([]string, len(rs))
				for i, r := range rs {
					texts[i] = r.Text
				}
				vecs, err := emb.Embed(ctx, texts)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				for i, r := range rs {
					if err == nil {
						b, _ := json.Marshal(struct {
							ID     string    `json:"id"`
							Vector []float32 `json:"vector"`
						}{r.ID, vecs[i]})
						w.Write(append(b, '\n'))
					}
				}
				mu.Unlock()
			}
		}()
	}
	for lo := 0; lo < len(recs); lo += batch {
		jobs <- recs[lo:min(lo+batch, len(recs))]
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		out.Close()
		return firstErr
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	embedSecs := time.Since(embedStart).Seconds()
	total := time.Since(start).Seconds()
	fmt.Printf("libloop: %d docs, embed+write %.2fs (%.0f docs/s), whole run %.2fs (%.0f docs/s)\n",
		len(recs), embedSecs, float64(len(recs))/embedSecs, total, float64(len(recs))/total)
	return nil
}
