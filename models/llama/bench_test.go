package llama

import (
	"context"
	"testing"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// BenchmarkDecodeStep times one decoding step of a mid-sized random model
// (hidden 1024, 4 layers, GQA 16/4, vocabulary 16000) with F32 and BF16
// weights after a 256-token prompt: BF16 streams half the weight bytes.
//
//	flock /tmp/bench.lock go test -run '^$' -bench DecodeStep -benchtime 2s ./models/llama
func BenchmarkDecodeStep(b *testing.B) {
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.BF16} {
		b.Run(string(dt), func(b *testing.B) {
			m := loadTiny(b, tiny{modelType: "llama", dtype: dt, heads: 16, kvHeads: 4,
				hidden: 1024, inner: 2816, vocab: 16000, layers: 4})
			ctx := context.Background()
			c, err := m.NewCache(1, 256+b.N+1)
			if err != nil {
				b.Fatal(err)
			}
			prompt := make([]int, 256)
			for i := range prompt {
				prompt[i] = (i * 7919) % 16000
			}
			if _, err := m.Forward(ctx, c, &arch.DecoderInput{IDs: prompt}); err != nil {
				b.Fatal(err)
			}
			step := &arch.DecoderInput{IDs: []int{42}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward(ctx, c, step); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrefill times a 256-token prompt on the same model (F32).
func BenchmarkPrefill(b *testing.B) {
	m := loadTiny(b, tiny{modelType: "llama", heads: 16, kvHeads: 4, hidden: 1024, inner: 2816, vocab: 16000, layers: 4})
	ctx := context.Background()
	c, err := m.NewCache(1, 256)
	if err != nil {
		b.Fatal(err)
	}
	prompt := make([]int, 256)
	for i := range prompt {
		prompt[i] = (i * 7919) % 16000
	}
	in := &arch.DecoderInput{IDs: prompt}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Reset()
		if _, err := m.Forward(ctx, c, in); err != nil {
			b.Fatal(err)
		}
	}
}
