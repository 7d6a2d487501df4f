package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// rowSizes are the row widths the row kernels are tested on: odd ones leave
// every tail length, 384 and 768 are the hidden sizes of MiniLM and BERT.
var rowSizes = []int{1, 3, 7, 8, 33, 257, 384, 768}

// withOps runs f with impl as the kernels the public operations use.
func withOps(impl *opsImpl, f func()) {
	saved := opsDefault
	opsDefault = impl
	defer func() { opsDefault = saved }()
	f()
}

func TestAddKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, impl := range opsImpls {
		for _, n := range rowSizes {
			a, b, c := randSlice(r, n), randSlice(r, n), randSlice(r, n)
			got := make([]float32, n)
			impl.add(got, a, b)
			for i := range got {
				if got[i] != a[i]+b[i] {
					t.Fatalf("%s add n=%d: [%d] = %v, want %v", impl.name, n, i, got[i], a[i]+b[i])
				}
			}
			impl.add3(got, a, b, c)
			for i := range got {
				if w := a[i] + (b[i] + c[i]); got[i] != w {
					t.Fatalf("%s add3 n=%d: [%d] = %v, want %v", impl.name, n, i, got[i], w)
				}
			}
			// In place, as AddBias and AddResidual use them.
			x := append([]float32(nil), a...)
			impl.add3(x, x, b, c)
			for i := range x {
				if w := a[i] + (b[i] + c[i]); x[i] != w {
					t.Fatalf("%s add3 in place n=%d: [%d] = %v, want %v", impl.name, n, i, x[i], w)
				}
			}
			x = append(x[:0], a...)
			impl.scale(x, 0.37)
			for i := range x {
				if w := a[i] * 0.37; x[i] != w {
					t.Fatalf("%s scale n=%d: [%d] = %v, want %v", impl.name, n, i, x[i], w)
				}
			}
		}
	}
}

func TestBiasActKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, impl := range opsImpls {
		for _, n := range rowSizes {
			for act := GELU; act <= Tanh; act++ {
				ref := activationRefs[act]
				x, b := randSlice(r, n), randSlice(r, n)
				for i := range x {
					x[i] *= 4
				}
				got := append([]float32(nil), x...)
				impl.biasAct(act, got, b)
				for i := range got {
					w := ref(float64(x[i] + b[i]))
					if e := math.Abs(float64(got[i]) - w); math.IsNaN(float64(got[i])) || e > actRelTol*math.Abs(w)+actAbsTol {
						t.Fatalf("%s %v with bias n=%d: [%d] = %v, want %v", impl.name, act, n, i, got[i], w)
					}
				}
			}
		}
	}
}

// layerNormRef is LayerNorm of x (+ r (+ c)) in float64, and the sum row.
func layerNormRef(x, r, c, g, b []float32, eps float64) (out, sum []float32) {
	sum = append([]float32(nil), x...)
	for i := range sum {
		switch {
		case r != nil && c != nil:
			sum[i] = x[i] + (r[i] + c[i])
		case r != nil:
			sum[i] = x[i] + r[i]
		}
	}
	var mean, ss float64
	for _, v := range sum {
		mean += float64(v)
	}
	mean /= float64(len(sum))
	for _, v := range sum {
		ss += (float64(v) - mean) * (float64(v) - mean)
	}
	inv := 1 / math.Sqrt(ss/float64(len(sum))+eps)
	out = make([]float32, len(sum))
	for i, v := range sum {
		y := (float64(v) - mean) * inv * float64(g[i])
		if b != nil {
			y += float64(b[i])
		}
		out[i] = float32(y)
	}
	return out, sum
}

func TestLayerNormKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, impl := range opsImpls {
		for _, n := range rowSizes {
			for variant := 0; variant < 6; variant++ {
				x, rr, c := randSlice(r, n), randSlice(r, n), randSlice(r, n)
				g, b := randSlice(r, n), randSlice(r, n)
				for i := range x {
					x[i] = x[i]*3 + 5 // an offset mean tests the two-pass variance
				}
				if variant%3 == 0 {
					rr, c = nil, nil
				} else if variant%3 == 1 {
					c = nil
				}
				if variant >= 3 {
					b = nil
				}
				want, wantSum := layerNormRef(x, rr, c, g, b, 1e-5)
				xs := append([]float32(nil), x...)
				dst := make([]float32, n)
				impl.layerNorm(dst, xs, rr, c, g, b, 1e-5)
				what := fmt.Sprintf("%s layerNorm n=%d variant %d", impl.name, n, variant)
				closeTo(t, what, dst, want, 2e-6)
				for i := range xs {
					if xs[i] != wantSum[i] {
						t.Fatalf("%s: residual sum [%d] = %v, want %v", what, i, xs[i], wantSum[i])
					}
				}
				// In place: dst aliasing x.
				xs = append(xs[:0], x...)
				impl.layerNorm(xs, xs, rr, c, g, b, 1e-5)
				closeTo(t, what+" in place", xs, want, 2e-6)
			}
		}
	}
}

// scoreRowRef is the softmax of y = float32(x·scale) + mask over the first
// lim entries, in float64, zero after lim and where every key is -Inf.
func scoreRowRef(x, mask []float32, scale float32, lim int) []float64 {
	out := make([]float64, len(x))
	mx := math.Inf(-1)
	y := make([]float64, lim)
	for j := 0; j < lim; j++ {
		v := x[j] * scale
		if mask != nil {
			v += mask[j]
		}
		y[j] = float64(v)
		mx = math.Max(mx, y[j])
	}
	if math.IsInf(mx, -1) {
		return out
	}
	var s float64
	for j := range y {
		s += math.Exp(y[j] - mx)
	}
	for j := range y {
		out[j] = math.Exp(y[j]-mx) / s
	}
	return out
}

func TestScoreRowKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	negInf := float32(math.Inf(-1))
	for _, impl := range opsImpls {
		for _, n := range append(rowSizes, 1031) {
			for _, maskKind := range []string{"none", "mixed", "all-inf", "all-finite"} {
				for _, lim := range []int{n, n / 2, 0} {
					x := randSlice(r, n)
					for i := range x {
						x[i] *= 10
					}
					var mask []float32
					if maskKind != "none" {
						mask = make([]float32, n)
						for i := range mask {
							switch {
							case maskKind == "all-inf":
								mask[i] = negInf
							case maskKind == "all-finite":
								mask[i] = -math.MaxFloat32
							case i%3 == 1:
								mask[i] = negInf
							case i%5 == 2:
								mask[i] = -math.MaxFloat32
							case i%7 == 3:
								mask[i] = float32(r.NormFloat64())
							}
						}
					}
					want := scoreRowRef(x, mask, 0.125, lim)
					got := append([]float32(nil), x...)
					inv := impl.scoreRow(got, mask, 0.125, lim)
					what := fmt.Sprintf("%s scoreRow n=%d mask %s lim %d", impl.name, n, maskKind, lim)
					for j := range got {
						g := float64(got[j]) * float64(inv)
						if math.IsNaN(g) || math.Abs(g-want[j]) > 2e-6*want[j]+1e-12 {
							t.Fatalf("%s: [%d] = %v, want %v", what, j, g, want[j])
						}
					}
					if maskKind == "all-finite" && lim > 0 && math.Abs(float64(got[0]*inv)-1/float64(lim)) > 1e-6 {
						t.Fatalf("%s: finite mask on every key should give a uniform row, got %v", what, got[0]*inv)
					}
				}
			}
		}
	}
}

