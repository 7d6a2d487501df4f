package pipeline

import (
	"context"
	"math"
	"testing"

	"github.com/embrace-go/embrace/models/arch"
)

// Reduced precision through the pipeline options: sentence embeddings of
// the committed MiniLM folder stay within cosine 0.999 (q8) and 0.9999
// (BF16 compute) of the default load.
func TestReducedPrecisionEmbeddings(t *testing.T) {
	ctx := context.Background()
	texts := []string{"Hello world!", "Embrace runs transformers in Go.", "A third, somewhat longer sentence about nothing in particular."}
	ref, err := NewSentenceEmbedder(ctx, "testdata/minilm-st", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	want, err := ref.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		load  arch.LoadOptions
		bound float64
	}{
		{arch.LoadOptions{Quantize: arch.QuantizeQ8}, 0.999},
		{arch.LoadOptions{Compute: arch.ComputeBF16}, 0.9999},
	} {
		e, err := NewSentenceEmbedder(ctx, "testdata/minilm-st", &Options{Load: c.load})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Embed(ctx, texts)
		e.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range texts {
			var dot, na, nb float64
			for j := range got[i] {
				dot += float64(got[i][j]) * float64(want[i][j])
				na += float64(got[i][j]) * float64(got[i][j])
				nb += float64(want[i][j]) * float64(want[i][j])
			}
			if cos := dot / math.Sqrt(na*nb); cos < c.bound {
				t.Errorf("%+v text %d: cosine %.6f, want ≥ %v", c.load, i, cos, c.bound)
			}
		}
	}
	if _, err := NewSentenceEmbedder(ctx, "testdata/minilm-st", &Options{Load: arch.LoadOptions{Quantize: "q4"}}); err == nil {
		t.Error("an unknown quantization was accepted")
	}
}
