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
	SelfAttention(full, q, k, v, width, width, width, batch, seq, heads, dh, bias, true)

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