// TestRowOps checks the public row operations on every implementation, on
// tensors large enough to be split over the worker pool.
func TestRowOps(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, impl := range opsImpls {
		withOps(impl, func() {
			for _, n := range []int{7, 384, 768} {
				for _, rows := range []int{1, 3, 2*minParallelElems/n + 5} {
					x, res := randSlice(r, rows*n), randSlice(r, rows*n)
					bias, g, b := randSlice(r, n), randSlice(r, n), randSlice(r, n)
					what := fmt.Sprintf("%s %dx%d", impl.name, rows, n)

					got := FromFloat32(append([]float32(nil), x...), rows, n)
					AddBias(got, FromFloat32(bias, n))
					for i, v := range got.Float32s() {
						if w := x[i] + bias[i%n]; v != w {
							t.Fatalf("%s AddBias [%d] = %v, want %v", what, i, v, w)
						}
					}
					sum := Zeros(rows, n)
					Add(sum, FromFloat32(x, rows, n), FromFloat32(res, rows, n))
					for i, v := range sum.Float32s() {
						if w := x[i] + res[i]; v != w {
							t.Fatalf("%s Add [%d] = %v, want %v", what, i, v, w)
						}
					}
					got = FromFloat32(append([]float32(nil), x...), rows, n)
					AddResidual(got, FromFloat32(res, rows, n), FromFloat32(bias, n))
					for i, v := range got.Float32s() {
						if w := x[i] + (res[i] + bias[i%n]); v != w {
							t.Fatalf("%s AddResidual [%d] = %v, want %v", what, i, v, w)
						}
					}

					got = FromFloat32(append([]float32(nil), x...), rows, n)
					normed := Zeros(rows, n)
					AddLayerNorm(normed, got, FromFloat32(res, rows, n), FromFloat32(bias, n), FromFloat32(g, n), FromFloat32(b, n), 1e-12)
					for i := 0; i < rows; i++ {
						want, wantSum := layerNormRef(x[i*n:(i+1)*n], res[i*n:(i+1)*n], bias, g, b, 1e-12)
						closeTo(t, what+" AddLayerNorm", normed.Float32s()[i*n:(i+1)*n], want, 2e-6)
						closeTo(t, what+" AddLayerNorm sum", got.Float32s()[i*n:(i+1)*n], wantSum, 0)
					}
					got = FromFloat32(append([]float32(nil), x...), rows, n)
					LayerNorm(got, got, FromFloat32(g, n), nil, 1e-12)
					for i := 0; i < rows; i++ {
						want, _ := layerNormRef(x[i*n:(i+1)*n], nil, nil, g, nil, 1e-12)
						closeTo(t, what+" LayerNorm", got.Float32s()[i*n:(i+1)*n], want, 2e-6)
					}

					got = FromFloat32(append([]float32(nil), x...), rows, n)
					GELU.ApplyBias(got, FromFloat32(bias, n))
					for i, v := range got.Float32s() {
						w := activationRefs[GELU](float64(x[i] + bias[i%n]))
						if math.Abs(float64(v)-w) > actRelTol*math.Abs(w)+actAbsTol {
							t.Fatalf("%s ApplyBias [%d] = %v, want %v", what, i, v, w)
						}
					}
				}
			}
		})
	}
}

func TestAttentionImpls(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	negInf := float32(math.Inf(-1))
	for _, impl := range opsImpls {
		withOps(impl, func() {
			for _, dh := range []int{1, 7, 16, 33} {
				for _, sq := range []int{1, 3, 9, 33, 64, 70} {
					for _, extra := range []int{0, 5} { // cached keys before the queries
						sk := sq + extra
						const batch, heads = 2, 3
						width := heads * dh
						q, k, v := randSlice(r, batch*sq*width), randSlice(r, batch*sk*width), randSlice(r, batch*sk*width)
						mask := make([]float32, batch*sk)
						mask[0] = -math.MaxFloat32 // first key of sequence 0 hidden
						for j := 0; j < sk; j++ {
							mask[sk+j] = negInf // sequence 1: every key but the last -Inf
						}
						mask[2*sk-1] = 0
						for _, causal := range []bool{false, true} {
							p := AttentionParams{
								Batch: batch, Heads: heads, HeadDim: dh, SeqQ: sq, SeqK: sk,
								QBatchStride: sq * width, QRowStride: width,
								KBatchStride: sk * width, KRowStride: width,
								VBatchStride: sk * width, VRowStride: width,
								OutBatchStride: sq * width, OutRowStride: width,
								Scale: 0.7, KeyMask: mask, Causal: causal, QOffset: extra,
							}
							out := make([]float32, batch*sq*width)
							Attention(out, q, k, v, p)
							want := attentionRef(q, k, v, p)
							if causal {
								// Sequence 1 sees only its last key, which the
								// causal mask hides from all but the last query:
								// those rows are fully -Inf and give zeros.
								for i := 0; i < sq-1; i++ {
									clear(want[(sq+i)*width : (sq+i+1)*width])
								}
							}
							closeTo(t, fmt.Sprintf("%s attention dh=%d sq=%d sk=%d causal=%v", impl.name, dh, sq, sk, causal), out, want, 2e-5)
						}
					}
				}
			}
		})
	}
}

