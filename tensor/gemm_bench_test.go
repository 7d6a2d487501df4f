package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkGemm reports GFLOP/s of C[M,N] = A[M,K]·Wᵀ (W a Linear weight
// [N,K]) for BERT-base / GPT-2 shapes, with every kernel implementation.
func BenchmarkGemm(b *testing.B) {
	shapes := [][3]int{{128, 768, 3072}, {128, 3072, 768}, {128, 768, 768}, {128, 768, 2304}, {1, 768, 3072}, {1, 3072, 768}, {1, 768, 2304}}
	r := rand.New(rand.NewPCG(1, 1))
	for _, g := range gemmImpls {
		for _, dt := range []DType{F32, F16, BF16} {
			for _, s := range shapes {
				m, k, n := s[0], s[1], s[2]
				if dt != F32 && m != 1 {
					continue
				}
				b.Run(fmt.Sprintf("%s/%v/%dx%dx%d", g.name, dt, m, k, n), func(b *testing.B) {
					tc := newGemmCase(r, m, n, k, 0, true, false, dt)
					bm := bMat{f32: tc.bF32, u16: tc.bU16, bf16: dt == BF16, ld: k, trans: true}
					c := make([]float32, m*n)
					for b.Loop() {
						gemmRun(g, m, n, k, tc.a, k, bm, c, n, false, defaultProcs())
					}
					b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkPackB reports GB/s (of F32 read) packing a transposed Linear weight
// [n,768] into slivers, one kc×nc panel after another, as gemmBlock does:
// n = 3072 reads from L3 or memory, n = 256 from L2.
func BenchmarkPackB(b *testing.B) {
	const k = 768
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{3072, 256} {
		w := make([]float32, n*k)
		for i := range w {
			w[i] = r.Float32()
		}
		for _, g := range gemmImpls {
			b.Run(fmt.Sprintf("%s/n=%d", g.name, n), func(b *testing.B) {
				bm := bMat{f32: w, ld: k, trans: true}
				dst := make([]float32, gemmKC*(gemmNC+g.nr))
				var row [gemmKC]float32
				for b.Loop() {
					for jc := 0; jc < n; jc += gemmNC {
						nc := min(gemmNC, n-jc)
						for pc := 0; pc < k; pc += gemmKC {
							packB(g, bm, pc, min(gemmKC, k-pc), jc, nc, dst, row[:])
						}
					}
				}
				b.ReportMetric(float64(4*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}

// BenchmarkAttention times one layer's multi-head attention over a fused
// QKV buffer: GPT-2 small (12 heads of 64), causal (a prefill) or not (an
// encoder), at 128 and 512 positions; and MiniLM-L6 (12 heads of 32) on 8
// sequences of 128 with a key mask.
func BenchmarkAttention(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	run := func(name string, batch, heads, dh, seq int, causal, masked bool) {
		b.Run(name, func(b *testing.B) {
			width := heads * dh
			qkv := randSlice(r, batch*seq*3*width)
			out := make([]float32, batch*seq*width)
			p := fusedQKVParams(batch, heads, dh, seq)
			p.Scale, p.Causal = 0.125, causal
			if masked {
				p.KeyMask = make([]float32, batch*seq)
			}
			for b.Loop() {
				Attention(out, qkv, qkv[width:], qkv[2*width:], p)
			}
		})
	}
	for _, seq := range []int{128, 512} {
		for _, causal := range []bool{false, true} {
			run(fmt.Sprintf("s%d/causal=%v", seq, causal), 1, 12, 64, seq, causal, false)
		}
	}
	run("minilm/b8s128", 8, 12, 32, 128, false, true)
}
