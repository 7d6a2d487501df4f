package modernbert

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/embrace-go/embrace/tensor"
)

// rope is one rotary embedding (ModernBertRotaryEmbedding with the default
// rope type): the cos and sin of position·inv_freq, kept for the longest
// sequence seen so far. Tables are immutable once published, so concurrent
// forwards share them without locks.
type rope struct {
	theta    float64
	headDim  int
	maxPos   int
	table    atomic.Pointer[ropeTable]
	invFreqs []float32
}

// ropeTable holds cos and sin [n, Dh/2] for positions 0..n−1 (the second
// half of a head uses the same values: the frequencies are concatenated
// twice).
type ropeTable struct {
	n        int
	cos, sin []float32
}

func newRope(theta float64, headDim, maxPos int) *rope {
	r := &rope{theta: theta, headDim: headDim, maxPos: maxPos}
	half := headDim / 2
	r.invFreqs = make([]float32, half)
	for i := range r.invFreqs {
		// As transformers computes it in float32: 1 / theta^(2i/Dh).
		e := float32(2*i) / float32(headDim)
		r.invFreqs[i] = float32(1 / float64(float32(math.Pow(theta, float64(e)))))
	}
	return r
}

// get returns a table covering n positions.
func (r *rope) get(n int) *ropeTable {
	if t := r.table.Load(); t != nil && t.n >= n {
		return t
	}
	// Round up so a stream of growing lengths builds few tables.
	size := 64
	for size < n {
		size *= 2
	}
	size = max(min(size, r.maxPos), n)
	half := r.headDim / 2
	t := &ropeTable{n: size, cos: make([]float32, size*half), sin: make([]float32, size*half)}
	for p := 0; p < size; p++ {
		for i, f := range r.invFreqs {
			a := float64(float32(p) * f) // the float32 product, as torch forms it
			t.cos[p*half+i] = float32(math.Cos(a))
			t.sin[p*half+i] = float32(math.Sin(a))
		}
	}
	r.table.Store(t)
	return t
}

// applyRope rotates the q and k parts of qkv [B·S, 3D] in place: for each
// head, x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁) over the
// head's halves, at position s (0..S−1) within each sequence.
func applyRope(qkv []float32, rows, seq, heads, dh int, t *ropeTable) {
	d := heads * dh
	half := dh / 2
	for n := 0; n < rows; n++ {
		s := n % seq
		cos, sin := t.cos[s*half:(s+1)*half], t.sin[s*half:(s+1)*half]
		row := qkv[n*3*d : n*3*d+2*d] // q then k
		for h := 0; h < 2*heads; h++ {
			x := row[h*dh : (h+1)*dh]
			x1, x2 := x[:half], x[half:]
			for i := range x1 {
				a, b := x1[i], x2[i]
				x1[i] = a*cos[i] - b*sin[i]
				x2[i] = b*cos[i] + a*sin[i]
			}
		}
	}
}

// queryBlock is the most query rows attended together: the scores of a
// block are at most queryBlock × (keys it can see), so memory stays bounded
// by the block, never S × S, at any sequence length.
const queryBlock = 64

// attnParams describes one layer's attention over a fused QKV buffer.
type attnParams struct {
	batch, seq, heads, headDim int
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
// claimed from next until none is left.
type attnTask struct {
	out, qkv     []float32
	p            attnParams
	rows, blocks int
	jobs         int
	next         atomic.Int64
	wg           sync.WaitGroup
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
	t.next.Store(0)
	workers := 1
	if parallel {
		workers = min(runtime.GOMAXPROCS(0), t.jobs)
	}
	t.wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		go t.work(true)
	}
	t.work(false)
	t.wg.Wait()
	t.out, t.qkv, t.p = nil, nil, attnParams{}
	taskPool.Put(t)
}

// work runs jobs until none is left; a helper goroutine signals wg.
func (t *attnTask) work(helper bool) {
	if helper {
		defer t.wg.Done()
	}
	p := &t.p
	need := t.rows * p.span(t.rows)
	sp, _ := scorePool.Get().(*[]float32)
	if sp == nil || cap(*sp) < need {
		s := make([]float32, need)
		sp = &s
	}
	for {
		j := int(t.next.Add(1) - 1)
		if j >= t.jobs {
			break
		}
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
	tensor.Gemm(i1-i0, nk, dh, q, stride, k, stride, true, scores, nk, false)
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
	tensor.Gemm(i1-i0, dh, nk, scores, nk, v, stride, false, out[(b*s+i0)*d+h*dh:], d, false)
}
