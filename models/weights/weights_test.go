package weights_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/models/bert"
	"github.com/embrace-go/embrace/models/gpt2"
	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tokenizer"
)

// memSource is an in-memory Source of float32 tensors.
type memSource map[string]safetensors.TensorView

func (m memSource) Tensor(name string) (safetensors.TensorView, error) {
	v, ok := m[name]
	if !ok {
		return v, fmt.Errorf("no tensor %q", name)
	}
	return v, nil
}

func (m memSource) Has(name string) bool { _, ok := m[name]; return ok }

func (m memSource) add(name string, shape ...int) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	b := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i%7)-3))
	}
	m[name] = safetensors.TensorView{Name: name, DType: safetensors.F32, Shape: shape, Data: b}
}

// TestLoaderOptions checks which precision the loader gives Linear layers
// and LM heads under each option, through WithOptions on the source or on
// the loader.
func TestLoaderOptions(t *testing.T) {
	src := memSource{}
	src.add("l.weight", 5, 40)
	src.add("l.bias", 5)
	src.add("c.weight", 40, 5)
	src.add("c.bias", 5)
	cases := []struct {
		opt         arch.LoadOptions
		layer, head nn.Precision
	}{
		{arch.LoadOptions{}, nn.PrecisionDefault, nn.PrecisionDefault},
		{arch.LoadOptions{Quantize: arch.QuantizeQ8}, nn.PrecisionQ8, nn.PrecisionQ8},
		{arch.LoadOptions{Quantize: arch.QuantizeQ8, KeepHead: true}, nn.PrecisionQ8, nn.PrecisionDefault},
		{arch.LoadOptions{Quantize: arch.QuantizeQ8, KeepHead: true, Compute: arch.ComputeBF16}, nn.PrecisionQ8, nn.PrecisionBF16},
		{arch.LoadOptions{Compute: arch.ComputeBF16}, nn.PrecisionBF16, nn.PrecisionBF16},
	}
	for _, c := range cases {
		for _, l := range []*weights.Loader{
			weights.New(weights.WithOptions(weights.WithOptions(src, arch.LoadOptions{Quantize: "x"}), c.opt), "mem"),
			weights.New(src, "mem").WithOptions(c.opt),
		} {
			if l.Options() != c.opt {
				t.Fatalf("%+v: loader options %+v", c.opt, l.Options())
			}
			lin, err := l.Linear("l", 40, 5, true)
			if err != nil {
				t.Fatal(err)
			}
			conv, err := l.Conv1D("c", 40, 5)
			if err != nil {
				t.Fatal(err)
			}
			un, err := l.UnpackedLinear("l", 40, 5, false)
			if err != nil {
				t.Fatal(err)
			}
			head, err := l.Head(lin.W)
			if err != nil {
				t.Fatal(err)
			}
			if lin.Precision() != c.layer || conv.Precision() != c.layer || un.Precision() != c.layer || head.Precision() != c.head {
				t.Fatalf("%+v: linear %v, conv1d %v, unpacked %v, head %v; want layers %v, head %v",
					c.opt, lin.Precision(), conv.Precision(), un.Precision(), head.Precision(), c.layer, c.head)
			}
		}
	}
	for _, bad := range []arch.LoadOptions{{Quantize: "q4"}, {Compute: "fp8"}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
	if err := (arch.LoadOptions{Quantize: arch.QuantizeQ8, Compute: arch.ComputeBF16}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestMiniLMReducedPrecision encodes sentences with the MiniLM-shaped
// sentence-transformers fixture (mean pooling, then normalization) loaded
// with each reduced precision and compares the embeddings with the default
// load's: cosine ≥ 0.999 for q8, ≥ 0.9999 for bf16 compute.
func TestMiniLMReducedPrecision(t *testing.T) {
	dir := filepath.Join("..", "..", "pipeline", "testdata", "minilm-st")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("fixture %s absent: %v", dir, err)
	}
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := hfdir.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	sentences := []string{
		"The quick brown fox jumps over the lazy dog.",
		"A man is playing a guitar on the street.",
		"Reduced precision should not change what a sentence means.",
		"hello",
	}
	embed := func(opt arch.LoadOptions) [][]float64 {
		m, err := bert.Arch().Load(f, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		enc := m.(arch.Encoder)
		var out [][]float64
		for _, s := range sentences {
			e, err := tok.Encode(s, true)
			if err != nil {
				t.Fatal(err)
			}
			o, err := enc.Encode(context.Background(), &arch.EncoderInput{Batch: 1, Seq: len(e.IDs), InputIDs: e.IDs}, arch.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			h := o.LastHiddenState.Float32s()
			d := len(h) / len(e.IDs)
			v := make([]float64, d)
			for i := 0; i < len(e.IDs); i++ {
				for j := range v {
					v[j] += float64(h[i*d+j]) / float64(len(e.IDs))
				}
			}
			out = append(out, v)
		}
		return out
	}
	cos := func(a, b []float64) float64 {
		var ab, aa, bb float64
		for i := range a {
			ab += a[i] * b[i]
			aa += a[i] * a[i]
			bb += b[i] * b[i]
		}
		return ab / math.Sqrt(aa*bb)
	}
	ref := embed(arch.LoadOptions{})
	for _, c := range []struct {
		name string
		opt  arch.LoadOptions
		min  float64
	}{
		{"q8", arch.LoadOptions{Quantize: arch.QuantizeQ8}, 0.999},
		{"bf16c", arch.LoadOptions{Compute: arch.ComputeBF16}, 0.9999},
	} {
		got := embed(c.opt)
		worst := 1.0
		for i := range ref {
			worst = min(worst, cos(ref[i], got[i]))
		}
		t.Logf("%s: lowest cosine against float32 %.6f over %d sentences", c.name, worst, len(ref))
		if !(worst >= c.min) {
			t.Errorf("%s: cosine %.6f < %g", c.name, worst, c.min)
		}
	}
}

// sharedFixtures returns the shared fixture folder or skips.
func sharedFixtures(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("EMBRACE_SHARED_FIXTURES"), filepath.Join("..", "..", "..", "shared", "fixtures")} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(p, "models")); err == nil {
			return p
		}
	}
	t.Skip("no fixtures: set $EMBRACE_SHARED_FIXTURES or provide ../shared/fixtures beside the module root")
	return ""
}

// TestGPT2ReducedPrecision runs the GPT-2 fixtures (F32 and BF16 weights;
// Conv1D layers) through a prefill and three KV-cached steps with each
// reduced precision and compares the logits of every step with the default
// load's: cosine ≥ 0.999 for q8 and ≥ 0.9999 for bf16 compute.
func TestGPT2ReducedPrecision(t *testing.T) {
	root := sharedFixtures(t)
	for _, name := range []string{"gpt2", "gpt2-bf16"} {
		f, err := hfdir.Read(filepath.Join(root, "models", name))
		if err != nil {
			t.Fatal(err)
		}
		run := func(opt arch.LoadOptions) [][]float32 {
			m, err := gpt2.Arch().Load(f, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			lm := m.(arch.CausalLM)
			c, err := lm.NewCache(1, 16)
			if err != nil {
				t.Fatal(err)
			}
			var steps [][]float32
			in := &arch.DecoderInput{IDs: []int{5, 17, 42, 9, 33, 2, 61, 7, 12, 3}}
			for s := 0; s < 4; s++ {
				out, err := lm.Forward(context.Background(), c, in)
				if err != nil {
					t.Fatal(err)
				}
				steps = append(steps, append([]float32(nil), out.Logits...))
				in = &arch.DecoderInput{IDs: []int{20 + s}}
			}
			return steps
		}
		ref := run(arch.LoadOptions{})
		for _, c := range []struct {
			name string
			opt  arch.LoadOptions
			min  float64
		}{
			{"q8", arch.LoadOptions{Quantize: arch.QuantizeQ8}, 0.999},
			{"bf16c", arch.LoadOptions{Compute: arch.ComputeBF16}, 0.9999},
		} {
			got := run(c.opt)
			worst := 1.0
			for s := range ref {
				var ab, aa, bb float64
				for i, a := range ref[s] {
					b := float64(got[s][i])
					ab += float64(a) * b
					aa += float64(a) * float64(a)
					bb += b * b
				}
				worst = min(worst, ab/math.Sqrt(aa*bb))
			}
			t.Logf("%s %s: lowest logits cosine against the default load %.6f over %d steps", name, c.name, worst, len(ref))
			if !(worst >= c.min) {
				t.Errorf("%s %s: cosine %.6f < %g", name, c.name, worst, c.min)
			}
		}
	}
}
