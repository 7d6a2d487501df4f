package pipeline

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// FuzzModelFolder loads whole model folders whose config.json,
// tokenizer.json and safetensors header are mutated, and runs the text
// classifier on them: whatever the files say, loading and running return
// (an error or a result) without a panic, and without allocating more than a
// bound. CI runs it for a bounded time (.ci/run).
func FuzzModelFolder(f *testing.F) {
	src := "testdata/bert-cls"
	config, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		f.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		f.Fatal(err)
	}
	weights, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		f.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(weights)
	header, data := weights[8:8+n], weights[8+n:]
	f.Add(config, tok, header)
	f.Add([]byte(`{"model_type":"bert","hidden_size":1099511627776}`), tok, header)
	f.Add(config, []byte(`{"padding":{"strategy":{"Fixed":16777216}}}`), header)
	f.Add(config, tok, []byte(`{"bert.embeddings.word_embeddings.weight":{"dtype":"F32","shape":[1099511627776,32],"data_offsets":[0,16]}}`))
	others := []string{"tokenizer_config.json", "special_tokens_map.json", "vocab.txt"}
	f.Fuzz(func(t *testing.T, config, tok, header []byte) {
		dir := t.TempDir()
		for _, name := range others {
			if b, err := os.ReadFile(filepath.Join(src, name)); err == nil {
				os.WriteFile(filepath.Join(dir, name), b, 0o644)
			}
		}
		os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644)
		os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644)
		w := make([]byte, 8, 8+len(header)+len(data))
		binary.LittleEndian.PutUint64(w, uint64(len(header)))
		w = append(append(w, header...), data...)
		os.WriteFile(filepath.Join(dir, "model.safetensors"), w, 0o644)

		// A hang is a failure too: the fuzzer saves the input.
		watchdog := time.AfterFunc(20*time.Second, func() {
			panic("one load and call took over 20 s")
		})
		defer watchdog.Stop()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := NewTextClassifier(context.Background(), dir, nil)
		if err == nil {
			c.Classify(context.Background(), []string{"a short text", "another one, a little longer"}, ClassifyOptions{})
			c.Close()
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 512<<20 {
			t.Fatalf("one load and call allocated %d MiB", grew>>20)
		}
	})
}
