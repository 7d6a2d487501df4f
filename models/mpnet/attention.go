package mpnet

import (
	"math"
	"sync"

	"github.com/embrace-go/embrace/tensor"
)

// RelativeBucket is modeling_mpnet.py's relative_position_bucket with its
// fixed parameters (32 buckets, max distance 128) for the relative position
// rel = key position − query position. Half the buckets are for keys at or
// before the query (0..15) and half for keys after it (16..31); within a
// half, distances below 8 have a bucket each and longer ones share
// log-spaced buckets up to the last.
func RelativeBucket(rel int) int {
	const half = RelativeBuckets / 2
	const exact = half / 2
	n, ret := -rel, 0
	if n < 0 {
		ret, n = half, -n
	}
	if n < exact {
		return ret + n
	}
	// The same float32 steps as torch: log(n/exact) / log(max/exact) ·
	// (half − exact), truncated.
	l := float32(math.Log(float64(float32(n) / exact)))
	v := exact + int(l/float32(math.Log(float64(RelativeMaxDistance)/exact))*(half-exact))
	return ret + min(v, half-1)
}

// relativeBias fills dst [H, 2S−1] with the bias each head adds to a score
// at relative position rel = j − i ∈ [−(S−1), S−1] (index rel + S − 1),
// from table [buckets, H]: what compute_position_bias gathers into an
// [H, S, S] tensor, kept per distance since it depends on nothing else.
func relativeBias(dst, table []float32, heads, seq int) []float32 {
	w := 2*seq - 1
	dst = dst[:heads*w]
	for r := -(seq - 1); r < seq; r++ {
		row := table[RelativeBucket(r)*heads:]
		for h := 0; h < heads; h++ {
			dst[h*w+r+seq-1] = row[h]
		}
	}
	return dst
}

// attnParams describes one layer's attention over a fused QKV buffer.
type attnParams struct {
	batch, seq, heads, headDim int
	// threads bounds the goroutines (the model's LoadOptions.Threads).
	threads tensor.Threads
	// relBias is [H, 2S−1] (see relativeBias); keyBias is B·S additive
	// per-key values (0 or −MaxFloat32, nn.MaskBias), or nil.
	relBias, keyBias []float32
}

// serialFlops is tensor's threshold below which tensor.Gemm computes a
// product on the calling goroutine: attention jobs whose products stay
// under it run side by side on workers, and larger ones run one after the
// other with each product split over tensor's pool, so the two levels of
// parallelism never compete for the same threads.
const serialFlops = 1 << 18

// plan picks the query rows per job and whether jobs run on workers.
func (p *attnParams) plan() (rows int, parallel bool) {
	rows = (serialFlops - 1) / (2 * p.seq * p.headDim)
	if rows >= 8 { // tall enough for the matrix kernels
		return min(rows, p.seq), true
	}
	return min(64, p.seq), false
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

// attention computes out [B·S, D] = softmax(q·kᵀ/√Dh + relBias + keyBias)·v
// per sequence and head, where qkv [B·S, 3D] holds q, k and v side by side
// in each row. Masked keys get probability 0; a query row that sees no key
// at all (a sequence of padding only) gets zeros. Work goes in jobs of a
// block of query rows of one head of one sequence, each with its pooled
// [rows, S] scores.
//
// This is nn.SelfAttention with a per-head relative position bias, which
// tensor.Attention has no parameter for; it belongs in nn once nn grows an
// additive score bias.
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
	need := t.rows * p.seq
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
	base := b * s * stride
	q := qkv[base+i0*stride+h*dh:]
	k := qkv[base+d+h*dh:]
	v := qkv[base+2*d+h*dh:]
	scores := scratch[:(i1-i0)*s]
	// scores [i1−i0, S] = Q_h[i0:i1] · K_hᵀ
	p.threads.Gemm(i1-i0, s, dh, q, stride, k, stride, true, scores, s, false)
	scale := float32(1 / math.Sqrt(float64(dh)))
	w := 2*s - 1
	rel := p.relBias[h*w : (h+1)*w]
	var mask []float32
	if p.keyBias != nil {
		mask = p.keyBias[b*s : (b+1)*s]
	}
	inf := float32(math.Inf(-1))
	for i := i0; i < i1; i++ {
		row := scores[(i-i0)*s : (i-i0+1)*s]
		r := rel[s-1-i : 2*s-1-i] // r[j] = bias at relative position j − i
		for j := range row {
			if mask != nil && mask[j] != 0 {
				row[j] = inf // probability 0; a row of -Inf gives zeros
				continue
			}
			row[j] = row[j]*scale + r[j]
		}
		tensor.SoftmaxRow(row)
	}
	// out[i0:i1, head h] = P · V_h
	p.threads.Gemm(i1-i0, dh, s, scores, s, v, stride, false, out[(b*s+i0)*d+h*dh:], d, false)
}