// allocsPerRun is testing.AllocsPerRun without its switch to GOMAXPROCS 1,
// so that the multi-threaded paths are measured too.
func allocsPerRun(runs int, f func()) float64 {
	for i := 0; i < 10; i++ {
		f() // warm up the pools of every P and start the workers
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs)
}

// TestRowOpsDoNotAllocate: the row operations and attention allocate nothing
// in the steady state, on one thread and on several.
func TestRowOpsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	r := rand.New(rand.NewPCG(23, 24))
	const rows, n = 128, 384
	x, res, normed := FromFloat32(randSlice(r, rows*n), rows, n), FromFloat32(randSlice(r, rows*n), rows, n), Zeros(rows, n)
	bias, g, b := FromFloat32(randSlice(r, n), n), FromFloat32(randSlice(r, n), n), FromFloat32(randSlice(r, n), n)
	const heads, dh, ctx = 6, 64, 40
	q, k, v := randSlice(r, heads*dh), randSlice(r, ctx*heads*dh), randSlice(r, ctx*heads*dh)
	out := make([]float32, heads*dh)
	decode := AttentionParams{ // one query against a cache: GEMV products only
		Batch: 1, Heads: heads, HeadDim: dh, SeqQ: 1, SeqK: ctx,
		QBatchStride: heads * dh, QRowStride: heads * dh,
		KBatchStride: ctx * heads * dh, KRowStride: heads * dh,
		VBatchStride: ctx * heads * dh, VRowStride: heads * dh,
		OutBatchStride: heads * dh, OutRowStride: heads * dh,
		Scale: 0.125, KeyMask: make([]float32, ctx), Causal: true, QOffset: ctx - 1,
	}
	// Decoding: one more key per call, as a KV cache grows.
	const maxCtx = 400
	kk, vv := randSlice(r, maxCtx*heads*dh), randSlice(r, maxCtx*heads*dh)
	growing := decode
	growing.SeqK, growing.KeyMask = 1, nil
	growing.KBatchStride, growing.VBatchStride = maxCtx*heads*dh, maxCtx*heads*dh
	ops := map[string]func(){
		"Attention (growing)": func() {
			growing.SeqK = growing.SeqK%maxCtx + 1
			growing.QOffset = growing.SeqK - 1
			Attention(out, q, kk, vv, growing)
		},
		"AddBias":      func() { AddBias(x, bias) },
		"Add":          func() { Add(x, x, res) },
		"AddResidual":  func() { AddResidual(x, res, bias) },
		"LayerNorm":    func() { LayerNorm(normed, x, g, b, 1e-5) },
		"AddLayerNorm": func() { AddLayerNorm(normed, x, res, bias, g, b, 1e-5) },
		"ApplyBias":    func() { GELUTanh.ApplyBias(normed, bias) },
		"Apply":        func() { GELU.Apply(normed) },
		"Softmax":      func() { Softmax(normed) },
		"Attention":    func() { Attention(out, q, k, v, decode) },
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		for name, op := range ops {
			// A garbage collection empties the sync.Pools, and with several
			// Ps an item now and then lands on another P's list and is
			// missed: a few stray allocations in a hundred calls, never
			// one per call.
			if a := allocsPerRun(100, op); a > 0.2 {
				t.Errorf("GOMAXPROCS %d: %s allocates %v times per call", procs, name, a)
			}
		}
	}
}

