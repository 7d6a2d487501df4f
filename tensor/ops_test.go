package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

var oddSizes = []int{1, 3, 7, 33, 257}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func closeTo(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.Abs(g-w) > tol*(1+math.Abs(w)) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, g, w)
		}
	}
}

func TestSoftmaxLayerNormActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, rows := range []int{1, 3} {
		for _, n := range oddSizes {
			x := randSlice(r, rows*n)
			for i := range x {
				x[i] *= 30 // large logits must not overflow
			}
			want := make([]float32, len(x))
			for i := 0; i < rows; i++ {
				row := x[i*n : (i+1)*n]
				mx := math.Inf(-1)
				for _, v := range row {
					mx = math.Max(mx, float64(v))
				}
				var s float64
				for _, v := range row {
					s += math.Exp(float64(v) - mx)
				}
				for j, v := range row {
					want[i*n+j] = float32(math.Exp(float64(v)-mx) / s)
				}
			}
			got := FromFloat32(append([]float32(nil), x...), rows, n)
			Softmax(got)
			closeTo(t, "softmax", got.Float32s(), want, 1e-6)

			g, b := randSlice(r, n), randSlice(r, n)
			for i := 0; i < rows; i++ {
				row := x[i*n : (i+1)*n]
				var m, v float64
				for _, e := range row {
					m += float64(e)
				}
				m /= float64(n)
				for _, e := range row {
					v += (float64(e) - m) * (float64(e) - m)
				}
				v /= float64(n)
				for j, e := range row {
					want[i*n+j] = float32((float64(e)-m)/math.Sqrt(v+1e-5)*float64(g[j]) + float64(b[j]))
				}
			}
			ln := Zeros(rows, n)
			LayerNorm(ln, FromFloat32(x, rows, n), FromFloat32(g, n), FromFloat32(b, n), 1e-5)
			closeTo(t, "layernorm", ln.Float32s(), want, 1e-5)
		}
	}
	refs := map[Activation]func(float64) float64{
		GELU:     func(x float64) float64 { return x * 0.5 * (1 + math.Erf(x/math.Sqrt2)) },
		GELUTanh: func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x))) },
		ReLU:     func(x float64) float64 { return math.Max(0, x) },
		SiLU:     func(x float64) float64 { return x / (1 + math.Exp(-x)) },
		Tanh:     math.Tanh,
	}
	for act, ref := range refs {
		x := randSlice(r, 257)
		want := make([]float32, len(x))
		for i, v := range x {
			want[i] = float32(ref(float64(v)))
		}
		ActivateSlice(act, x)
		closeTo(t, "activation", x, want, 1e-6)
	}
}

func TestSoftmaxAllMasked(t *testing.T) {
	row := []float32{float32(math.Inf(-1)), float32(math.Inf(-1))}
	SoftmaxRow(row)
	if row[0] != 0 || row[1] != 0 {
		t.Fatalf("fully masked row = %v, want zeros", row)
	}
}

