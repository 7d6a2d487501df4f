package serve

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/safetensors"
)

// TestLoadMiniLMShape measures the batching gain on a model of MiniLM-L6's
// shape (6 layers, 384 wide, 12 heads, 1536 inner; random weights, the
// fixture's small vocabulary), where the model's work, not HTTP, dominates.
// It is a measurement, not a check, so it runs only when asked:
//
//	EMBRACE_SERVE_LOADTEST=2000 go test -run LoadMiniLMShape -v ./serve/
func TestLoadMiniLMShape(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EMBRACE_SERVE_LOADTEST"))
	if n <= 0 {
		t.Skip("set EMBRACE_SERVE_LOADTEST=<requests> to measure the batching gain on a MiniLM-L6-sized model")
	}
	fix := filepath.Join(fixtures(t), "models", "minilm-st")
	dir := t.TempDir()
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(fix, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeRandomEncoder(dir, 6, 384, 12, 1536, 1500, 512); err != nil {
		t.Fatal(err)
	}
	measure := func(batch int) loadResult {
		ctx, stop := context.WithCancel(context.Background())
		base, done := startRun(t, ctx, Options{Model: dir, MaxBatchSize: batch}, 30*time.Second)
		waitReady(t, base)
		c := loadClient(n)
		embedBurst(c, base, 32)
		r := embedBurst(c, base, n)
		c.CloseIdleConnections()
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if r.errs > 0 {
			t.Errorf("%d errors, first %s", r.errs, r.firstErr)
		}
		return r
	}
	batched := measure(0)
	unbatched := measure(1)

	// The library alone, batches of 64, same texts: what batching can reach.
	lib, err := pipeline.NewSentenceEmbedder(context.Background(), dir, &pipeline.Options{BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	texts := make([]string, n)
	for i := range texts {
		texts[i] = embedText(i)
	}
	t0 := time.Now()
	if _, err := lib.Embed(context.Background(), texts); err != nil {
		t.Fatal(err)
	}
	direct := float64(n) / time.Since(t0).Seconds()
	t.Logf("library alone, batches of 64: %.0f texts/s; the server reaches %.0f%% of it", direct, 100*batched.perSecond()/direct)
	t.Logf("MiniLM-L6 shape, dynamic batching: %s", batched)
	t.Logf("MiniLM-L6 shape, no batching:      %s", unbatched)
	t.Logf("batching gain: %.2fx throughput", batched.perSecond()/unbatched.perSecond())
}

// writeRandomEncoder writes config.json and model.safetensors of a BertModel
// with seeded random weights.
func writeRandomEncoder(dir string, layers, hidden, heads, inner, vocab, positions int) error {
	cfg, err := json.Marshal(map[string]any{
		"model_type": "bert", "architectures": []string{"BertModel"}, "vocab_size": vocab,
		"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
		"intermediate_size": inner, "hidden_act": "gelu", "max_position_embeddings": positions,
		"type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, 5))
	var ts []safetensors.TensorView
	tensor := func(name string, mean float64, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		b := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(mean+0.05*rng.NormFloat64())))
		}
		ts = append(ts, safetensors.TensorView{Name: name, DType: safetensors.F32, Shape: shape, Data: b})
	}
	dense := func(name string, in, out int) {
		tensor(name+".weight", 0, out, in)
		tensor(name+".bias", 0, out)
	}
	norm := func(name string) {
		tensor(name+".weight", 1, hidden)
		tensor(name+".bias", 0, hidden)
	}
	tensor("embeddings.word_embeddings.weight", 0, vocab, hidden)
	tensor("embeddings.position_embeddings.weight", 0, positions, hidden)
	tensor("embeddings.token_type_embeddings.weight", 0, 2, hidden)
	norm("embeddings.LayerNorm")
	for l := range layers {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		for _, q := range []string{"query", "key", "value"} {
			dense(p+"attention.self."+q, hidden, hidden)
		}
		dense(p+"attention.output.dense", hidden, hidden)
		norm(p + "attention.output.LayerNorm")
		dense(p+"intermediate.dense", hidden, inner)
		dense(p+"output.dense", inner, hidden)
		norm(p + "output.LayerNorm")
	}
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil)
}
