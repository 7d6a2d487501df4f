package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPackedMatchesReference checks products against packed weights, for
// every kernel implementation, dtype and odd shape (edges of the slivers, the
// kc blocks and the row blocks), serial and split over the pool (which must
// give identical bits), with strided A and C.
func TestPackedMatchesReference(t *testing.T) {
	shapes := [][3]int{{1, 1, 1}, {1, 17, 33}, {1, 300, 520}, {1, 1000, 47}, {2, 70, 300}, {5, 16, 16},
		{7, 257, 33}, {13, 33, 257}, {130, 45, 259}, {64, 64, 64}, {150, 100, 70}, {3, 5, 0}, {0, 4, 4},
		{2, 300, 1100}, {1, 20, 2100}, {150, 40, 1030}, {130, 769, 70}, {9, 1600, 40}}
	r := rand.New(rand.NewPCG(5, 6))
	for _, g := range gemmImpls {
		for _, s := range shapes {
			for _, dt := range []DType{F32, F16, BF16} {
				m, k, n := s[0], s[1], s[2]
				tc := newGemmCase(r, m, n, k, 3, true, false, dt)
				var w *Tensor
				switch dt {
				case F32:
					w = FromFloat32(tc.bF32, n, tc.ldb)
				default:
					w = FromUint16(dt, tc.bU16, n, tc.ldb)
				}
				// The packed weight is [n, k]: drop the stride padding.
				w = sliceCols(w, k)
				pw, err := packWeight(g, w)
				if err != nil {
					t.Fatal(err)
				}
				if pn, pk := pw.Dims(); pn != n || pk != k {
					t.Fatalf("Dims = %d, %d", pn, pk)
				}
				ref, bound := tc.want()
				serial := append([]float32(nil), tc.c0...)
				gemmPacked(m, tc.a, tc.lda, pw, serial, tc.ldc, 1)
				tc.check(t, g.name+" packed", serial, ref, bound)
				par := append([]float32(nil), tc.c0...)
				gemmPacked(m, tc.a, tc.lda, pw, par, tc.ldc, defaultProcs())
				for i := range par {
					if par[i] != serial[i] {
						t.Fatalf("%s %v: parallel packed result differs at %d", g.name, tc, i)
					}
				}
			}
		}
	}
}

// sliceCols copies the first k columns of a 2-D tensor.
func sliceCols(w *Tensor, k int) *Tensor {
	rows, ld := w.shape[0], w.shape[1]
	out := New(w.dtype, rows, k)
	for i := 0; i < rows; i++ {
		if w.dtype == F32 {
			copy(out.f32[i*k:(i+1)*k], w.f32[i*ld:i*ld+k])
		} else {
			copy(out.u16[i*k:(i+1)*k], w.u16[i*ld:i*ld+k])
		}
	}
	return out
}

func TestMatMulTPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, m := range []int{1, 3, 128} {
		x := FromFloat32(randF32(r, m*40), m, 40)
		w := FromFloat32(randF32(r, 50*40), 50, 40)
		want := Zeros(m, 50)
		MatMulT(want, x, w)
		pw, err := PackWeight(w)
		if err != nil {
			t.Fatal(err)
		}
		got := Zeros(m, 50)
		MatMulTPacked(got, x, pw)
		closeTo(t, fmt.Sprintf("MatMulTPacked m=%d", m), got.Float32s(), want.Float32s(), 1e-5)
	}
	if _, err := PackWeight(Zeros(3)); err == nil {
		t.Fatal("PackWeight of a 1-D tensor: no error")
	}
	if _, err := PackWeight(FromInt64([]int64{1, 2}, 1, 2)); err == nil {
		t.Fatal("PackWeight of an I64 tensor: no error")
	}
}

// TestGemvPKernels runs every sliver-GEMV kernel compiled for this machine,
// including the nr = 32 one that only AVX-512 dispatch uses, on odd kc.
// TestGemvPKernels checks every implementation's M = 1 sliver kernels, F32
// and half, against a float64 sum over the same (widened) values.
func TestGemvPKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, g := range gemmImpls {
		nr := g.nr
		for _, dt := range []DType{F32, F16, BF16} {
			for _, kc := range []int{0, 1, 2, 3, 4, 5, 7, 17, 256, packKC} {
				for _, acc := range []bool{false, true} {
					x := randF32(r, kc)
					bp := randF32(r, kc*nr)
					half := roundHalf(dt, bp)
					y0 := randF32(r, nr)
					want := gemvWant(x, bp, y0, nr, nr, 1, acc)
					got := append([]float32(nil), y0...)
					switch dt {
					case F32:
						g.gemvP(x, bp, got, acc)
					case F16:
						g.gemvPF16(x, half, got, acc)
					default:
						g.gemvPBF16(x, half, got, acc)
					}
					closeTo(t, fmt.Sprintf("%s %v kc=%d acc=%v", g.name, dt, kc, acc), got, want, 1e-5)
				}
			}
		}
	}
}

// TestGemvTKernels checks the M = 1 kernels against unpacked [n,k] weights
// (row stride ldb > k) for every implementation and dtype, against a
// float64 sum over the same (widened) values: k around the zmm step of 32 and
// the 2048-value segments of the bfloat16 zmm path.
func TestGemvTKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, g := range gemmImpls {
		for _, dt := range []DType{F32, F16, BF16} {
			for _, k := range []int{1, 31, 32, 33, 64, 95, 97, 2047, 2048, 2049, 4100} {
				for _, acc := range []bool{false, true} {
					const n = 5
					ldb := k + 3
					x := randF32(r, k)
					bf := randF32(r, n*ldb)
					half := roundHalf(dt, bf)
					y0 := randF32(r, n)
					want := gemvWant(x, bf, y0, n, 1, ldb, acc)
					got := append([]float32(nil), y0...)
					switch dt {
					case F32:
						g.gemvTF32(n, k, x, bf, ldb, got, acc)
					case F16:
						g.gemvTF16(n, k, x, half, ldb, got, acc)
					default:
						g.gemvTBF16(n, k, x, half, ldb, got, acc)
					}
					closeTo(t, fmt.Sprintf("%s %v k=%d acc=%v", g.name, dt, k, acc), got, want, 1e-4)
				}
			}
		}
	}
}

// roundHalf stores w in dtype dt (nil for F32) and rounds w to the stored
// values, so that a float64 reference sees what the kernels see.
func roundHalf(dt DType, w []float32) []uint16 {
	half := make([]uint16, len(w))
	switch dt {
	case F16:
		F32ToF16(half, w)
		F16ToF32(w, half)
	case BF16:
		F32ToBF16(half, w)
		convBF16Generic(w, half)
	}
	return half
}

// gemvWant is the float64 reference y[j] = Σp x[p]·w[p·ps+j·js] (+ y0[j]).
func gemvWant(x, w, y0 []float32, n, ps, js int, acc bool) []float32 {
	want := make([]float32, n)
	for j := range want {
		var s float64
		for p := range x {
			s += float64(x[p]) * float64(w[p*ps+j*js])
		}
		if acc {
			s += float64(y0[j])
		}
		want[j] = float32(s)
	}
	return want
}
