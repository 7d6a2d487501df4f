package modernbert

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/embrace-go/embrace/nn"
)

// The blocked attention equals a plain float64 softmax(q·kᵀ/√Dh)·v over the
// visible real keys, for global and windowed layers, with jobs on workers
// (short sequences) and one after the other with split products (long
// ones), across query block boundaries.
func TestAttentionMatchesNaive(t *testing.T) {
	for _, c := range []struct{ seq, heads, dh, window int }{
		{150, 2, 8, -1}, {150, 2, 8, 3}, {300, 2, 64, -1}, {300, 2, 64, 40}, {5, 1, 4, 0},
	} {
		t.Run(fmt.Sprintf("S%d-Dh%d-w%d", c.seq, c.dh, c.window), func(t *testing.T) {
			const batch = 2
			d := c.heads * c.dh
			rng := rand.New(rand.NewPCG(1, uint64(c.seq)))
			qkv := make([]float32, batch*c.seq*3*d)
			for i := range qkv {
				qkv[i] = float32(rng.NormFloat64())
			}
			mask := make([]int, batch*c.seq)
			for i := range mask {
				mask[i] = 1
				if i >= c.seq && i%c.seq >= c.seq*2/3 { // the second sequence is padded
					mask[i] = 0
				}
			}
			p := attnParams{batch: batch, seq: c.seq, heads: c.heads, headDim: c.dh, window: c.window, keyBias: nn.MaskBias(mask)}
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
						var sum float64
						for j := 0; j < c.seq; j++ {
							if mask[b*c.seq+j] == 0 || (c.window >= 0 && (j < i-c.window || j > i+c.window)) {
								continue
							}
							var s float64
							for k := 0; k < c.dh; k++ {
								s += float64(qkv[(b*c.seq+i)*3*d+h*c.dh+k]) * float64(qkv[(b*c.seq+j)*3*d+d+h*c.dh+k])
							}
							w[j] = math.Exp(s / math.Sqrt(float64(c.dh)))
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
