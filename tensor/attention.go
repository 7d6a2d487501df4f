package tensor

import (
	"fmt"
	"math"
	"sync"
)

// AttentionParams describes a multi-head scaled dot-product attention over
// row-major buffers. Element (b, i, h, d) of Q lives at
// b*QBatchStride + i*QRowStride + h*HeadDim + d; K, V and Out likewise with
// their own strides, so the fused QKV output of a layer or a KV cache with
// spare capacity can be read in place.
type AttentionParams struct {
	Batch, Heads, HeadDim int
	SeqQ, SeqK            int // query rows and key rows per sequence

	QBatchStride, QRowStride     int
	KBatchStride, KRowStride     int
	VBatchStride, VRowStride     int
	OutBatchStride, OutRowStride int

	// Scale multiplies the scores before the mask; usually 1/sqrt(HeadDim).
	Scale float32
	// KeyMask, when set, holds Batch*SeqK additive values per key (0 to attend,
	// a large negative number or -Inf to ignore), as Hugging Face builds from an
	// attention mask.
	KeyMask []float32
	// KeyMaskStride is the distance between sequences in KeyMask; 0 means SeqK.
	KeyMaskStride int
	// Causal hides keys after the query: query i (at absolute position
	// i+QOffset) sees keys 0..i+QOffset.
	Causal  bool
	QOffset int
}

// scorePool recycles score buffers so steady-state decoding does not allocate.
var scorePool = sync.Pool{New: func() any { return new([]float32) }}

// Attention computes out = softmax(Q·Kᵀ·scale + mask)·V for every sequence and
// head. The softmax follows PyTorch: a query row whose keys are all masked with
// -Inf gives zeros, while finite large-negative masks give a uniform row.
func Attention(out, q, k, v []float32, p AttentionParams) {
	if p.Batch < 0 || p.Heads <= 0 || p.HeadDim <= 0 || p.SeqQ < 0 || p.SeqK < 0 {
		panic(fmt.Sprintf("tensor: Attention with %+v", p))
	}
	if p.KeyMaskStride == 0 {
		p.KeyMaskStride = p.SeqK
	}
	if p.KeyMask != nil && (p.KeyMaskStride < p.SeqK || len(p.KeyMask) < (p.Batch-1)*p.KeyMaskStride+p.SeqK) {
		panic("tensor: Attention key mask too short")
	}
	if p.Batch == 0 || p.SeqQ == 0 {
		return
	}
	if p.SeqK == 0 {
		panic("tensor: Attention with no keys")
	}
	parallelFor(p.Batch*p.Heads, 1, func(lo, hi int) {
		bufp := scorePool.Get().(*[]float32)
		need := p.SeqQ * p.SeqK
		if cap(*bufp) < need {
			*bufp = make([]float32, need)
		}
		scores := (*bufp)[:need]
		for bh := lo; bh < hi; bh++ {
			attendHead(out, q, k, v, &p, bh/p.Heads, bh%p.Heads, scores)
		}
		scorePool.Put(bufp)
	})
}

func attendHead(out, q, k, v []float32, p *AttentionParams, b, h int, scores []float32) {
	d := p.HeadDim
	qo := b*p.QBatchStride + h*d
	ko := b*p.KBatchStride + h*d
	vo := b*p.VBatchStride + h*d
	oo := b*p.OutBatchStride + h*d
	// scores[SeqQ, SeqK] = Q_h · K_hᵀ
	gemmF32Serial(p.SeqQ, p.SeqK, d, q[qo:], p.QRowStride, k[ko:], p.KRowStride, true, scores, p.SeqK, false)
	negInf := float32(math.Inf(-1))
	for i := 0; i < p.SeqQ; i++ {
		row := scores[i*p.SeqK : (i+1)*p.SeqK]
		for j := range row {
			row[j] *= p.Scale
		}
		if p.KeyMask != nil {
			m := p.KeyMask[b*p.KeyMaskStride : b*p.KeyMaskStride+p.SeqK]
			for j := range row {
				row[j] += m[j]
			}
		}
		if p.Causal {
			for j := i + p.QOffset + 1; j < p.SeqK; j++ {
				row[j] = negInf
			}
		}
		SoftmaxRow(row)
	}
	// out[SeqQ, d] = scores · V_h
	gemmF32Serial(p.SeqQ, d, p.SeqK, scores, p.SeqK, v[vo:], p.VRowStride, false, out[oo:], p.OutRowStride, false)
}
