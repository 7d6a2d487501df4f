package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/embrace-go/embrace/safetensors"
)

// copyDir copies a fixture folder (files and one level of subfolders).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The classic sentence-transformers config form (pooling_mode_*_tokens
// flags, word_embedding_dimension, max_seq_length) gives the same
// embeddings, and max_seq_length truncates.
func TestSentenceEmbeddingsClassicConfig(t *testing.T) {
	src, ref := readRef(t, "minilm-st")
	want := readEmbeddings(t, src)
	dir := copyDir(t, src)
	writeJSON(t, filepath.Join(dir, "1_Pooling", "config.json"), map[string]any{
		"word_embedding_dimension": len(want[0]), "pooling_mode_cls_token": false,
		"pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
		"pooling_mode_mean_sqrt_len_tokens": false,
	})
	writeJSON(t, filepath.Join(dir, "modules.json"), []map[string]any{
		{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
		{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
		{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
	})
	writeJSON(t, filepath.Join(dir, "sentence_bert_config.json"), map[string]any{"max_seq_length": 256, "do_lower_case": false})
	st, err := NewSentenceEmbedder(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Embed(context.Background(), ref.Texts[:len(want)])
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	compareEmbeddings(t, got, want)

	// max_seq_length 5 keeps [CLS] + 3 tokens + [SEP]: texts that differ
	// only after that embed alike.
	writeJSON(t, filepath.Join(dir, "sentence_bert_config.json"), map[string]any{"max_seq_length": 5})
	st, err = NewSentenceEmbedder(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.MaxSeqLength() != 5 {
		t.Fatalf("max_seq_length %d", st.MaxSeqLength())
	}
	embs, err := st.Embed(context.Background(), []string{"the quick brown fox jumps", "the quick brown dog sleeps all day", "the"})
	if err != nil {
		t.Fatal(err)
	}
	compareEmbeddings(t, embs[1:2], embs[0:1])
	if math.Abs(float64(embs[0][0]-embs[2][0])) < 1e-7 {
		t.Error("a shorter text embedded like the truncated ones")
	}
}

// Each pooling mode matches its definition over the token embeddings.
func TestPoolingModes(t *testing.T) {
	src := filepath.Join("testdata", "minilm-st")
	fe, err := NewFeatureExtractor(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	texts := []string{"Hello world!", "A somewhat longer sentence about pooling."}
	feats, err := fe.Extract(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	d := len(feats[0][0])
	expect := func(mode string, toks [][]float32) []float32 {
		out := make([]float32, d)
		for j := 0; j < d; j++ {
			var v float64
			switch mode {
			case "cls":
				v = float64(toks[0][j])
			case "max":
				v = math.Inf(-1)
				for _, tk := range toks {
					v = max(v, float64(tk[j]))
				}
			case "weightedmean":
				var ws float64
				for t, tk := range toks {
					v += float64(t+1) * float64(tk[j])
					ws += float64(t + 1)
				}
				v /= ws
			case "lasttoken":
				v = float64(toks[len(toks)-1][j])
			case "mean", "mean_sqrt_len_tokens":
				for _, tk := range toks {
					v += float64(tk[j])
				}
				if mode == "mean" {
					v /= float64(len(toks))
				} else {
					v /= math.Sqrt(float64(len(toks)))
				}
			}
			out[j] = float32(v)
		}
		return out
	}
	for _, mode := range []string{"cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"} {
		t.Run(mode, func(t *testing.T) {
			dir := copyDir(t, src)
			writeJSON(t, filepath.Join(dir, "1_Pooling", "config.json"), map[string]any{"embedding_dimension": d, "pooling_mode": mode})
			// No Normalize module.
			writeJSON(t, filepath.Join(dir, "modules.json"), []map[string]any{
				{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
				{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
			})
			st, err := NewSentenceEmbedder(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			got, err := st.Embed(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			want := [][]float32{expect(mode, feats[0]), expect(mode, feats[1])}
			compareEmbeddings(t, got, want)
		})
	}
}

// Broken sentence-transformers and tokenizer files give errors naming them.
func TestBrokenPipelineFolders(t *testing.T) {
	src := filepath.Join("testdata", "minilm-st")
	cases := []struct {
		name  string
		edit  func(dir string)
		wants []string
	}{
		{"tokenizer.json not JSON", func(d string) {
			os.WriteFile(filepath.Join(d, "tokenizer.json"), []byte("{oops"), 0o644)
		}, []string{"tokenizer.json"}},
		{"tokenizer.json names an unknown normalizer", func(d string) {
			data, _ := os.ReadFile(filepath.Join(d, "tokenizer.json"))
			var tj map[string]any
			json.Unmarshal(data, &tj)
			tj["normalizer"] = map[string]any{"type": "NoSuchNormalizer"}
			writeJSON(t, filepath.Join(d, "tokenizer.json"), tj)
		}, []string{"NoSuchNormalizer"}},
		{"modules.json not JSON", func(d string) {
			os.WriteFile(filepath.Join(d, "modules.json"), []byte("[{"), 0o644)
		}, []string{"modules.json"}},
		{"unknown module", func(d string) {
			writeJSON(t, filepath.Join(d, "modules.json"), []map[string]any{
				{"path": "", "type": "sentence_transformers.models.Transformer"},
				{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
				{"path": "2_CNN", "type": "sentence_transformers.models.CNN"},
			})
		}, []string{"unsupported", "CNN"}},
		{"Dense folder missing", func(d string) {
			writeJSON(t, filepath.Join(d, "modules.json"), []map[string]any{
				{"path": "", "type": "sentence_transformers.models.Transformer"},
				{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
				{"path": "2_Dense", "type": "sentence_transformers.models.Dense"},
			})
		}, []string{"2_Dense", "config.json"}},
		{"Dense before pooling", func(d string) {
			writeJSON(t, filepath.Join(d, "modules.json"), []map[string]any{
				{"path": "", "type": "sentence_transformers.models.Transformer"},
				{"path": "2_Dense", "type": "sentence_transformers.models.Dense"},
			})
		}, []string{"unsupported", "before the pooling"}},
		{"unknown pooling mode", func(d string) {
			writeJSON(t, filepath.Join(d, "1_Pooling", "config.json"), map[string]any{"pooling_mode": "weird"})
		}, []string{"1_Pooling", "weird"}},
		{"pooling width disagrees", func(d string) {
			writeJSON(t, filepath.Join(d, "1_Pooling", "config.json"), map[string]any{"pooling_mode": "mean", "embedding_dimension": 7})
		}, []string{"7"}},
		{"not a folder", func(d string) { os.RemoveAll(d) }, []string{"neither an existing folder nor a Hub repository id"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, src)
			c.edit(dir)
			st, err := NewSentenceEmbedder(context.Background(), dir, nil)
			if err == nil {
				st.Close()
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// A pipeline refuses a model with the wrong head.
	if _, err := NewQuestionAnswerer(context.Background(), filepath.Join("testdata", "bert-cls"), nil); err == nil || !strings.Contains(err.Error(), "sequence-classification") {
		t.Errorf("QA on a classifier: %v", err)
	}
}

// One pipeline serves many goroutines.
func TestConcurrentPipelines(t *testing.T) {
	tc, err := NewTokenClassifier(context.Background(), filepath.Join("testdata", "bert-ner"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	text := []string{"Clem Delangue founded Hugging Face in New York."}
	want, err := tc.Classify(context.Background(), text, TokenOptions{Aggregation: AggregateFirst})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := tc.Classify(context.Background(), text, TokenOptions{Aggregation: AggregateFirst})
			if err != nil {
				errs <- err.Error()
				return
			}
			if len(got[0]) != len(want[0]) || got[0][0].Word != want[0][0].Word {
				errs <- "different result"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tc.Classify(ctx, text, TokenOptions{}); err == nil {
		t.Error("cancelled context gave no error")
	}
}

// A Dense module after pooling maps the pooled vector through its linear
// layer and activation before Normalize.
func TestSentenceDenseModule(t *testing.T) {
	src := filepath.Join("testdata", "minilm-st")
	fe, err := NewFeatureExtractor(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	texts := []string{"Hello world!", "Dense layers project embeddings."}
	feats, err := fe.Extract(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	d, out := len(feats[0][0]), 8
	w := make([]float32, out*d)
	b := make([]float32, out)
	for i := range w {
		w[i] = float32(math.Sin(float64(i))) * 0.3
	}
	for i := range b {
		b[i] = float32(i) * 0.01
	}
	dir := copyDir(t, src)
	os.MkdirAll(filepath.Join(dir, "2_Dense"), 0o755)
	writeJSON(t, filepath.Join(dir, "2_Dense", "config.json"), map[string]any{
		"in_features": d, "out_features": out, "bias": true, "activation_function": "torch.nn.modules.activation.Tanh"})
	err = safetensors.WriteFile(filepath.Join(dir, "2_Dense", "model.safetensors"), []safetensors.TensorView{
		{Name: "linear.weight", DType: safetensors.F32, Shape: []int{out, d}, Data: f32bytes(w)},
		{Name: "linear.bias", DType: safetensors.F32, Shape: []int{out}, Data: f32bytes(b)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(dir, "modules.json"), []map[string]any{
		{"path": "", "type": "sentence_transformers.models.Transformer"},
		{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
		{"path": "2_Dense", "type": "sentence_transformers.models.Dense"},
		{"path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
	})
	st, err := NewSentenceEmbedder(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Dim() != out {
		t.Fatalf("Dim %d, want %d", st.Dim(), out)
	}
	got, err := st.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]float32
	for _, toks := range feats {
		mean := make([]float64, d)
		for _, tk := range toks {
			for j, v := range tk {
				mean[j] += float64(v) / float64(len(toks))
			}
		}
		y := make([]float64, out)
		var ss float64
		for o := range y {
			s := float64(b[o])
			for j := range mean {
				s += float64(w[o*d+j]) * mean[j]
			}
			y[o] = math.Tanh(s)
			ss += y[o] * y[o]
		}
		row := make([]float32, out)
		for o := range y {
			row[o] = float32(y[o] / math.Sqrt(ss))
		}
		want = append(want, row)
	}
	compareEmbeddings(t, got, want)
}

func f32bytes(xs []float32) []byte {
	out := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}
