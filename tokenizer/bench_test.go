package tokenizer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// BenchmarkLlama3 encodes the bench corpus line by line with llama3-bpe
// (the cl100k Split pattern, hand-matched) (MB/s).
func BenchmarkLlama3(b *testing.B) { benchEncode(b, "llama3-bpe") }

// BenchmarkQwen2 encodes the bench corpus line by line with qwen2-bpe.
func BenchmarkQwen2(b *testing.B) { benchEncode(b, "qwen2-bpe") }

// BenchmarkSplitEngines splits the bench corpus with the Llama 3 pattern
// through the hand matcher and regexp2, and with lookahead-free patterns
// through Go's regexp and regexp2 (MB/s): the figures behind the engine
// choice in split.go (newRegexFinder).
func BenchmarkSplitEngines(b *testing.B) {
	lines, n := benchLines(b)
	text := strings.Join(lines, "\n")
	n += len(lines) - 1
	type engine struct {
		name string
		f    regexFinder
	}
	hand, _ := newRegexFinder(cl100kPattern)
	general, err := newRegexp2Finder(cl100kPattern)
	if err != nil {
		b.Fatal(err)
	}
	engines := []engine{{"cl100k/hand", hand}, {"cl100k/regexp2", general}}
	for i, pat := range []string{
		// cl100k with the lookahead and \s spelled out for Go's regexp.
		`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\r\n\t \p{L}\p{N}]+[\r\n]*|[\r\n\t ]+`,
		` {2,}`,
		`\p{N}+`,
		`[\p{P}\$\+<=>\^~\|]+`,
	} {
		g, err := regexp.Compile(pat)
		if err != nil {
			b.Fatal(err)
		}
		r, err := newRegexp2Finder(pat)
		if err != nil {
			b.Fatal(err)
		}
		engines = append(engines, engine{fmt.Sprintf("pattern%d/go", i), goFinder{re: g, src: pat}}, engine{fmt.Sprintf("pattern%d/regexp2", i), r})
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(int64(n))
			var buf [][2]int
			for range b.N {
				var err error
				if buf, err = e.f.find(text, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnigram encodes the bench corpus line by line with t5-small's
// tokenizer (Precompiled normalizer, Unigram model; MB/s).
func BenchmarkUnigram(b *testing.B) { benchEncode(b, "t5-unigram") }

// BenchmarkUnigramXLMR encodes the corpus with the xlmr-unigram pipeline
// (Precompiled, Strip, Replace, Metaspace, Unigram).
func BenchmarkUnigramXLMR(b *testing.B) { benchEncode(b, "xlmr-unigram") }
