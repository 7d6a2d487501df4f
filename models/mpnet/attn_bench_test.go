package mpnet

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/embrace-go/embrace/nn"
)

// BenchmarkAttention compares this package's attention (with the relative
// bias) with nn.SelfAttention (without) at base-model sizes.
func BenchmarkAttention(b *testing.B) {
	const heads, dh = 12, 64
	d := heads * dh
	for _, c := range []struct{ batch, seq int }{{8, 128}, {2, 512}} {
		qkv := make([]float32, c.batch*c.seq*3*d)
		for i := range qkv {
			qkv[i] = rand.Float32() - 0.5
		}
		out := make([]float32, c.batch*c.seq*d)
		table := make([]float32, 32*heads)
		rel := relativeBias(make([]float32, heads*(2*c.seq-1)), table, heads, c.seq)
		b.Run(fmt.Sprintf("B%d-S%d/mpnet", c.batch, c.seq), func(b *testing.B) {
			for b.Loop() {
				attention(out, qkv, attnParams{batch: c.batch, seq: c.seq, heads: heads, headDim: dh, relBias: rel})
			}
		})
		b.Run(fmt.Sprintf("B%d-S%d/nn.SelfAttention", c.batch, c.seq), func(b *testing.B) {
			for b.Loop() {
				nn.SelfAttention(0, out, qkv, qkv[d:], qkv[2*d:], 3*d, 3*d, 3*d, c.batch, c.seq, heads, dh, nil, false)
			}
		})
	}
}
