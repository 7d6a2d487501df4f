package tensor

import (
	"math/rand/v2"
	"testing"
)

// Grouped-query attention (KVHeads < Heads) must equal plain attention over
// K and V with each shared head copied to every query head of its group.
func TestAttentionGQA(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	const batch, heads, kvHeads, dh = 2, 6, 2, 5
	group := heads / kvHeads
	for _, seq := range []int{1, 7, 33, 257} {
		for _, causal := range []bool{false, true} {
			q := randSlice(r, batch*seq*heads*dh)
			k := randSlice(r, batch*seq*kvHeads*dh)
			v := randSlice(r, batch*seq*kvHeads*dh)
			ke := make([]float32, batch*seq*heads*dh)
			ve := make([]float32, batch*seq*heads*dh)
			for row := 0; row < batch*seq; row++ {
				for h := 0; h < heads; h++ {
					src := row*kvHeads*dh + (h/group)*dh
					copy(ke[row*heads*dh+h*dh:], k[src:src+dh])
					copy(ve[row*heads*dh+h*dh:], v[src:src+dh])
				}
			}
			w, kw := heads*dh, kvHeads*dh
			p := AttentionParams{Batch: batch, Heads: heads, HeadDim: dh, SeqQ: seq, SeqK: seq,
				QBatchStride: seq * w, QRowStride: w, KBatchStride: seq * w, KRowStride: w,
				VBatchStride: seq * w, VRowStride: w, OutBatchStride: seq * w, OutRowStride: w,
				Scale: 0.4, Causal: causal}
			want := make([]float32, batch*seq*w)
			Attention(want, q, ke, ve, p)
			p.KVHeads = kvHeads
			p.KBatchStride, p.KRowStride, p.VBatchStride, p.VRowStride = seq*kw, kw, seq*kw, kw
			got := make([]float32, batch*seq*w)
			Attention(got, q, k, v, p)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("seq %d causal %v: [%d] = %v, want %v", seq, causal, i, got[i], want[i])
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Heads not a multiple of KVHeads did not panic")
		}
	}()
	Attention(make([]float32, 6), make([]float32, 6), make([]float32, 4), make([]float32, 4),
		AttentionParams{Batch: 1, Heads: 3, KVHeads: 2, HeadDim: 2, SeqQ: 1, SeqK: 1, Scale: 1})
}
