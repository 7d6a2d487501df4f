package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// randWeight returns a random [n, k] weight of dtype dt (values in [-1, 1),
// rounded to dt) and its float32 values.
func randWeight(r *rand.Rand, dt DType, n, k int) (*Tensor, []float32) {
	f := randF32(r, n*k)
	switch dt {
	case F16:
		h := make([]uint16, len(f))
		F32ToF16(h, f)
		F16ToF32(f, h)
		return FromUint16(F16, h, n, k), f
	case BF16:
		h := make([]uint16, len(f))
		F32ToBF16(h, f)
		BF16ToF32(f, h)
		return FromUint16(BF16, h, n, k), f
	}
	return FromFloat32(append([]float32(nil), f...), n, k), f
}

// q8Dequantized returns the activation rows x [m, k] as the Q8 kernels see
// them: quantized per block of 32 and multiplied back.
func q8Dequantized(x []float32, m, k int) []float64 {
	kb := (k + Q8Block - 1) / Q8Block
	xq := make([]byte, kb*Q8Block)
	dx := make([]float32, kb)
	out := make([]float64, m*k)
	for i := 0; i < m; i++ {
		quantizeRowQ8(xq, dx, x[i*k:(i+1)*k])
		for p := 0; p < k; p++ {
			out[i*k+p] = float64(int(xq[p])-128) * float64(dx[p/Q8Block])
		}
	}
	return out
}

