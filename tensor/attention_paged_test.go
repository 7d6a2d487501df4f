package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// AttentionPaged over keys and values cut into pages must equal Attention
// over the same rows kept contiguous (causal, the queries at the end of the
// sequence), on short contexts and on long ones that go through the queries
// in several chunks; a padding row gives zeros.
func TestAttentionPagedMatchesAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	const heads, kvHeads, dh, ps = 6, 2, 5, 7
	w, kw := heads*dh, kvHeads*dh
	for _, tc := range []struct{ seqK, nq int }{{1, 1}, {9, 1}, {30, 4}, {6000, 1}, {6000, 40}} {
		k := randSlice(r, tc.seqK*kw)
		v := randSlice(r, tc.seqK*kw)
		q := randSlice(r, tc.nq*w)
		want := make([]float32, tc.nq*w)
		Attention(want, q, k, v, AttentionParams{Batch: 1, Heads: heads, KVHeads: kvHeads, HeadDim: dh,
			SeqQ: tc.nq, SeqK: tc.seqK, QRowStride: w, KRowStride: kw, VRowStride: kw, OutRowStride: w,
			Scale: 0.3, Causal: true, QOffset: tc.seqK - tc.nq})
		// Pages with a wider row stride than the keys need.
		stride := kw + 3
		np := (tc.seqK + ps - 1) / ps
		kp, vp := make([][]float32, np), make([][]float32, np)
		for i := range np {
			kp[i], vp[i] = make([]float32, ps*stride), make([]float32, ps*stride)
			for j := 0; j < ps && i*ps+j < tc.seqK; j++ {
				copy(kp[i][j*stride:], k[(i*ps+j)*kw:][:kw])
				copy(vp[i][j*stride:], v[(i*ps+j)*kw:][:kw])
			}
		}
		pos := make([]int, tc.nq+1)
		for i := range tc.nq {
			pos[i] = tc.seqK - tc.nq + i
		}
		pos[tc.nq] = -1
		got := make([]float32, (tc.nq+1)*w)
		for i := range got {
			got[i] = float32(math.NaN())
		}
		AttentionPaged(got, append(q, randSlice(r, w)...), kp, vp, PagedAttentionParams{
			Heads: heads, KVHeads: kvHeads, HeadDim: dh, PageSize: ps, KRowStride: stride, VRowStride: stride,
			QRowStride: w, OutRowStride: w, Pos: pos, Scale: 0.3})
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-5) {
				t.Fatalf("seqK %d nq %d: [%d] = %v, want %v", tc.seqK, tc.nq, i, got[i], want[i])
			}
		}
		for i, x := range got[tc.nq*w:] {
			if x != 0 {
				t.Fatalf("seqK %d: padding row [%d] = %v, want 0", tc.seqK, i, x)
			}
		}
	}
}
