package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/embrace-go/embrace/tokenizer"
)

// The tokenize/* entries encode the non-empty lines of the shared bench
// corpus, repeated to 10 MB, with special tokens (../../shared/BENCH.md):
// one goroutine line by line at 1 thread, batches of 1024 lines otherwise.
func init() {
	registerTokenize("tokenize/wordpiece", "bert-base-uncased")
	registerTokenize("tokenize/bpe", "gpt2")
	registerTokenize("tokenize/llama3", "llama3-bpe")
	registerTokenize("tokenize/qwen2", "qwen2-bpe")
	registerTokenize("tokenize/unigram", "t5-unigram")
}

// tokenizeFixtures finds the shared fixture folder.
func tokenizeFixtures() (string, error) {
	if d := os.Getenv("EMBRACE_SHARED_FIXTURES"); d != "" {
		return d, nil
	}
	d := filepath.Join("..", "shared", "fixtures")
	if _, err := os.Stat(d); err != nil {
		return "", skipf("shared fixtures not found: set EMBRACE_SHARED_FIXTURES or place them at %s", d)
	}
	return d, nil
}

func registerTokenize(name, fixture string) {
	const target = 10 << 20
	register(name, "MB/s", func() (func() error, func(), error) {
		dir, err := tokenizeFixtures()
		if err != nil {
			return nil, nil, err
		}
		tk, err := tokenizer.FromDir(filepath.Join(dir, "tokenizers", fixture))
		if err != nil {
			if os.IsNotExist(err) {
				return nil, nil, skipf("tokenizer %s not found under %s", fixture, dir)
			}
			return nil, nil, err
		}
		data, err := os.ReadFile(filepath.Join(dir, "..", "bench", "corpus.txt"))
		if err != nil {
			return nil, nil, skipf("bench corpus not found: %v", err)
		}
		var base []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(l) != "" {
				base = append(base, l)
			}
		}
		if len(base) == 0 {
			return nil, nil, fmt.Errorf("bench corpus has no non-empty lines")
		}
		var lines []string
		for n := 0; n < target; {
			for _, l := range base {
				lines = append(lines, l)
				n += len(l)
				if n >= target {
					break
				}
			}
		}
		ctx := context.Background()
		op := func() error {
			if runtime.GOMAXPROCS(0) == 1 {
				for _, l := range lines {
					if _, err := tk.Encode(l, true); err != nil {
						return err
					}
				}
				return nil
			}
			for i := 0; i < len(lines); i += 1024 {
				if _, err := tk.EncodeBatch(ctx, lines[i:min(i+1024, len(lines))], true); err != nil {
					return err
				}
			}
			return nil
		}
		return op, func() { lines = nil }, nil
	}, func(sec float64) float64 { return float64(target) / 1e6 / sec })
}
