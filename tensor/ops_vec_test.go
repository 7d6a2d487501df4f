package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// activationRefs are the float64 definitions every kernel is held to.
var activationRefs = map[Activation]func(float64) float64{
	GELU:     func(x float64) float64 { return x * 0.5 * math.Erfc(-x/math.Sqrt2) },
	GELUTanh: func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x))) },
	ReLU:     func(x float64) float64 { return math.Max(0, x) },
	SiLU:     func(x float64) float64 { return x / (1 + math.Exp(-x)) },
	Tanh:     math.Tanh,
}

// Softmax's tolerance has a floor of 1e-12 because x−max is rounded to
// float32 first (as PyTorch does), which costs relative digits only on
// probabilities far below that.

// Tolerances of the vector kernels against the float64 definitions: relative,
// plus an absolute floor for results that are tiny (deep in a tail, where the
// float32 input's own rounding dominates).
const (
	actRelTol = 1e-6
	actAbsTol = 1e-9
)

// activationInputs is a dense sweep of [-20, 20], random values, and edge
// cases, in a length that leaves a tail.
func activationInputs() []float32 {
	var x []float32
	for i := -200000; i <= 200000; i++ {
		x = append(x, float32(i)*1e-4)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		x = append(x, float32(r.NormFloat64()*3))
	}
	for e := -40; e <= 1; e++ {
		v := float32(math.Pow(10, float64(e)))
		x = append(x, v, -v)
	}
	x = append(x, 0, float32(math.Copysign(0, -1)), 1e30, -1e30, 88, -88, 200, -200, 12.9, -12.9, 13.1, -13.1, 0.62499, 0.625, -0.625)
	return x
}

func TestActivationImpls(t *testing.T) {
	in := activationInputs()
	for _, impl := range opsImpls {
		for act := GELU; act <= Tanh; act++ {
			ref := activationRefs[act]
			got := append([]float32(nil), in...)
			impl.act(act, got)
			worst := 0.0
			for i, v := range in {
				w := ref(float64(v))
				g := float64(got[i])
				err := math.Abs(g - w)
				if math.IsNaN(g) || err > actRelTol*math.Abs(w)+actAbsTol {
					t.Fatalf("%s %v(%v) = %v, want %v (error %.3g)", impl.name, act, v, g, w, err/math.Abs(w))
				}
				if w != 0 && math.Abs(w) > 1e-3 {
					worst = max(worst, err/math.Abs(w))
				}
			}
			t.Logf("%s %v: worst relative error %.3g (|y| > 1e-3)", impl.name, act, worst)
		}
	}
}

func TestActivationSlicesAndTails(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 7, 8, 9, 15, 17, 63, 65, 1000, minParallelElems + 13} {
		x := randSlice(r, n)
		for act := GELU; act <= Tanh; act++ {
			ref := activationRefs[act]
			got := append([]float32(nil), x...)
			ActivateSlice(act, got)
			for i, v := range x {
				w := ref(float64(v))
				if e := math.Abs(float64(got[i]) - w); e > actRelTol*math.Abs(w)+actAbsTol {
					t.Fatalf("n=%d %v [%d] (%v) = %v, want %v", n, act, i, v, got[i], w)
				}
			}
		}
	}
}

func softmaxRef(row []float32) []float32 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	out := make([]float32, len(row))
	if math.IsInf(mx, -1) {
		return out
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - mx)
	}
	for j, v := range row {
		out[j] = float32(math.Exp(float64(v)-mx) / s)
	}
	return out
}

func TestSoftmaxImpls(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	negInf := float32(math.Inf(-1))
	for _, impl := range opsImpls {
		for _, n := range []int{1, 2, 7, 8, 9, 31, 128, 257, 1031} {
			for _, scale := range []float64{0.1, 3, 30, 300} {
				for _, masked := range []bool{false, true} {
					x := make([]float32, n)
					for i := range x {
						x[i] = float32(r.NormFloat64() * scale)
						if masked && i%3 == 1 {
							x[i] = negInf
						}
						if masked && i%5 == 2 {
							x[i] = -math.MaxFloat32
						}
					}
					want := softmaxRef(x)
					got := append([]float32(nil), x...)
					impl.softmaxRow(got)
					for i := range got {
						w, g := float64(want[i]), float64(got[i])
						if math.IsNaN(g) || math.Abs(g-w) > 1e-6*math.Abs(w)+1e-12 {
							t.Fatalf("%s n=%d scale=%v masked=%v: [%d] = %v, want %v", impl.name, n, scale, masked, i, g, w)
						}
					}
				}
			}
		}
		all := []float32{negInf, negInf, negInf, negInf, negInf, negInf, negInf, negInf, negInf}
		impl.softmaxRow(all)
		for _, v := range all {
			if v != 0 {
				t.Fatalf("%s: fully masked row = %v", impl.name, all)
			}
		}
		impl.softmaxRow(nil)
	}
}

func BenchmarkActivation(b *testing.B) {
	x := randSlice(rand.New(rand.NewPCG(1, 1)), 128*3072)
	for _, impl := range opsImpls {
		for act := GELU; act <= Tanh; act++ {
			b.Run(fmt.Sprintf("%s/%v", impl.name, act), func(b *testing.B) {
				d := make([]float32, len(x))
				for b.Loop() {
					copy(d, x)
					impl.act(act, d)
				}
				b.SetBytes(int64(4 * len(x)))
			})
		}
	}
}

func BenchmarkSoftmaxRow(b *testing.B) {
	x := randSlice(rand.New(rand.NewPCG(1, 1)), 128)
	for _, impl := range opsImpls {
		b.Run(impl.name, func(b *testing.B) {
			d := make([]float32, len(x))
			for b.Loop() {
				copy(d, x)
				impl.softmaxRow(d)
			}
		})
	}
}
