package tensor

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

func TestThreadsBound(t *testing.T) {
	p := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		th   Threads
		want int
	}{{0, p}, {1, 1}, {Threads(p), p}, {Threads(p + 5), p}, {-3, p}} {
		if got := tc.th.Count(); got != tc.want {
			t.Errorf("Threads(%d).Count() = %d, want %d (GOMAXPROCS %d)", tc.th, got, tc.want, p)
		}
	}
}

// TestThreadsOneNeverSplits runs every kind of call that can split, with
// Threads(1) and then Threads(0) on 2 processors: the first must not split
// (ParallelCalls unchanged), the second must (so the check can fail), and
// both must give the same bits.
func TestThreadsOneNeverSplits(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	rng := rand.New(rand.NewPCG(7, 7))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = rng.Float32()*2 - 1
		}
		return s
	}
	const m, k, n = 96, 130, 257
	x := FromFloat32(fill(m*k), m, k)
	w := FromFloat32(fill(n*k), n, k)
	pw, err := PackWeight(w)
	if err != nil {
		t.Fatal(err)
	}
	qw, err := QuantizeQ8(w)
	if err != nil {
		t.Fatal(err)
	}
	bw, err := PackBF16(w)
	if err != nil {
		t.Fatal(err)
	}
	gamma, beta := FromFloat32(fill(n), n), FromFloat32(fill(n), n)
	const heads, hd, seq = 4, 16, 40
	qkv := fill(2 * seq * 3 * heads * hd)
	run := func(th Threads) [][]float32 {
		var outs [][]float32
		for _, f := range []func(dst *Tensor){
			func(dst *Tensor) { th.MatMulT(dst, x, w) },
			func(dst *Tensor) { th.MatMulTPacked(dst, x, pw) },
			func(dst *Tensor) { th.MatMulTQ8(dst, x, qw) },
			func(dst *Tensor) { th.MatMulTBF16(dst, x, bw) },
			func(dst *Tensor) {
				th.MatMulT(dst, x, w)
				th.AddBias(dst, beta)
				th.ActivateBias(GELU, dst, beta)
				th.Softmax(dst)
				th.LayerNorm(dst, dst, gamma, beta, 1e-5)
				r := dst.Clone()
				th.AddLayerNorm(dst, dst, r, beta, gamma, beta, 1e-5)
				th.AddResidual(dst, r, nil)
			},
		} {
			dst := Zeros(m, n)
			f(dst)
			outs = append(outs, dst.Float32s())
		}
		d := heads * hd
		out := make([]float32, 2*seq*d)
		th.Attention(out, qkv, qkv[d:], qkv[2*d:], AttentionParams{
			Batch: 2, Heads: heads, HeadDim: hd, SeqQ: seq, SeqK: seq,
			QBatchStride: seq * 3 * d, QRowStride: 3 * d,
			KBatchStride: seq * 3 * d, KRowStride: 3 * d,
			VBatchStride: seq * 3 * d, VRowStride: 3 * d,
			OutBatchStride: seq * d, OutRowStride: d,
			Scale: 0.25, Causal: true,
		})
		return append(outs, out)
	}
	before := ParallelCalls()
	one := run(1)
	if got := ParallelCalls() - before; got != 0 {
		t.Errorf("Threads(1): %d calls split their work, want 0", got)
	}
	before = ParallelCalls()
	all := run(0)
	if ParallelCalls() == before {
		t.Errorf("Threads(0) on 2 processors: no call split its work, so the check above proves nothing")
	}
	for i := range one {
		if !slices.Equal(one[i], all[i]) {
			t.Errorf("call %d: Threads(1) and Threads(0) give different results", i)
		}
	}
}
