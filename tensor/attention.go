package tensor

import (
	"fmt"
	"sync"
)

// AttentionParams describes a multi-head scaled dot-product attention over
// row-major buffers. Element (b, i, h, d) of Q lives at
// b*QBatchStride + i*QRowStride + h*HeadDim + d; K, V and Out likewise with
// their own strides, so the fused QKV output of a layer or a KV cache with
// spare capacity can be read in place.
type AttentionParams struct {
	Batch, Heads, HeadDim int
	// KVHeads, when set, is the number of key/value heads of a
	// grouped-query attention: query head h reads K and V head
	// h / (Heads/KVHeads). 0 means Heads (one K/V head per query head).
	KVHeads    int
	SeqQ, SeqK int // query rows and key rows per sequence

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

// attnScratch is one goroutine's score rows [SeqQ, SeqK] and the softmax
// normalizers of those rows [SeqQ]; zeros stands in for a missing key mask.
type attnScratch struct {
	scores, inv, zeros []float32
}

// orZeros returns mask, or n zeros when it is nil.
func orZeros(mask []float32, ws *attnScratch, n int) []float32 {
	if mask != nil {
		return mask
	}
	if len(ws.zeros) < n {
		ws.zeros = make([]float32, max(n, 2*len(ws.zeros))) // never written
	}
	return ws.zeros[:n]
}

// scratchPool and attnTasks recycle the per-call state, so that attention
// allocates nothing in the steady state (prefill and decoding alike).
var (
	scratchPool = sync.Pool{New: func() any { return new(attnScratch) }}
	attnTasks   = sync.Pool{New: func() any { return new(attnTask) }}
)

// attnTask is the body of Attention's parallel loop over (sequence, head).
type attnTask struct {
	out, q, k, v []float32
	p            AttentionParams
}

func (t *attnTask) run(lo, hi int) {
	p := &t.p
	ws := scratchPool.Get().(*attnScratch)
	ws.scores = growGeometric(ws.scores, p.SeqQ*p.SeqK)
	ws.inv = growGeometric(ws.inv, p.SeqQ)
	for bh := lo; bh < hi; bh++ {
		attendHead(t.out, t.q, t.k, t.v, p, bh/p.Heads, bh%p.Heads, ws)
	}
	scratchPool.Put(ws)
}

// growGeometric returns s[:n], reallocating with at least double the
// capacity when s is too short: decoding asks for one more key per step,
// which must not mean a new buffer per step.
func growGeometric(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n, max(n, 2*cap(s), 64))
	}
	return s[:n]
}

// Attention computes out = softmax(Q·Kᵀ·scale + mask)·V for every sequence and
// head. The softmax follows PyTorch: a query row whose keys are all masked with
// -Inf gives zeros, while finite large-negative masks give a uniform row.
func (th Threads) Attention(out, q, k, v []float32, p AttentionParams) {
	procs := th.procs()
	if p.KVHeads == 0 {
		p.KVHeads = p.Heads
	}
	if p.Batch < 0 || p.Heads <= 0 || p.HeadDim <= 0 || p.SeqQ < 0 || p.SeqK < 0 || p.KVHeads <= 0 || p.Heads%p.KVHeads != 0 {
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
	t := attnTasks.Get().(*attnTask)
	t.out, t.q, t.k, t.v, t.p = out, q, k, v, p
	parallelRun(procs, p.Batch*p.Heads, 1, t)
	*t = attnTask{}
	attnTasks.Put(t)
}

// causalRows is the number of query rows per block of a causal attention:
// a block's products stop at its last visible key, which skips most of the
// hidden upper triangle of the scores (at 128 queries, 62% of the full
// products are computed) while the blocks stay tall enough for the
// micro-kernel.
const causalRows = 32

// attendHead computes one head of one sequence: the score rows by one
// product, each row's scale, mask and softmax numerators in one fused pass
// (scoreRow), the product with V, and the softmax normalization applied to
// the HeadDim-wide output row rather than the SeqK-wide score row. A causal
// head goes in blocks of causalRows query rows, each over the keys it sees.
func attendHead(out, q, k, v []float32, p *AttentionParams, b, h int, ws *attnScratch) {
	d := p.HeadDim
	qo := b*p.QBatchStride + h*d
	kh := h / (p.Heads / p.KVHeads)
	ko := b*p.KBatchStride + kh*d
	vo := b*p.VBatchStride + kh*d
	oo := b*p.OutBatchStride + h*d
	scores, inv := ws.scores, ws.inv
	var mask []float32
	if p.KeyMask != nil {
		mask = p.KeyMask[b*p.KeyMaskStride : b*p.KeyMaskStride+p.SeqK]
	}
	ops := opsDefault
	rows := p.SeqQ
	if p.Causal {
		rows = causalRows
	}
	for i0 := 0; i0 < p.SeqQ; i0 += rows {
		i1 := min(i0+rows, p.SeqQ)
		// Keys [0, nk) are visible to some row of the block.
		nk := p.SeqK
		if p.Causal {
			nk = min(max(i1+p.QOffset, 0), p.SeqK)
		}
		blk := scores[i0*p.SeqK:]
		// scores[i0:i1, :nk] = Q_h · K_hᵀ
		gemmF32Serial(i1-i0, nk, d, q[qo+i0*p.QRowStride:], p.QRowStride, k[ko:], p.KRowStride, true, blk, p.SeqK, false)
		if p.Causal || ops.scoreRows == nil || !ops.scoreRows(blk, p.SeqK, i1-i0, nk, orZeros(mask, ws, nk), p.Scale, inv[i0:i1]) {
			for i := i0; i < i1; i++ {
				lim := nk
				if p.Causal {
					lim = min(max(i+p.QOffset+1, 0), p.SeqK)
				}
				inv[i] = ops.scoreRow(scores[i*p.SeqK:i*p.SeqK+nk], mask, p.Scale, lim)
			}
		}
		// out[i0:i1, d] = scores[i0:i1, :nk] · V_h[:nk], then each row
		// times its 1/Σ (nk = 0 clears the rows).
		o0 := oo + i0*p.OutRowStride
		gemmF32Serial(i1-i0, d, nk, blk, p.SeqK, v[vo:], p.VRowStride, false, out[o0:], p.OutRowStride, false)
		for i := i0; i < i1; i++ {
			o := oo + i*p.OutRowStride
			ops.scale(out[o:o+d], inv[i])
		}
	}
}
