package nn

import (
	"math"

	"github.com/embrace-go/embrace/tensor"
)

// SelfAttention runs multi-head scaled dot-product attention over a batch.
//
//	q, k, v: B×S rows of width ≥ H·Dh, with row stride qStride/kStride/vStride
//	         (so a fused QKV buffer can be passed three times at offsets)
//	out:     [B, S, H·Dh]
//	keyBias: B×S additive per-key bias (see MaskBias), or nil
//
// When causal, position i attends to positions ≤ i only. The heads run on
// up to th goroutines (zero: GOMAXPROCS).
func SelfAttention(th tensor.Threads, out []float32, q, k, v []float32, qStride, kStride, vStride int,
	batch, seq, heads, headDim int, keyBias []float32, causal bool) {
	width := heads * headDim
	th.Attention(out, q, k, v, tensor.AttentionParams{
		Batch: batch, Heads: heads, HeadDim: headDim, SeqQ: seq, SeqK: seq,
		QBatchStride: seq * qStride, QRowStride: qStride,
		KBatchStride: seq * kStride, KRowStride: kStride,
		VBatchStride: seq * vStride, VRowStride: vStride,
		OutBatchStride: seq * width, OutRowStride: width,
		Scale:   float32(1 / math.Sqrt(float64(headDim))),
		KeyMask: keyBias,
		Causal:  causal,
	})
}