// ReLU keeps NaN and −0 as the generic x < 0 test does, in every
// implementation and with a bias.
func TestReLUSpecialValues(t *testing.T) {
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	in := []float32{nan, negZero, -1, 2, float32(math.Inf(-1)), float32(math.Inf(1)), -3, 0, nan, 5}
	for _, impl := range opsImpls {
		for _, withBias := range []bool{false, true} {
			got := append([]float32(nil), in...)
			if withBias {
				impl.biasAct(ReLU, got, make([]float32, len(in)))
			} else {
				impl.act(ReLU, got)
			}
			for i, v := range in {
				if withBias {
					v += 0 // −0 + 0 = +0
				}
				w := v
				if v < 0 {
					w = 0
				}
				if math.Float32bits(got[i]) != math.Float32bits(w) && !(math.IsNaN(float64(w)) && math.IsNaN(float64(got[i]))) {
					t.Fatalf("%s ReLU (bias %v) of %v = %v, want %v", impl.name, withBias, v, got[i], w)
				}
			}
		}
	}
}

func TestAddRowAndScale(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, impl := range opsImpls {
		withOps(impl, func() {
			for _, n := range rowSizes {
				table := randSlice(r, 3*n)
				half := make([]uint16, len(table))
				F32ToBF16(half, table)
				widened := make([]float32, len(table))
				BF16ToF32(widened, half)
				x := randSlice(r, n)
				for _, tt := range []struct {
					tab  *Tensor
					vals []float32
				}{
					{FromFloat32(table, 3, n), table},
					{FromUint16(BF16, half, 3, n), widened},
				} {
					got := append([]float32(nil), x...)
					AddRow(got, tt.tab, 2)
					for j := range got {
						if w := x[j] + tt.vals[2*n+j]; got[j] != w {
							t.Fatalf("%s AddRow %v n=%d: [%d] = %v, want %v", impl.name, tt.tab.DType(), n, j, got[j], w)
						}
					}
				}
				got := FromFloat32(append([]float32(nil), x...), n)
				Scale(got, -1.5)
				for j, v := range got.Float32s() {
					if w := x[j] * -1.5; v != w {
						t.Fatalf("%s Scale n=%d: [%d] = %v, want %v", impl.name, n, j, v, w)
					}
				}
			}
		})
	}
}

// TestScoreRows checks each implementation's whole-block softmax numerators
// against its own row-by-row scoreRow: the same bits, for every row, with
// a zero mask, a finite one, one hiding some keys with -Inf, one hiding all,
// and zeros against no mask at all.
func TestScoreRows(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	negInf := float32(math.Inf(-1))
	for _, impl := range opsImpls {
		if impl.scoreRows == nil {
			continue
		}
		for _, n := range []int{16, 32, 128, 144} {
			for _, rows := range []int{1, 3, 9} {
				ld := n + 5
				for mi, mask := range [][]float32{make([]float32, n), randSlice(r, n), randSlice(r, n), make([]float32, n), nil} {
					switch mi {
					case 2:
						mask[0], mask[n/2], mask[n-1] = negInf, negInf, -math.MaxFloat32
					case 3:
						for j := range mask {
							mask[j] = negInf
						}
					}
					s := randSlice(r, rows*ld)
					for i := range s {
						s[i] *= 30
					}
					want := append([]float32(nil), s...)
					wantInv := make([]float32, rows)
					for i := 0; i < rows; i++ {
						wantInv[i] = impl.scoreRow(want[i*ld:i*ld+n], mask, 0.7, n)
					}
					if mask == nil { // Attention passes zeros for no mask
						mask = make([]float32, n)
					}
					got := append([]float32(nil), s...)
					gotInv := make([]float32, rows)
					if !impl.scoreRows(got, ld, rows, n, mask, 0.7, gotInv) {
						t.Fatalf("%s: scoreRows refused n=%d", impl.name, n)
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s n=%d rows=%d mask %d: value %d = %v, row by row %v", impl.name, n, rows, mi, i, got[i], want[i])
						}
					}
					for i := range gotInv {
						if math.Float32bits(gotInv[i]) != math.Float32bits(wantInv[i]) {
							t.Fatalf("%s n=%d rows=%d mask %d: inv[%d] = %v, row by row %v", impl.name, n, rows, mi, i, gotInv[i], wantInv[i])
						}
					}
				}
				if impl.scoreRows(make([]float32, 20), 20, 1, 20, make([]float32, 20), 1, make([]float32, 1)) {
					t.Fatalf("%s: scoreRows took n = 20", impl.name)
				}
			}
		}
	}
}
