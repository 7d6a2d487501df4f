package modernbert

import (
	"github.com/embrace-go/embrace/nn"
	"math"
	"sync"

	"github.com/embrace-go/embrace/tensor"
)

// newRope is ModernBertRotaryEmbedding with the default rope type: the
// shared nn.Rope at one theta.
func newRope(theta float64, headDim, maxPos int) (*nn.Rope, error) {
	return nn.NewRope(nn.RopeConfig{Type: "default", Theta: theta, HeadDim: headDim, PartialRotaryFactor: 1, MaxPositions: maxPos, Truncate: true})
}

// applyRope rotates the q and k parts of qkv [B·S, 3D] in place (q·cos +
// rotate_half(q)·sin for every head) at position s (0..S−1) within each
// sequence.
func applyRope(qkv []float32, rows, seq, heads, dh int, r *nn.Rope) {
	d := heads * dh
	for n := 0; n < rows; n++ {
		cos, sin := r.CosSin(n%seq, seq, nil)
		r.Apply(qkv[n*3*d:n*3*d+2*d], 2*heads, dh, cos, sin)
	}
}

// queryBlock is the most query rows attended together: the scores of a
// block are at most queryBlock × (keys it can see), so memory stays bounded
// by the block, never S × S, at any sequence length.
const queryBlock = 64

// attnParams describes one layer's attention over a fused QKV buffer.
type attnParams struct {
	batch, seq, heads, headDim int
	// threads bounds the goroutines (the model's LoadOptions.Threads).
	threads tensor.Threads
	// window is the sliding window (query i sees keys j with |i − j| <=
	// window), or −1 for global attention.
	window int
	// keyBias is B·S additive per-key values (0 or −MaxFloat32,
	// nn.MaskBias), or nil for all real tokens.
	keyBias []float32
}

// span is the number of keys a block of rows queries can see.
func (p *attnParams) span(rows int) int {
	if p.window < 0 {
		return p.seq
	}
	return min(p.seq, rows+2*p.window)
}

// serialFlops is tensor's threshold below which tensor.Gemm computes a
// product on the calling goroutine: attention jobs whose products stay
// under it run side by side on workers, and larger ones run one after the
// other with each product split over tensor's pool, so the two levels of
// parallelism never compete for the same threads.
const serialFlops = 1 << 18

// plan picks the query rows per job and whether jobs run on workers.
func (p *attnParams) plan() (rows int, parallel bool) {
	rows = (serialFlops - 1) / (2 * p.span(queryBlock) * p.headDim)
	if rows >= 8 { // tall enough for the matrix kernels
		return min(rows, queryBlock, p.seq), true
	}
	return min(queryBlock, p.seq), false
}

// scorePool recycles the score blocks of attention jobs; taskPool the
// per-call state of attention.
var (
	scorePool sync.Pool // *[]float32
	taskPool  = sync.Pool{New: func() any { return new(attnTask) }}
)

// attnTask is one attention call: (sequence, head, query block) jobs,
// split over tensor's worker pool.
type attnTask struct {
	out, qkv     []float32
	p            attnParams
	rows, blocks int
	jobs         int
}

// attention computes out [B·S, D] = softmax(q·kᵀ/√Dh + mask)·v per sequence
// and head from qkv [B·S, 3D] (q, k and v side by side in each row), by
// blocks of query rows over the keys they see: all of them on a global
// layer, those within the window on a sliding one. Masked keys get
// probability 0; a query that sees no real key (padding inside a window of
// padding) gets zeros. Each job, a block of one head of one sequence, has
// its pooled score block.
//
// This belongs in nn next to SelfAttention once nn has a windowed variant.
func attention(out, qkv []float32, p attnParams) {
	t := taskPool.Get().(*attnTask)
	var parallel bool
	t.out, t.qkv, t.p = out, qkv, p
	t.rows, parallel = p.plan()
	t.blocks = (p.seq + t.rows - 1) / t.rows
	t.jobs = p.batch * p.heads * t.blocks
	th := p.threads
	if !parallel {
		th = 1 // each product splits over the pool instead
	}
	th.ParallelRun(t.jobs, 1, t)
	t.out, t.qkv, t.p = nil, nil, attnParams{}
	taskPool.Put(t)
}

// Run computes jobs [lo, hi) with one pooled score block.
func (t *attnTask) Run(lo, hi int) {
	p := &t.p
	need := t.rows * p.span(t.rows)
	sp, _ := scorePool.Get().(*[]float32)
	if sp == nil || cap(*sp) < need {
		s := make([]float32, need)
		sp = &s
	}
	for j := lo; j < hi; j++ {
		bh, blk := j/t.blocks, j%t.blocks
		i0 := blk * t.rows
		attendRows(t.out, t.qkv, p, bh/p.heads, bh%p.heads, i0, min(i0+t.rows, p.seq), *sp)
	}
	scorePool.Put(sp)
}

// attendRows computes query rows [i0, i1) of head h of sequence b.
func attendRows(out, qkv []float32, p *attnParams, b, h, i0, i1 int, scratch []float32) {
	s, dh := p.seq, p.headDim
	d := p.heads * dh
	stride := 3 * d
	k0, k1 := 0, s
	if p.window >= 0 {
		k0, k1 = max(0, i0-p.window), min(s, i1-1+p.window+1)
	}
	nk := k1 - k0
	base := b * s * stride
	q := qkv[base+i0*stride+h*dh:]
	k := qkv[base+k0*stride+d+h*dh:]
	v := qkv[base+k0*stride+2*d+h*dh:]
	scores := scratch[:(i1-i0)*nk]
	// scores [i1−i0, nk] = Q_h[i0:i1] · K_h[k0:k1]ᵀ
	p.threads.Gemm(i1-i0, nk, dh, q, stride, k, stride, true, scores, nk, false)
	scale := float32(1 / math.Sqrt(float64(dh)))
	var mask []float32
	if p.keyBias != nil {
		mask = p.keyBias[b*s+k0 : b*s+k1]
	}
	inf := float32(math.Inf(-1))
	for i := i0; i < i1; i++ {
		row := scores[(i-i0)*nk : (i-i0+1)*nk]
		lo, hi := 0, nk // the keys query i sees, relative to k0
		if p.window >= 0 {
			lo, hi = max(0, i-p.window-k0), min(nk, i+p.window+1-k0)
		}
		clear(row[:lo])
		clear(row[hi:])
		vis := row[lo:hi]
		for j := range vis {
			if mask != nil && mask[lo+j] != 0 {
				vis[j] = inf // probability 0; a row of -Inf gives zeros
				continue
			}
			vis[j] *= scale
		}
		tensor.SoftmaxRow(vis)
	}
	// out[i0:i1, head h] = P · V_h[k0:k1]
	p.threads.Gemm(i1-i0, dh, nk, scores, nk, v, stride, false, out[(b*s+i0)*d+h*dh:], d, false)
}
