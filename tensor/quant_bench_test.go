package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkReduced compares, side by side in one run, the reduced-precision
// products with the float32 packed ones they replace (C[M,N] = A[M,K]·Wᵀ):
//   - q8 GEMV (M = 1, decoding) against F32 GEMV, in multiply-adds/s and in
//     GB/s of weights read (q8 counted at 34 bytes per 32 weights, F32 at 4
//     bytes per weight); 768×50257 is GPT-2's LM head, which does not fit
//     in any cache;
//   - BF16-compute GEMM (M = 128, an encoder or a prefill) against F32 GEMM
//     and q8 GEMM, in GFLOP/s; and BF16-compute GEMV (bfloat16 weights, 2
//     bytes each).
//
// Every kernel implementation of this CPU runs (go, avx512vnni, avx512bf16).
func BenchmarkReduced(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 3))
	type shape struct{ m, k, n int }
	gemv := []shape{{1, 768, 3072}, {1, 3072, 768}, {1, 768, 50257}}
	gemm := []shape{{128, 768, 3072}, {128, 3072, 768}}
	report := func(b *testing.B, s shape, bytesPerWeight float64) {
		macs := float64(s.m*s.n*s.k) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(2*macs/1e9, "GFLOP/s")
		if s.m == 1 {
			b.ReportMetric(macs*bytesPerWeight/1e9, "GB/s")
		}
	}
	for _, s := range append(gemv, gemm...) {
		wt, _ := randWeight(r, F32, s.n, s.k)
		x := FromFloat32(randF32(r, s.m*s.k), s.m, s.k)
		y := New(F32, s.m, s.n)
		name := fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n)
		b.Run("f32/"+name, func(b *testing.B) {
			pw, err := PackWeight(wt)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				MatMulTPacked(y, x, pw)
			}
			report(b, s, 4)
		})
		q, err := QuantizeQ8(wt)
		if err != nil {
			b.Fatal(err)
		}
		for _, g := range q8Impls {
			if g == q8Go && s.n > 4096 {
				continue // minutes at this size
			}
			b.Run("q8-"+g.name+"/"+name, func(b *testing.B) {
				for b.Loop() {
					matMulTQ8(g, s.m, x.f32, q, y.f32, defaultProcs())
				}
				report(b, s, 34.0/32)
			})
		}
		for _, g := range bf16Impls {
			if g == bf16Go {
				continue // a test kernel, not a compute path
			}
			b.Run("bf16c-"+g.name+"/"+name, func(b *testing.B) {
				pw, err := packBF16(g, wt)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					matMulTBF16(g, s.m, x.f32, pw, y.f32, defaultProcs())
				}
				report(b, s, 2)
			})
		}
	}
}

// BenchmarkQ8Tile times one Q8 kernel call on an L1-resident sliver (16
// weight rows × 768 inputs) for 1 and 8 activation rows: the kernel's own
// speed, in ns per block of 16×32 multiply-adds per row.
func BenchmarkQ8Tile(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 3))
	const k, n, rows = 768, 16, 8
	wt, _ := randWeight(r, F32, n, k)
	q, err := QuantizeQ8(wt)
	if err != nil {
		b.Fatal(err)
	}
	kb := k / Q8Block
	xq, dx := make([]byte, rows*k), make([]float32, rows*kb)
	quantizeRowsQ8(q8Go, rows, k, randF32(r, rows*k), xq, dx)
	y := make([]float32, rows*q8NR)
	for _, g := range q8Impls {
		for _, mr := range []int{1, rows} {
			b.Run(fmt.Sprintf("%s/mr=%d", g.name, mr), func(b *testing.B) {
				for b.Loop() {
					g.tile(mr, kb, xq, dx, q.data, y, q8NR)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(kb), "ns/block")
			})
		}
		if g.tile2 == nil {
			continue
		}
		w2 := append(append([]byte(nil), q.data...), q.data...)
		y2 := make([]float32, q8MR2*2*q8NR)
		b.Run(fmt.Sprintf("%s/2sliver/mr=%d", g.name, q8MR2), func(b *testing.B) {
			for b.Loop() {
				g.tile2(q8MR2, kb, xq, dx, w2, y2, 2*q8NR)
			}
			// Per block of one sliver, as the other lines.
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(2*kb), "ns/block")
		})
	}
}

// BenchmarkQuantizeQ8 reports the load-time cost of quantizing a weight
// (768×3072, F32 and BF16), in millions of weights per second.
func BenchmarkQuantizeQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 7))
	for _, dt := range []DType{F32, BF16} {
		wt, _ := randWeight(r, dt, 3072, 768)
		b.Run(dt.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := QuantizeQ8(wt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(3072*768)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mweights/s")
		})
	}
}

// BenchmarkQuantizeRowQ8 times each kernel's activation quantizer on one
// row of 3072 values (the widest decode input of GPT-2), in ns per block.
func BenchmarkQuantizeRowQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 8))
	const k = 3072
	x := randF32(r, k)
	xq, dx := make([]byte, k), make([]float32, k/Q8Block)
	for _, g := range q8Impls {
		b.Run(g.name, func(b *testing.B) {
			for b.Loop() {
				g.quant(xq, dx, x)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(k/Q8Block), "ns/block")
		})
	}
}
