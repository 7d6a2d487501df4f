package bert

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/embrace-go/embrace/internal/encodertest"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// copyFixture copies a fixture model into a temporary folder, passing its
// config through editConfig and each tensor name through rename (an empty
// name drops the tensor). extra tensors are added.
func copyFixture(t *testing.T, name string, editConfig func(map[string]any), rename func(string) string, extra ...safetensors.TensorView) string {
	t.Helper()
	src := filepath.Join(encodertest.FixturesDir(t), "models", name)
	dst := t.TempDir()
	data, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if editConfig != nil {
		editConfig(cfg)
	}
	if data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.OpenCheckpoint(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var views []safetensors.TensorView
	for _, n := range ck.Names() {
		v, err := ck.Tensor(n)
		if err != nil {
			t.Fatal(err)
		}
		if rename != nil {
			n = rename(n)
		}
		if n == "" {
			continue
		}
		v.Name = n
		v.Data = append([]byte(nil), v.Data...)
		views = append(views, v)
	}
	views = append(views, extra...)
	if err := safetensors.WriteFile(filepath.Join(dst, "model.safetensors"), views, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dst
}

// referenceRun runs the fixture's "single" batch through the model in dir
// and returns the named outputs.
func referenceRun(t *testing.T, fixture, dir string) (map[string][]float32, *arch.EncoderInput) {
	t.Helper()
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ref, err := safetensors.Open(filepath.Join(encodertest.FixturesDir(t), "models", fixture, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	in := encodertest.ReadInput(t, ref, "single")
	out, err := m.Encode(context.Background(), in, arch.EncodeOptions{HiddenStates: true})
	if err != nil {
		t.Fatal(err)
	}
	res := map[string][]float32{}
	for k, v := range out.Named() {
		res[k] = append([]float32(nil), v.Float32s()...)
	}
	return res, in
}

func sameOutputs(t *testing.T, a, b map[string][]float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d outputs vs %d", len(a), len(b))
	}
	for k, x := range a {
		y := b[k]
		if len(x) != len(y) {
			t.Fatalf("%s: %d vs %d values", k, len(x), len(y))
		}
		for i := range x {
			if x[i] != y[i] {
				t.Fatalf("%s[%d]: %v vs %v", k, i, x[i], y[i])
			}
		}
	}
}

// The loader accepts names without the base prefix, legacy gamma/beta
// LayerNorm names and an explicit (untied) decoder, giving the same model.
func TestWeightNameVariants(t *testing.T) {
	base, _ := referenceRun(t, "bert", filepath.Join(encodertest.FixturesDir(t), "models", "bert"))
	t.Run("legacy gamma/beta", func(t *testing.T) {
		dir := copyFixture(t, "bert", nil, func(n string) string {
			if strings.Contains(n, "LayerNorm.") {
				n = strings.Replace(n, "LayerNorm.weight", "LayerNorm.gamma", 1)
				n = strings.Replace(n, "LayerNorm.bias", "LayerNorm.beta", 1)
			}
			return n
		})
		got, _ := referenceRun(t, "bert", dir)
		sameOutputs(t, base, got)
	})
	t.Run("explicit decoder, untied", func(t *testing.T) {
		ck, err := safetensors.OpenCheckpoint(filepath.Join(encodertest.FixturesDir(t), "models", "bert"))
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		w, _ := ck.Tensor("bert.embeddings.word_embeddings.weight")
		w.Name = "cls.predictions.decoder.weight"
		w.Data = append([]byte(nil), w.Data...)
		dir := copyFixture(t, "bert", func(c map[string]any) { c["tie_word_embeddings"] = false }, nil, w)
		got, _ := referenceRun(t, "bert", dir)
		sameOutputs(t, base, got)
	})
	t.Run("no base prefix", func(t *testing.T) {
		// Some checkpoints (sentence-transformers' BertModel) carry no
		// "bert." prefix on the encoder's weights.
		dir := copyFixture(t, "bert", nil, func(n string) string { return strings.TrimPrefix(n, "bert.") })
		got, _ := referenceRun(t, "bert", dir)
		sameOutputs(t, base, got)
	})
}

// A broken folder gives an error naming the file and the problem, never a
// panic or a silently wrong model.
func TestBrokenFolders(t *testing.T) {
	encodertest.FixturesDir(t)
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	cases := []struct {
		name string
		dir  func(t *testing.T) string
		want []string // substrings of the error
	}{
		{"config not JSON", func(t *testing.T) string {
			d := copyFixture(t, "bert-cls", nil, nil)
			os.WriteFile(filepath.Join(d, "config.json"), []byte("{not json"), 0o644)
			return d
		}, []string{"config.json", "not valid JSON"}},
		{"no config", func(t *testing.T) string {
			d := copyFixture(t, "bert-cls", nil, nil)
			os.Remove(filepath.Join(d, "config.json"))
			return d
		}, []string{"config.json"}},
		{"unknown model_type", func(t *testing.T) string {
			return copyFixture(t, "bert-cls", set("model_type", "llama"), nil)
		}, []string{"config.json", "unsupported", "llama"}},
		{"unknown architecture", func(t *testing.T) string {
			return copyFixture(t, "bert-cls", set("architectures", []string{"BertForMultipleChoice"}), nil)
		}, []string{"config.json", "unsupported", "BertForMultipleChoice"}},
		{"heads do not divide hidden", func(t *testing.T) string {
			return copyFixture(t, "bert-cls", set("num_attention_heads", 5), nil)
		}, []string{"config.json", "not divisible", "5"}},
		{"unknown activation", func(t *testing.T) string {
			return copyFixture(t, "bert-cls", set("hidden_act", "mish"), nil)
		}, []string{"config.json", "mish"}},
		{"missing tensor", func(t *testing.T) string {
			return copyFixture(t, "bert-cls", nil, func(n string) string {
				if n == "bert.encoder.layer.1.output.dense.weight" {
					return ""
				}
				return n
			})
		}, []string{"missing tensor", "bert.encoder.layer.1.output.dense.weight"}},
		{"shape disagrees with config", func(t *testing.T) string {
			return copyFixture(t, "bert-cls", set("intermediate_size", 40), nil)
		}, []string{"intermediate.dense.weight", "shape", "40"}},
		{"labels disagree with classifier", func(t *testing.T) string {
			return copyFixture(t, "bert-cls", set("id2label", map[string]string{"0": "a", "1": "b"}), nil)
		}, []string{"classifier.weight", "shape"}},
		{"untied decoder missing", func(t *testing.T) string {
			return copyFixture(t, "bert-mlm", set("tie_word_embeddings", false), nil)
		}, []string{"cls.predictions.decoder.weight", "tie_word_embeddings"}},
		{"only pytorch_model.bin", func(t *testing.T) string {
			d := copyFixture(t, "bert-cls", nil, nil)
			os.Remove(filepath.Join(d, "model.safetensors"))
			os.WriteFile(filepath.Join(d, "pytorch_model.bin"), []byte("PK"), 0o644)
			return d
		}, []string{"pytorch_model.bin"}},
		{"corrupt safetensors", func(t *testing.T) string {
			d := copyFixture(t, "bert-cls", nil, nil)
			os.WriteFile(filepath.Join(d, "model.safetensors"), []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":"), 0o644)
			return d
		}, []string{"model.safetensors"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			m, err := Load(dir)
			if err == nil {
				m.Close()
				t.Fatal("loaded a broken folder")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Padding a sequence never changes the outputs at its real positions.
func TestPaddingInvariance(t *testing.T) {
	for _, fixture := range []string{"bert", "roberta-cls", "distilbert-cls"} {
		t.Run(fixture, func(t *testing.T) {
			m, err := Load(filepath.Join(encodertest.FixturesDir(t), "models", fixture))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx := context.Background()
			cfg := m.Config
			ids := []int{5, 17, 33, 99, 150, 7, 12}
			if cfg.Family == RoBERTa {
				ids = []int{0, 17, 33, 99, 150, 7, 2}
			}
			alone, err := m.Encode(ctx, &arch.EncoderInput{Batch: 1, Seq: len(ids), InputIDs: ids}, arch.EncodeOptions{HiddenStates: true})
			if err != nil {
				t.Fatal(err)
			}
			// The same sequence second in a batch, padded on the right to 12.
			seq := 12
			in := &arch.EncoderInput{Batch: 2, Seq: seq, InputIDs: make([]int, 2*seq), AttentionMask: make([]int, 2*seq)}
			for j := 0; j < seq; j++ {
				in.InputIDs[j], in.AttentionMask[j] = 20+j, 1
				in.InputIDs[seq+j] = cfg.PadTokenID
			}
			for j, id := range ids {
				in.InputIDs[seq+j], in.AttentionMask[seq+j] = id, 1
			}
			padded, err := m.Encode(ctx, in, arch.EncodeOptions{HiddenStates: true})
			if err != nil {
				t.Fatal(err)
			}
			d := cfg.HiddenSize
			for l := range alone.HiddenStates {
				a, p := alone.HiddenStates[l].Float32s(), padded.HiddenStates[l].Float32s()
				for j := 0; j < len(ids)*d; j++ {
					if diff := math.Abs(float64(a[j] - p[seq*d+j])); diff > 1e-5 {
						t.Fatalf("hidden_states.%d differs at %d by %g", l, j, diff)
					}
				}
			}
			if alone.Logits != nil && alone.Logits.Rank() == 2 {
				a, p := alone.Logits.Float32s(), padded.Logits.Float32s()
				n := len(a)
				for j := range a {
					if diff := math.Abs(float64(a[j] - p[n+j])); diff > 1e-5 {
						t.Fatalf("logits differ at %d by %g", j, diff)
					}
				}
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	m, err := Load(filepath.Join(encodertest.FixturesDir(t), "models", "bert"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	long := m.Config.MaxPositionEmbeddings + 1
	cases := []struct {
		name string
		in   *arch.EncoderInput
		want string
	}{
		{"too long", &arch.EncoderInput{Batch: 1, Seq: long, InputIDs: make([]int, long)}, "max_position_embeddings"},
		{"id outside vocab", &arch.EncoderInput{Batch: 1, Seq: 2, InputIDs: []int{1, m.Config.VocabSize}}, "vocabulary"},
		{"negative id", &arch.EncoderInput{Batch: 1, Seq: 2, InputIDs: []int{-1, 3}}, "vocabulary"},
		{"short ids", &arch.EncoderInput{Batch: 2, Seq: 2, InputIDs: []int{1, 2, 3}}, "input ids"},
		{"bad mask", &arch.EncoderInput{Batch: 1, Seq: 2, InputIDs: []int{1, 2}, AttentionMask: []int{1, 2}}, "attention mask"},
		{"bad type id", &arch.EncoderInput{Batch: 1, Seq: 2, InputIDs: []int{1, 2}, TokenTypeIDs: []int{0, 2}}, "token type"},
		{"empty", &arch.EncoderInput{}, "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Encode(context.Background(), c.in, arch.EncodeOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Encode(ctx, &arch.EncoderInput{Batch: 1, Seq: 2, InputIDs: []int{1, 2}}, arch.EncodeOptions{}); err == nil {
		t.Fatal("a cancelled context did not stop the forward pass")
	}
}

// RoBERTa numbers positions from padding_idx+1 over non-pad tokens only.
func TestRobertaPositions(t *testing.T) {
	e := &Encoder{Config: &Config{Family: RoBERTa, PadTokenID: 1}}
	got := e.positionIDs(&arch.EncoderInput{Batch: 2, Seq: 4, InputIDs: []int{0, 5, 2, 1, 1, 0, 5, 2}}, make([]int, 8))
	want := []int{2, 3, 4, 1, 1, 2, 3, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("positions %v, want %v", got, want)
		}
	}
}

// One model serves many goroutines at once with identical results.
func TestConcurrentForward(t *testing.T) {
	m, err := Load(filepath.Join(encodertest.FixturesDir(t), "models", "bert-cls"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	in := &arch.EncoderInput{Batch: 1, Seq: 6, InputIDs: []int{2, 40, 41, 42, 43, 3}}
	want, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
			if err != nil {
				errs <- err.Error()
				return
			}
			for i, v := range out.Logits.Float32s() {
				if v != want.Logits.Float32s()[i] {
					errs <- "different logits"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