// TestQ8ImplsMatchReference forces each Q8 kernel in turn on odd shapes and
// compares it with a float64 product of the values the kernel stands for
// (dequantized weight, quantized-then-dequantized activations): the integer
// block sums are exact, so only float32 rounding separates them.
func TestQ8ImplsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ms := []int{1, 7, 33, 257}
	ks := []int{32, 45, 256, 263}
	ns := []int{5, 16, 40}
	dts := []DType{F32, F16, BF16}
	for _, g := range q8Impls {
		for ci, m := range ms {
			for ki, k := range ks {
				for _, n := range ns {
					dt := dts[(ci+ki+n)%3]
					wt, _ := randWeight(r, dt, n, k)
					q, err := QuantizeQ8(wt)
					if err != nil {
						t.Fatal(err)
					}
					wd := q.Dequantize().Float32s()
					x := randF32(r, m*k)
					xd := q8Dequantized(x, m, k)
					kb := (k + Q8Block - 1) / Q8Block
					for _, par := range []bool{false, true} {
						c := randF32(r, m*n) // overwritten
						matMulTQ8(g, m, x, q, c, procsFor(par))
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								var ref, bound float64
								for p := 0; p < k; p++ {
									v := xd[i*k+p] * float64(wd[j*k+p])
									ref += v
									bound += math.Abs(v)
								}
								tol := 1.2e-7*float64(kb+4)*bound + 1e-6
								if d := math.Abs(float64(c[i*n+j]) - ref); !(d <= tol) {
									t.Fatalf("%s %v m=%d n=%d k=%d par=%v: C[%d][%d] = %v, want %v (|diff| %g > %g)", g.name, dt, m, n, k, par, i, j, c[i*n+j], ref, d, tol)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestQ8Accuracy compares Q8 products with float32 ones on random data of
// real widths (768 and 3072 inputs): each product term is off by at most
// half a weight step times |x| plus half an activation step times |w| (and
// their product), which bounds every output; the worst error is logged.
func TestQ8Accuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{768, 3072} {
		m, n := 4, 96
		wt, wf := randWeight(r, F32, n, k)
		q, err := QuantizeQ8(wt)
		if err != nil {
			t.Fatal(err)
		}
		x := randF32(r, m*k)
		got := New(F32, m, n)
		MatMulTQ8(got, FromFloat32(x, m, k), q)
		var worst, worstRel float64
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var ref, bound float64
				for b := 0; b < k; b += Q8Block {
					var ax, aw float64
					for p := b; p < b+Q8Block; p++ {
						ax = max(ax, math.Abs(float64(x[i*k+p])))
						aw = max(aw, math.Abs(float64(wf[j*k+p])))
					}
					dxs, dws := ax/127, aw/127*(1+1.0/1024)
					for p := b; p < b+Q8Block; p++ {
						xv, wv := float64(x[i*k+p]), float64(wf[j*k+p])
						ref += xv * wv
						bound += math.Abs(xv)*dws/2 + math.Abs(wv)*dxs/2 + dxs*dws/4
					}
				}
				d := math.Abs(float64(got.f32[i*n+j]) - ref)
				if !(d <= bound+1e-5) {
					t.Fatalf("k=%d: C[%d][%d] = %v, float32 product %v (|diff| %g > bound %g)", k, i, j, got.f32[i*n+j], ref, d, bound)
				}
				worst = max(worst, d)
				worstRel = max(worstRel, d/math.Max(math.Abs(ref), 1))
			}
		}
		t.Logf("q8 (%s) k=%d: max |Δ| against float32 %.3g (outputs of size ~%.1f)", q8Default.name, k, worst, math.Sqrt(float64(k)/9))
	}
}

// TestQuantizeQ8 checks the stored values: every weight within half a step
// of its block's (half-precision) scale, zero padding past k, and errors
// for bad weights.
func TestQuantizeQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, k := range []int{1, 31, 32, 33, 100} {
		wt, wf := randWeight(r, F32, 19, k)
		wt.f32[3], wf[3] = 0, 0 // a zero value and, below, an all-zero row
		for p := 0; p < k; p++ {
			wt.f32[2*k+p], wf[2*k+p] = 0, 0
		}
		q, err := QuantizeQ8(wt)
		if err != nil {
			t.Fatal(err)
		}
		if n, kk := q.Dims(); n != 19 || kk != k {
			t.Fatalf("Dims = %d, %d", n, kk)
		}
		d := q.Dequantize().Float32s()
		for i := 0; i < 19; i++ {
			for b := 0; b < k; b += Q8Block {
				var amax float64
				for p := b; p < min(b+Q8Block, k); p++ {
					amax = max(amax, math.Abs(float64(wf[i*k+p])))
				}
				step := amax / 127 * (1 + 1.0/1024)
				for p := b; p < min(b+Q8Block, k); p++ {
					if e := math.Abs(float64(d[i*k+p] - wf[i*k+p])); e > step/2+1e-9 {
						t.Fatalf("k=%d w[%d][%d] = %v dequantized to %v (step %g)", k, i, p, wf[i*k+p], d[i*k+p], step)
					}
				}
			}
		}
		if d[2*k] != 0 || d[3] != 0 {
			t.Fatalf("zeros dequantized to %v, %v", d[2*k], d[3])
		}
	}
	bad := FromFloat32([]float32{1, 2, float32(math.NaN()), 4}, 2, 2)
	if _, err := QuantizeQ8(bad); err == nil {
		t.Fatal("QuantizeQ8 accepted a NaN")
	}
	if _, err := QuantizeQ8(New(F32, 4)); err == nil {
		t.Fatal("QuantizeQ8 accepted a 1-D tensor")
	}
}

// bf16Rounded is the reference rounding: float32 to bfloat16, nearest even.
func bf16Rounded(v []float32) []float64 {
	h := make([]uint16, len(v))
	F32ToBF16(h, v)
	out := make([]float64, len(v))
	for i, b := range h {
		out[i] = float64(bf16ToF32(b))
	}
	return out
}

// TestBF16ImplsMatchReference forces each BF16-compute kernel in turn on odd
// shapes and compares it with a float64 product of the operands rounded to
// bfloat16 (nearest even) the way the kernels round them.
func TestBF16ImplsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ms := []int{1, 7, 33, 257}
	ks := []int{1, 2, 7, 300, 1100}
	ns := []int{5, 32, 70}
	dts := []DType{F32, F16, BF16}
	for _, g := range bf16Impls {
		for ci, m := range ms {
			for ki, k := range ks {
				for _, n := range ns {
					dt := dts[(ci+ki+n)%3]
					wt, wf := randWeight(r, dt, n, k)
					pw, err := packBF16(g, wt)
					if err != nil {
						t.Fatal(err)
					}
					x := randF32(r, m*k)
					xr, wr := bf16Rounded(x), bf16Rounded(wf)
					for _, par := range []bool{false, true} {
						c := randF32(r, m*n)
						matMulTBF16(g, m, x, pw, c, procsFor(par))
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								var ref, bound float64
								for p := 0; p < k; p++ {
									v := xr[i*k+p] * wr[j*k+p]
									ref += v
									bound += math.Abs(v)
								}
								tol := 1.2e-7*float64(k+2)*bound + 1e-6
								if d := math.Abs(float64(c[i*n+j]) - ref); !(d <= tol) {
									t.Fatalf("%s %v m=%d n=%d k=%d par=%v: C[%d][%d] = %v, want %v (|diff| %g > %g)", g.name, dt, m, n, k, par, i, j, c[i*n+j], ref, d, tol)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestBF16Accuracy compares BF16-compute products with float32 ones on
// random data of real widths; each operand is within 2⁻⁹ relative of its
// float32 value, which bounds every output. The worst error is logged.
func TestBF16Accuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, k := range []int{768, 3072} {
		m, n := 4, 96
		wt, wf := randWeight(r, F32, n, k)
		pw, err := PackBF16(wt)
		if err != nil {
			t.Fatal(err)
		}
		x := randF32(r, m*k)
		got := New(F32, m, n)
		MatMulTBF16(got, FromFloat32(x, m, k), pw)
		var worst float64
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var ref, bound float64
				for p := 0; p < k; p++ {
					v := float64(x[i*k+p]) * float64(wf[j*k+p])
					ref += v
					bound += math.Abs(v)
				}
				d := math.Abs(float64(got.f32[i*n+j]) - ref)
				if tol := bound*(2.0/256+1e-6) + 1e-5; !(d <= tol) {
					t.Fatalf("k=%d: C[%d][%d] = %v, float32 product %v (|diff| %g > %g)", k, i, j, got.f32[i*n+j], ref, d, tol)
				}
				worst = max(worst, d)
			}
		}
		t.Logf("bf16 compute (%v) k=%d: max |Δ| against float32 %.3g", pw.BF16(), k, worst)
	}
}

// TestBF16Fallback checks that without BF16 compute a BF16Weight gives the
// float32 packed product exactly, and that BF16Compute agrees with the
// weights it packs.
func TestBF16Fallback(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	wt, _ := randWeight(r, F16, 40, 70)
	pw, err := PackBF16(wt)
	if err != nil {
		t.Fatal(err)
	}
	if pw.BF16() != BF16Compute() {
		t.Fatalf("weight BF16() = %v, BF16Compute() = %v", pw.BF16(), BF16Compute())
	}
	t.Logf("BF16Compute() = %v", BF16Compute())
	if pw.BF16() {
		return
	}
	p, err := PackWeight(wt)
	if err != nil {
		t.Fatal(err)
	}
	x := FromFloat32(randF32(r, 3*70), 3, 70)
	a, b := New(F32, 3, 40), New(F32, 3, 40)
	MatMulTBF16(a, x, pw)
	MatMulTPacked(b, x, p)
	for i, v := range a.f32 {
		if v != b.f32[i] {
			t.Fatalf("fallback C[%d] = %v, packed %v", i, v, b.f32[i])
		}
	}
}

func TestQ8BF16Errors(t *testing.T) {
	for _, w := range []*Tensor{New(F32, 3), New(I32, 2, 2)} {
		if _, err := PackBF16(w); err == nil {
			t.Errorf("PackBF16(%v) accepted", w)
		}
		if _, err := QuantizeQ8(w); err == nil {
			t.Errorf("QuantizeQ8(%v) accepted", w)
		}
	}
	q, _ := QuantizeQ8(New(F32, 4, 8))
	defer func() {
		if recover() == nil {
			t.Error("MatMulTQ8 with a mismatched input did not panic")
		}
	}()
	MatMulTQ8(New(F32, 1, 4), New(F32, 1, 9), q)
}

// TestQ8QuantizersAgree checks that every kernel's activation quantizer
// gives quantizeRowQ8's bytes and scales exactly (the reference products
// are built from the latter), on rows with all-zero blocks, ties and tails.
func TestQ8QuantizersAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, g := range q8Impls {
		for _, k := range []int{1, 31, 32, 33, 64, 100, 768, 1000} {
			x := randF32(r, k)
			for p := 0; p < min(k, 32); p++ {
				x[p] = 0 // an all-zero first block
			}
			if k > 64 {
				// Ties: amax 127 makes the scale 1, so x.5 rounds away.
				x[40], x[41], x[42], x[43] = 127, 2.5, -2.5, -0.5
			}
			kb := (k + Q8Block - 1) / Q8Block
			wantQ, wantD := make([]byte, kb*Q8Block), make([]float32, kb)
			gotQ, gotD := make([]byte, kb*Q8Block), make([]float32, kb)
			quantizeRowQ8(wantQ, wantD, x)
			g.quant(gotQ, gotD, x)
			for b := range wantD {
				if math.Float32bits(gotD[b]) != math.Float32bits(wantD[b]) {
					t.Fatalf("%s k=%d: scale of block %d = %v, want %v", g.name, k, b, gotD[b], wantD[b])
				}
			}
			for p := range wantQ {
				if gotQ[p] != wantQ[p] {
					t.Fatalf("%s k=%d: byte %d = %d, want %d (x = %v)", g.name, k, p, gotQ[p], wantQ[p], x[min(p, k-1)])
				}
			}
			if k > 64 && (wantQ[41] != 128+3 || wantQ[42] != 128-3 || wantQ[43] != 128-1) {
				t.Fatalf("ties rounded to %d %d %d, want away from zero", int(wantQ[41])-128, int(wantQ[42])-128, int(wantQ[43])-128)
			}
		}
	}
}

// TestBF16ConvertersAgree checks every kernel's activation rounding against
// F32ToBF16 bit for bit, ties, NaNs, infinities and subnormals included.
func TestBF16ConvertersAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	special := []uint32{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00001, 0xffa00000, 0x7f800001,
		0x3f808000, 0x3f818000, 0x3f808001, 0x00000001, 0x807fffff, 0x7f7fffff, 0x7f7f8000}
	for _, g := range bf16Impls {
		for _, n := range []int{1, 15, 16, 17, 100, 1000} {
			src := make([]float32, n)
			for i := range src {
				if i < len(special) {
					src[i] = math.Float32frombits(special[i])
				} else {
					src[i] = math.Float32frombits(r.Uint32())
				}
			}
			want, got := make([]uint16, n), make([]uint16, n)
			F32ToBF16(want, src)
			g.conv(got, src)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s n=%d: %#08x rounded to %#04x, want %#04x", g.name, n, math.Float32bits(src[i]), got[i], want[i])
				}
			}
		}
	}
}

// TestReducedConcurrentAndAllocs: products against one shared Q8Weight or
// BF16Weight from several goroutines give the serial results bit for bit,
// and steady-state products (decode and prefill sizes) allocate nothing.
func TestReducedConcurrentAndAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	const n, k = 300, 200
	wt, _ := randWeight(r, F32, n, k)
	q, err := QuantizeQ8(wt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PackBF16(wt)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []int{1, 40, 100} { // 100: activations quantized over the pool
		x := FromFloat32(randF32(r, m*k), m, k)
		products := map[string]func(dst *Tensor){
			"q8":   func(dst *Tensor) { MatMulTQ8(dst, x, q) },
			"bf16": func(dst *Tensor) { MatMulTBF16(dst, x, b) },
		}
		for name, f := range products {
			want := New(F32, m, n)
			f(want)
			var wg sync.WaitGroup
			errs := make(chan string, 8)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got := New(F32, m, n)
					for it := 0; it < 20; it++ {
						f(got)
						for i, v := range got.f32 {
							if v != want.f32[i] {
								errs <- fmt.Sprintf("%s m=%d: y[%d] = %v concurrently, %v alone", name, m, i, v, want.f32[i])
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatal(e)
			}
			if !raceEnabled {
				dst := New(F32, m, n)
				// As in TestRowOpsDoNotAllocate: a GC empties the pools and
				// an item now and then lands on another P's list, a few
				// stray allocations in a hundred calls, never one per call.
				if a := allocsPerRun(100, func() { f(dst) }); a > 0.2 {
					t.Errorf("%s m=%d: %v allocations per product", name, m, a)
				}
			}
		}
	}
}

// TestReducedEmpty: weights and inputs with a zero dimension give empty or
// zero outputs, as MatMulT does.
func TestReducedEmpty(t *testing.T) {
	for _, s := range [][3]int{{0, 5, 7}, {3, 0, 7}, {3, 5, 0}} {
		m, n, k := s[0], s[1], s[2]
		w := New(F32, n, k)
		q, err := QuantizeQ8(w)
		if err != nil {
			t.Fatal(err)
		}
		b, err := PackBF16(w)
		if err != nil {
			t.Fatal(err)
		}
		for name, f := range map[string]func(dst, x *Tensor){
			"q8":   func(dst, x *Tensor) { MatMulTQ8(dst, x, q) },
			"bf16": func(dst, x *Tensor) { MatMulTBF16(dst, x, b) },
		} {
			dst := FromFloat32(randF32(rand.New(rand.NewPCG(1, 1)), m*n), m, n)
			f(dst, New(F32, m, k))
			for i, v := range dst.f32 {
				if v != 0 {
					t.Fatalf("%s %v: y[%d] = %v, want 0", name, s, i, v)
				}
			}
		}
	}
}
