package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/embrace-go/embrace/tensor"
)

func randTensor(r *rand.Rand, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return tensor.FromFloat32(s, shape...)
}

// TestLinearPrecision checks that a Linear packed with a reduced precision
// gives exactly the products of the tensor kernels on its weight (for a
// Conv1D, the transposed one), bias added, and that StackLinear keeps the
// precision.
func TestLinearPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const in, out, rows = 45, 37, 5
	w := randTensor(r, out, in)
	wc := tensor.New(tensor.F32, in, out) // the same weight as a Conv1D [in, out]
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			wc.Float32s()[i*out+o] = w.Float32s()[o*in+i]
		}
	}
	b := randTensor(r, out)
	x := randTensor(r, rows, in)
	for _, p := range []Precision{PrecisionQ8, PrecisionBF16} {
		want := tensor.New(tensor.F32, rows, out)
		switch p {
		case PrecisionQ8:
			q, err := tensor.QuantizeQ8(w)
			if err != nil {
				t.Fatal(err)
			}
			tensor.MatMulTQ8(want, x, q)
		case PrecisionBF16:
			pw, err := tensor.PackBF16(w)
			if err != nil {
				t.Fatal(err)
			}
			tensor.MatMulTBF16(want, x, pw)
		}
		tensor.AddBias(want, b)
		for _, l := range []*Linear{{W: w, B: b}, {W: wc, B: b, Conv1D: true}} {
			l.SetPrecision(p)
			if err := l.Pack(); err != nil {
				t.Fatal(err)
			}
			if l.Precision() != p || l.In() != in || l.Out() != out {
				t.Fatalf("%v: precision %v, in %d, out %d", p, l.Precision(), l.In(), l.Out())
			}
			got := l.Apply(x)
			for i, v := range got.Float32s() {
				if v != want.Float32s()[i] {
					t.Fatalf("%v conv1d=%v: y[%d] = %v, want %v", p, l.Conv1D, i, v, want.Float32s()[i])
				}
			}
		}
		a, c := &Linear{W: w}, &Linear{W: w}
		a.SetPrecision(p)
		st, err := StackLinear(a, c)
		if err != nil {
			t.Fatal(err)
		}
		if st.Precision() != p {
			t.Fatalf("StackLinear precision %v, want %v", st.Precision(), p)
		}
	}
	if PrecisionQ8.String() != "q8" || PrecisionBF16.String() != "bf16" || Precision(9).String() != "Precision(9)" {
		t.Fatal("Precision.String")
	}
	bad := &Linear{W: tensor.New(tensor.I32, 2, 2)}
	bad.SetPrecision(PrecisionQ8)
	if err := bad.Pack(); err == nil {
		t.Fatal("Pack quantized an int32 weight")
	}
}
