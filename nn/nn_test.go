package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/embrace-go/embrace/tensor"
)

func rnd(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func near(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// A Conv1D weight [in, out] must give the same result as the Linear [out, in]
// holding its transpose, in every storage precision.
func TestLinearLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const in, out, rows = 7, 5, 3
	w := rnd(r, out*in)
	wt := make([]float32, in*out)
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			wt[i*out+o] = w[o*in+i]
		}
	}
	b := tensor.FromFloat32(rnd(r, out), out)
	x := tensor.FromFloat32(rnd(r, rows*in), rows, in)
	lin := (&Linear{W: tensor.FromFloat32(w, out, in), B: b}).Apply(x)
	conv := (&Linear{W: tensor.FromFloat32(wt, in, out), B: b, Conv1D: true}).Apply(x)
	near(t, "conv1d vs linear", conv.Float32s(), lin.Float32s())
	want := make([]float32, rows*out)
	for i := 0; i < rows; i++ {
		for o := 0; o < out; o++ {
			s := b.Float32s()[o]
			for k := 0; k < in; k++ {
				s += x.Float32s()[i*in+k] * w[o*in+k]
			}
			want[i*out+o] = s
		}
	}
	near(t, "linear", lin.Float32s(), want)
	for _, conv1D := range []bool{false, true} {
		l := &Linear{W: tensor.FromFloat32(w, out, in), B: b}
		if conv1D {
			l = &Linear{W: tensor.FromFloat32(wt, in, out), B: b, Conv1D: true}
		}
		if err := l.Pack(); err != nil {
			t.Fatal(err)
		}
		if l.packed == nil {
			t.Fatal("Pack left an F32 weight unpacked")
		}
		near(t, "packed linear", l.Apply(x).Float32s(), want)
	}
	h := make([]uint16, len(w))
	tensor.F32ToBF16(h, w)
	wb := make([]float32, len(w))
	tensor.BF16ToF32(wb, h)
	lb := (&Linear{W: tensor.FromUint16(tensor.BF16, h, out, in), B: b}).Apply(x)
	lf := (&Linear{W: tensor.FromFloat32(wb, out, in), B: b}).Apply(x)
	near(t, "bf16 linear", lb.Float32s(), lf.Float32s())
}

// Decoding position by position through the KV cache must give what causal
// attention over the whole sequence gives, with and without left padding.
func TestKVCacheMatchesFullAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	const batch, heads, dh, seq, prompt = 2, 2, 4, 9, 4
	width := heads * dh
	q, k, v := rnd(r, batch*seq*width), rnd(r, batch*seq*width), rnd(r, batch*seq*width)
	mask := []int{0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1} // sequence 0 left-padded by 2
	bias := MaskBias(mask)
	full := make([]float32, batch*seq*width)
	SelfAttention(0, full, q, k, v, width, width, width, batch, seq, heads, dh, bias, true)

	c := NewKVCache(batch, seq+3, width)
	capBias := make([]float32, batch*c.Cap)
	for b := 0; b < batch; b++ {
		copy(capBias[b*c.Cap:], bias[b*seq:(b+1)*seq])
	}
	rows := func(src []float32, lo, hi int) []float32 { // positions [lo,hi) of every sequence, packed
		out := make([]float32, 0, batch*(hi-lo)*width)
		for b := 0; b < batch; b++ {
			out = append(out, src[(b*seq+lo)*width:(b*seq+hi)*width]...)
		}
		return out
	}
	scale := float32(1 / math.Sqrt(dh))
	step := func(lo, hi int) {
		s := hi - lo
		if err := c.Append(rows(k, lo, hi), rows(v, lo, hi), width, s); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, batch*s*width)
		c.Attend(out, rows(q, lo, hi), width, s, heads, capBias, scale)
		want := rows(full, lo, hi)
		for b := 0; b < batch; b++ {
			for i := 0; i < s; i++ {
				if mask[b*seq+lo+i] == 0 {
					continue // padded query rows carry no meaning
				}
				o := (b*s + i) * width
				near(t, "cached attention", out[o:o+width], want[o:o+width])
			}
		}
	}
	step(0, prompt)
	for p := prompt; p < seq; p++ {
		step(p, p+1)
	}
	if err := c.Append(k[:width*batch*4], v[:width*batch*4], width, 4); err == nil {
		t.Fatal("Append past capacity succeeded")
	}
}

// The fused forms (bias folded into the activation or into the residual add
// and norm) must give what the separate steps give.
func TestFusedForms(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const in, out, rows = 33, 17, 5
	for _, withBias := range []bool{true, false} {
		l := &Linear{W: tensor.FromFloat32(rnd(r, out*in), out, in)}
		if withBias {
			l.B = tensor.FromFloat32(rnd(r, out), out)
		}
		x := tensor.FromFloat32(rnd(r, rows*in), rows, in)
		for _, act := range []tensor.Activation{tensor.GELU, tensor.GELUTanh, tensor.ReLU} {
			want := l.Apply(x)
			act.Apply(want)
			got := tensor.Zeros(rows, out)
			l.ForwardAct(got, x, act)
			near(t, "ForwardAct", got.Float32s(), want.Float32s())
		}

		// Residual add and norm: x = LN(x + (r·W + B)) in one call, as
		// in three (pre-norm keeps the sum in x and writes LN elsewhere).
		norm := &LayerNorm{Weight: tensor.FromFloat32(rnd(r, out), out), Bias: tensor.FromFloat32(rnd(r, out), out), Eps: 1e-5}
		res := tensor.FromFloat32(rnd(r, rows*out), rows, out)
		proj := l.Apply(x)
		wantSum := tensor.Zeros(rows, out)
		tensor.Add(wantSum, res, proj)
		want := tensor.Zeros(rows, out)
		norm.Forward(want, wantSum)
		noBias := tensor.Zeros(rows, out)
		l.ForwardNoBias(noBias, x)
		sum := res.Clone()
		got := tensor.Zeros(rows, out)
		norm.AddNorm(got, sum, noBias, l.B)
		near(t, "AddNorm pre-norm", got.Float32s(), want.Float32s())
		near(t, "AddNorm residual", sum.Float32s(), wantSum.Float32s())
		post := res.Clone()
		norm.AddNorm(post, post, noBias, l.B)
		near(t, "AddNorm post-norm", post.Float32s(), want.Float32s())
	}

	m := &MLP{
		Up:   &Linear{W: tensor.FromFloat32(rnd(r, 19*7), 19, 7), B: tensor.FromFloat32(rnd(r, 19), 19)},
		Down: &Linear{W: tensor.FromFloat32(rnd(r, 7*19), 7, 19), B: tensor.FromFloat32(rnd(r, 7), 7)},
		Act:  tensor.GELU,
	}
	x := tensor.FromFloat32(rnd(r, 3*7), 3, 7)
	h := m.Up.Apply(x)
	m.Act.Apply(h)
	want := m.Down.Apply(h)
	got := tensor.Zeros(3, 7)
	m.Forward(got, x)
	near(t, "MLP", got.Float32s(), want.Float32s())

	buf := []float32{5, 5, 5, 5}
	bias := MaskBiasInto(buf, []int{1, 0, 1})
	if len(bias) != 3 || bias[0] != 0 || bias[1] != -math.MaxFloat32 || bias[2] != 0 {
		t.Fatalf("MaskBiasInto = %v", bias)
	}
	if MaskBiasInto(buf, nil) != nil {
		t.Fatal("MaskBiasInto of a nil mask is not nil")
	}
}