func TestHalfConversions(t *testing.T) {
	// Every half value round-trips through float32 and back.
	for h := 0; h < 1<<16; h++ {
		f := f16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := f32ToF16(f); back != uint16(h) {
			t.Fatalf("f16 %#04x -> %v -> %#04x", h, f, back)
		}
	}
	for _, c := range []struct {
		f float32
		h uint16
	}{{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00}, {5.960464477539063e-08, 0x0001}, {0.333251953125, 0x3555}} {
		if got := f32ToF16(c.f); got != c.h {
			t.Errorf("f32ToF16(%v) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	src := []float32{1, -3.140625, 1e-3}
	bf := make([]uint16, 3)
	F32ToBF16(bf, src)
	back := make([]float32, 3)
	BF16ToF32(back, bf)
	closeTo(t, "bf16", back, src, 4e-3)
}

func TestGatherAndRows(t *testing.T) {
	tab := FromFloat32([]float32{0, 1, 2, 3, 4, 5}, 3, 2)
	dst := Zeros(2, 2)
	if err := Gather(dst, tab, []int{2, 0}); err != nil {
		t.Fatal(err)
	}
	closeTo(t, "gather", dst.Float32s(), []float32{4, 5, 0, 1}, 0)
	if err := Gather(dst, tab, []int{3, 0}); err == nil {
		t.Fatal("Gather accepted an id outside the table")
	}
	h := make([]uint16, 6)
	F32ToF16(h, tab.Float32s())
	if err := Gather(dst, FromUint16(F16, h, 3, 2), []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	closeTo(t, "gather f16", dst.Float32s(), []float32{2, 3, 4, 5}, 0)
	v := tab.Rows(1, 3).Reshape(-1)
	closeTo(t, "rows", v.Float32s(), []float32{2, 3, 4, 5}, 0)
}

func TestFromBytesZeroCopyAndMisaligned(t *testing.T) {
	buf := make([]byte, 17)
	for i := range buf {
		buf[i] = byte(i)
	}
	a, err := FromBytes(F32, buf[0:16], 4)
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromBytes(F32, buf[1:17], 2, 2) // misaligned: copied
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 4 || b.Len() != 4 {
		t.Fatal("wrong lengths")
	}
	if math.Float32bits(b.Float32s()[0]) != 0x04030201 {
		t.Fatalf("misaligned decode %#x", math.Float32bits(b.Float32s()[0]))
	}
	if _, err := FromBytes(F32, buf[:15], 4); err == nil {
		t.Fatal("FromBytes accepted a short buffer")
	}
}

// attentionRef is a float64 transcription of softmax(QKᵀ·s + mask)·V.
func attentionRef(q, k, v []float32, p AttentionParams) []float32 {
	out := make([]float32, p.Batch*p.SeqQ*p.Heads*p.HeadDim)
	d := p.HeadDim
	for b := 0; b < p.Batch; b++ {
		for h := 0; h < p.Heads; h++ {
			for i := 0; i < p.SeqQ; i++ {
				sc := make([]float64, p.SeqK)
				mx := math.Inf(-1)
				for j := 0; j < p.SeqK; j++ {
					var s float64
					for e := 0; e < d; e++ {
						s += float64(q[b*p.QBatchStride+i*p.QRowStride+h*d+e]) * float64(k[b*p.KBatchStride+j*p.KRowStride+h*d+e])
					}
					s *= float64(p.Scale)
					if p.KeyMask != nil {
						s += float64(p.KeyMask[b*p.SeqK+j])
					}
					if p.Causal && j > i+p.QOffset {
						s = math.Inf(-1)
					}
					sc[j] = s
					mx = math.Max(mx, s)
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for e := 0; e < d; e++ {
					var acc float64
					for j := range sc {
						acc += sc[j] / sum * float64(v[b*p.VBatchStride+j*p.VRowStride+h*d+e])
					}
					out[(b*p.SeqQ+i)*p.Heads*d+h*d+e] = float32(acc)
				}
			}
		}
	}
	return out
}

// fusedQKVParams describes self-attention over a fused QKV buffer (rows of
// [q|k|v], seq per sequence) into an output of width heads·dh.
func fusedQKVParams(batch, heads, dh, seq int) AttentionParams {
	width := heads * dh
	return AttentionParams{
		Batch: batch, Heads: heads, HeadDim: dh, SeqQ: seq, SeqK: seq,
		QBatchStride: seq * 3 * width, QRowStride: 3 * width,
		KBatchStride: seq * 3 * width, KRowStride: 3 * width,
		VBatchStride: seq * 3 * width, VRowStride: 3 * width,
		OutBatchStride: seq * width, OutRowStride: width,
	}
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, seq := range []int{1, 7, 33} {
		for _, causal := range []bool{false, true} {
			const batch, heads, dh = 2, 3, 5
			width := heads * dh
			qkv := randSlice(r, batch*seq*3*width) // fused rows [q|k|v]
			mask := make([]float32, batch*seq)
			mask[seq-1] = -math.MaxFloat32 // hide the last key of sequence 0
			p := fusedQKVParams(batch, heads, dh, seq)
			p.Scale, p.Causal = 0.3, causal
			if seq > 1 {
				p.KeyMask = mask
			}
			out := make([]float32, batch*seq*width)
			Attention(out, qkv, qkv[width:], qkv[2*width:], p)
			want := attentionRef(qkv, qkv[width:], qkv[2*width:], p)
			closeTo(t, "attention", out, want, 1e-5)
		}
	}
}
