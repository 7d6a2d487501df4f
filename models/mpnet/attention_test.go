package mpnet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/embrace-go/embrace/nn"
)

// The attention equals a plain float64 softmax(q·kᵀ/√Dh + bias)·v over the
// real keys, with jobs on workers (short sequences) and one after the
// other with split products (long ones).
func TestAttentionMatchesNaive(t *testing.T) {
	for _, c := range []struct{ seq, heads, dh int }{{150, 2, 8}, {300, 2, 64}, {3, 1, 4}} {
		t.Run(fmt.Sprintf("S%d-Dh%d", c.seq, c.dh), func(t *testing.T) {
			const batch = 2
			d := c.heads * c.dh
			rng := rand.New(rand.NewPCG(1, uint64(c.seq)))
			qkv := make([]float32, batch*c.seq*3*d)
			for i := range qkv {
				qkv[i] = float32(rng.NormFloat64())
			}
			table := make([]float32, 32*c.heads)
			for i := range table {
				table[i] = float32(2 * rng.NormFloat64())
			}
			mask := make([]int, batch*c.seq)
			for i := range mask {
				mask[i] = 1
				if i >= c.seq && i%c.seq >= c.seq*2/3 {
					mask[i] = 0
				}
			}
			p := attnParams{batch: batch, seq: c.seq, heads: c.heads, headDim: c.dh, keyBias: nn.MaskBias(mask),
				relBias: relativeBias(make([]float32, c.heads*(2*c.seq-1)), table, c.heads, c.seq)}
			rows, parallel := p.plan()
			t.Logf("%d rows per job, on workers: %v", rows, parallel)
			out := make([]float32, batch*c.seq*d)
			attention(out, qkv, p)
			worst := 0.0
			for b := 0; b < batch; b++ {
				for h := 0; h < c.heads; h++ {
					for i := 0; i < c.seq; i++ {
						if mask[b*c.seq+i] == 0 {
							continue
						}
						w := make([]float64, c.seq)
						mx := math.Inf(-1)
						for j := 0; j < c.seq; j++ {
							if mask[b*c.seq+j] == 0 {
								w[j] = math.Inf(-1)
								continue
							}
							var s float64
							for k := 0; k < c.dh; k++ {
								s += float64(qkv[(b*c.seq+i)*3*d+h*c.dh+k]) * float64(qkv[(b*c.seq+j)*3*d+d+h*c.dh+k])
							}
							w[j] = s/math.Sqrt(float64(c.dh)) + float64(table[refBucket(j-i)*c.heads+h])
							mx = max(mx, w[j])
						}
						var sum float64
						for j := range w {
							w[j] = math.Exp(w[j] - mx)
							sum += w[j]
						}
						for k := 0; k < c.dh; k++ {
							var o float64
							for j := 0; j < c.seq; j++ {
								o += w[j] / sum * float64(qkv[(b*c.seq+j)*3*d+2*d+h*c.dh+k])
							}
							worst = max(worst, math.Abs(o-float64(out[(b*c.seq+i)*d+h*c.dh+k])))
						}
					}
				}
			}
			if worst > 1e-5 {
				t.Errorf("worst difference from float64 %.3g", worst)
			}
		})
	}
}
