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

// attnTask is the body of Attention's parallel loop over (block of query
// rows, sequence, head). A causal attention goes in blocks of causalRows
// rows, the last (widest) blocks first, so that threads share out the heads
// evenly (SmolLM2's 9 heads over 2 threads would leave one idle for a
// ninth); otherwise a head is one item.
type attnTask struct {
	out, q, k, v []float32
	p            AttentionParams
	blocks       int // query blocks per head
}

func (t *attnTask) run(lo, hi int) {
	p := &t.p
	ws := scratchPool.Get().(*attnScratch)
	rows := p.SeqQ
	if t.blocks > 1 {
		rows = causalRows
	}
	ws.scores = growGeometric(ws.scores, rows*p.SeqK)
	ws.inv = growGeometric(ws.inv, rows)
	bh := p.Batch * p.Heads
	for it := lo; it < hi; it++ {
		blk, s := t.blocks-1-it/bh, it%bh
		i0 := blk * rows
		attendHead(t.out, t.q, t.k, t.v, p, s/p.Heads, s%p.Heads, i0, min(i0+rows, p.SeqQ), ws)
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
	procs := th.Count()
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
	t.blocks = 1
	if p.Causal {
		t.blocks = (p.SeqQ + causalRows - 1) / causalRows
	}
	parallelRun(procs, t.blocks*p.Batch*p.Heads, 1, t)
	*t = attnTask{}
	attnTasks.Put(t)
}

// causalRows is the number of query rows per block of a causal attention:
// a block's products stop at its last visible key, which skips most of the
// hidden upper triangle of the scores (at 128 queries, 62% of the full
// products are computed) while the blocks stay tall enough for the
// micro-kernel.
const causalRows = 32

// attendHead computes query rows [r0, r1) of one head of one sequence: the
// score rows by one product, each row's scale, mask and softmax numerators
// in one fused pass (scoreRow), the product with V, and the softmax
// normalization applied to the HeadDim-wide output row rather than the
// SeqK-wide score row. A causal head goes in blocks of causalRows query
// rows, each over the keys it sees. ws holds (r1−r0)·SeqK scores.
func attendHead(out, q, k, v []float32, p *AttentionParams, b, h, r0, r1 int, ws *attnScratch) {
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
	for i0 := r0; i0 < r1; i0 += rows {
		i1 := min(i0+rows, r1)
		// Keys [0, nk) are visible to some row of the block.
		nk := p.SeqK
		if p.Causal {
			nk = min(max(i1+p.QOffset, 0), p.SeqK)
		}
		blk := scores[(i0-r0)*p.SeqK:]
		// scores[i0:i1, :nk] = Q_h · K_hᵀ
		gemmF32Serial(i1-i0, nk, d, q[qo+i0*p.QRowStride:], p.QRowStride, k[ko:], p.KRowStride, true, blk, p.SeqK, false)
		if p.Causal || ops.scoreRows == nil || !ops.scoreRows(blk, p.SeqK, i1-i0, nk, orZeros(mask, ws, nk), p.Scale, inv[i0-r0:i1-r0]) {
			for i := i0; i < i1; i++ {
				lim := nk
				if p.Causal {
					lim = min(max(i+p.QOffset+1, 0), p.SeqK)
				}
				inv[i-r0] = ops.scoreRow(scores[(i-r0)*p.SeqK:(i-r0)*p.SeqK+nk], mask, p.Scale, lim)
			}
		}
		// out[i0:i1, d] = scores[i0:i1, :nk] · V_h[:nk], then each row
		// times its 1/Σ (nk = 0 clears the rows).
		o0 := oo + i0*p.OutRowStride
		gemmF32Serial(i1-i0, d, nk, blk, p.SeqK, v[vo:], p.VRowStride, false, out[o0:], p.OutRowStride, false)
		for i := i0; i < i1; i++ {
			o := oo + i*p.OutRowStride
			ops.scale(out[o:o+d], inv[i-r0])
		}
	}
}

// PagedAttentionParams describes the attention of one sequence's query rows
// over keys and values stored in pages (a paged KV cache): page i holds the
// key rows of positions [i·PageSize, (i+1)·PageSize), KRowStride values
// apart, head g of a key row at g·HeadDim; values likewise.
type PagedAttentionParams struct {
	Heads, HeadDim int
	// KVHeads is the number of key/value heads: query head h reads head
	// h / (Heads/KVHeads). 0 means Heads.
	KVHeads int
	// PageSize is the number of positions per page; KRowStride and
	// VRowStride the distance between rows within a page.
	PageSize               int
	KRowStride, VRowStride int
	// QRowStride and OutRowStride are the distances between query rows and
	// between output rows (head h of a row at h·HeadDim).
	QRowStride, OutRowStride int
	// Pos holds the position of each query row: row i sees the keys at
	// positions 0..Pos[i] (within Window), which must lie in the pages
	// given. A negative position marks a padding row, whose output is zeros.
	Pos []int
	// Window, when positive, is a sliding window: the row at position p
	// sees key j iff p − Window < j ≤ p.
	Window int
	// Scale multiplies the scores; usually 1/sqrt(HeadDim).
	Scale float32
}

// pagedScores bounds the score rows one goroutine holds at a time (query
// rows × visible keys): long contexts go through the queries in chunks.
const pagedScores = 1 << 16

// pagedTasks recycles AttentionPaged's loop bodies.
var pagedTasks = sync.Pool{New: func() any { return new(pagedTask) }}

// pagedTask is the body of AttentionPaged's loop over (head, query chunk).
type pagedTask struct {
	out, q     []float32
	kp, vp     [][]float32
	p          PagedAttentionParams
	chunk, nch int // query rows per chunk, chunks per head
}

// AttentionPaged computes out = softmax(Q·Kᵀ·Scale)·V for every query row
// and head of one sequence whose keys and values are in pages (kPages[i]
// and vPages[i] hold page i; pages no row sees may be nil). The softmax
// follows Attention's: exact maximum, exponentials and their sum over the
// visible keys, normalization applied to the output row. The work is split
// over the worker pool by head (and by chunk of query rows on long
// contexts), on up to th goroutines (zero: GOMAXPROCS); it allocates
// nothing in the steady state.
func (th Threads) AttentionPaged(out, q []float32, kPages, vPages [][]float32, p PagedAttentionParams) {
	if p.KVHeads == 0 {
		p.KVHeads = p.Heads
	}
	if p.Heads <= 0 || p.HeadDim <= 0 || p.KVHeads <= 0 || p.Heads%p.KVHeads != 0 || p.PageSize <= 0 ||
		p.KRowStride < p.KVHeads*p.HeadDim || p.VRowStride < p.KVHeads*p.HeadDim ||
		p.QRowStride < p.Heads*p.HeadDim || p.OutRowStride < p.Heads*p.HeadDim || len(kPages) != len(vPages) {
		panic(fmt.Sprintf("tensor: AttentionPaged with %+v and %d/%d pages", p, len(kPages), len(vPages)))
	}
	nq := len(p.Pos)
	if nq == 0 {
		return
	}
	maxPos := -1
	for _, x := range p.Pos {
		maxPos = max(maxPos, x)
	}
	if maxPos >= len(kPages)*p.PageSize {
		panic(fmt.Sprintf("tensor: AttentionPaged: position %d beyond %d pages of %d", maxPos, len(kPages), p.PageSize))
	}
	t := pagedTasks.Get().(*pagedTask)
	t.out, t.q, t.kp, t.vp, t.p = out, q, kPages, vPages, p
	span := min(maxPos+1, p.PageSize*len(kPages)) + p.PageSize // keys of a chunk, page-aligned
	t.chunk = max(1, min(nq, pagedScores/max(span, 1)))
	t.nch = (nq + t.chunk - 1) / t.chunk
	parallelRun(th.Count(), p.Heads*t.nch, 1, t)
	*t = pagedTask{}
	pagedTasks.Put(t)
}

// AttentionPaged is Threads(0).AttentionPaged: up to GOMAXPROCS goroutines.
func AttentionPaged(out, q []float32, kPages, vPages [][]float32, p PagedAttentionParams) {
	Threads(0).AttentionPaged(out, q, kPages, vPages, p)
}

func (t *pagedTask) run(lo, hi int) {
	ws := scratchPool.Get().(*attnScratch)
	for it := lo; it < hi; it++ {
		h, c := it/t.nch, it%t.nch
		i0 := c * t.chunk
		t.head(h, i0, min(i0+t.chunk, len(t.p.Pos)), ws)
	}
	scratchPool.Put(ws)
}

// head computes query rows [i0, i1) of head h: the scores of every row
// against the keys the chunk sees, page by page; each row's softmax
// numerators over its own visible keys; the product with V page by page;
// then each output row times its 1/Σ.
func (t *pagedTask) head(h, i0, i1 int, ws *attnScratch) {
	p := &t.p
	d, ps := p.HeadDim, p.PageSize
	pos := p.Pos[i0:i1]
	rows := i1 - i0
	// The keys some row of the chunk sees: [minKey, maxPos].
	maxPos, minKey := -1, math.MaxInt
	for _, x := range pos {
		if x < 0 {
			continue
		}
		maxPos = max(maxPos, x)
		minKey = min(minKey, windowStart(x, p.Window))
	}
	oo := h * d
	if maxPos < 0 {
		for i := range rows {
			clear(t.out[(i0+i)*p.OutRowStride+oo:][:d])
		}
		return
	}
	p0 := minKey / ps // first page
	k0 := p0 * ps     // position of the scores' first column
	nk := maxPos + 1 - k0
	ws.scores = growGeometric(ws.scores, rows*nk)
	ws.inv = growGeometric(ws.inv, rows)
	sc, inv := ws.scores, ws.inv
	kh := h / (p.Heads / p.KVHeads)
	q := t.q[i0*p.QRowStride+oo:]
	for pi := p0; pi*ps <= maxPos; pi++ {
		cnt := min(ps, maxPos+1-pi*ps)
		// sc[:, pi·ps−k0 : +cnt] = Q_h · K_pageᵀ
		gemmF32Serial(rows, cnt, d, q, p.QRowStride, t.kp[pi][kh*d:], p.KRowStride, true, sc[pi*ps-k0:], nk, false)
	}
	ops := opsDefault
	for i, x := range pos {
		row := sc[i*nk : (i+1)*nk]
		if x < 0 {
			clear(row)
			inv[i] = 0
			continue
		}
		lo := windowStart(x, p.Window) - k0
		clear(row[:lo])
		inv[i] = ops.scoreRow(row[lo:], nil, p.Scale, x+1-k0-lo)
	}
	o := t.out[i0*p.OutRowStride+oo:]
	for pi := p0; pi*ps <= maxPos; pi++ {
		cnt := min(ps, maxPos+1-pi*ps)
		// out[rows, d] (+)= P[:, page] · V_page
		gemmF32Serial(rows, d, cnt, sc[pi*ps-k0:], nk, t.vp[pi][kh*d:], p.VRowStride, false, o, p.OutRowStride, pi > p0)
	}
	for i := range rows {
		ops.scale(o[i*p.OutRowStride:][:d], inv[i])
	}
}

// windowStart is the first key position a query at position x sees.
func windowStart(x, window int) int {
	if window > 0 {
		return max(0, x-window+1)
	}
	return 0
}
