package tokenizer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchLines returns the non-empty lines of the shared bench corpus.
func benchLines(b *testing.B) ([]string, int) {
	s := sharedFixtures()
	if s == "" {
		b.Skip(skipMsg)
	}
	data, err := os.ReadFile(filepath.Join(s, "..", "bench", "corpus.txt"))
	if err != nil {
		b.Skip("bench corpus not found: " + err.Error())
	}
	var lines []string
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
			n += len(l)
		}
	}
	return lines, n
}

func benchTokenizer(b *testing.B, name string) *Tokenizer {
	s := sharedFixtures()
	if s == "" {
		b.Skip(skipMsg)
	}
	tk, err := FromFile(filepath.Join(s, "tokenizers", name, "tokenizer.json"))
	if err != nil {
		b.Fatal(err)
	}
	return tk
}

func benchEncode(b *testing.B, name string) {
	tk := benchTokenizer(b, name)
	lines, n := benchLines(b)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, l := range lines {
			if _, err := tk.Encode(l, true); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchBatch(b *testing.B, name string) {
	tk := benchTokenizer(b, name)
	lines, n := benchLines(b)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := 0; i < len(lines); i += 1024 {
			if _, err := tk.EncodeBatch(context.Background(), lines[i:min(i+1024, len(lines))], true); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkWordPiece encodes the bench corpus line by line with
// bert-base-uncased (MB/s).
func BenchmarkWordPiece(b *testing.B) { benchEncode(b, "bert-base-uncased") }

// BenchmarkBPE encodes the bench corpus line by line with GPT-2 (MB/s).
func BenchmarkBPE(b *testing.B) { benchEncode(b, "gpt2") }

// BenchmarkWordPieceBatch encodes the corpus in batches of 1024 lines.
func BenchmarkWordPieceBatch(b *testing.B) { benchBatch(b, "bert-base-uncased") }

// BenchmarkBPEBatch encodes the corpus in batches of 1024 lines.
func BenchmarkBPEBatch(b *testing.B) { benchBatch(b, "gpt2") }

// BenchmarkUnigram encodes the bench corpus line by line with t5-small's
// tokenizer (Precompiled normalizer, Unigram model; MB/s).
func BenchmarkUnigram(b *testing.B) { benchEncode(b, "t5-unigram") }

// BenchmarkUnigramXLMR encodes the corpus with the xlmr-unigram pipeline
// (Precompiled, Strip, Replace, Metaspace, Unigram).
func BenchmarkUnigramXLMR(b *testing.B) { benchEncode(b, "xlmr-unigram") }
