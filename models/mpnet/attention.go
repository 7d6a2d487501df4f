package mpnet

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

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
	// relBias is [H, 2S−1] (see relativeBias); keyBias is B·S additive
	// per-key values (0 or −MaxFloat32, nn.MaskBias), or nil.
	relBias, keyBias []float32
}

// scorePool recycles the [S, S] score matrices of attention workers;
// taskPool the per-call state of attention.
var (
	scorePool sync.Pool // *[]float32
	taskPool  = sync.Pool{New: func() any { return new(attnTask) }}
)

// attnTask is one attention call: workers claim (sequence, head) jobs from
// next until none is left.
type attnTask struct {
	out, qkv []float32
	p        attnParams
	jobs     int
	next     atomic.Int64
	wg       sync.WaitGroup
}

// attention computes out [B·S, D] = softmax(q·kᵀ/√Dh + relBias + keyBias)·v
// per sequence and head, where qkv [B·S, 3D] holds q, k and v side by side
// in each row. Masked keys get probability 0; a query row that sees no key
// at all (a sequence of padding only) gets zeros. The caller and up to
// GOMAXPROCS−1 goroutines split the (sequence, head) pairs, each with its
// own pooled [S, S] scores.
//
// This is nn.SelfAttention with a per-head relative position bias, which
// tensor.Attention has no parameter for; it belongs in nn once nn grows an
// additive score bias.
func attention(out, qkv []float32, p attnParams) {
	t := taskPool.Get().(*attnTask)
	t.out, t.qkv, t.p, t.jobs = out, qkv, p, p.batch*p.heads
	t.next.Store(0)
	workers := min(runtime.GOMAXPROCS(0), t.jobs)
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
	sp, _ := scorePool.Get().(*[]float32)
	if sp == nil || cap(*sp) < p.seq*p.seq {
		s := make([]float32, p.seq*p.seq)
		sp = &s
	}
	for {
		j := int(t.next.Add(1) - 1)
		if j >= t.jobs {
			break
		}
		attendHead(t.out, t.qkv, p, j/p.heads, j%p.heads, (*sp)[:p.seq*p.seq])
	}
	scorePool.Put(sp)
}

// attendHead computes head h of sequence b.
func attendHead(out, qkv []float32, p *attnParams, b, h int, scores []float32) {
	s, dh := p.seq, p.headDim
	d := p.heads * dh
	stride := 3 * d
	base := b * s * stride
	q := qkv[base+h*dh:]
	k := qkv[base+d+h*dh:]
	v := qkv[base+2*d+h*dh:]
	o := out[b*s*d+h*dh:]
	// scores [S, S] = Q_h · K_hᵀ
	tensor.Gemm(s, s, dh, q, stride, k, stride, true, scores, s, false)
	scale := float32(1 / math.Sqrt(float64(dh)))
	w := 2*s - 1
	rel := p.relBias[h*w : (h+1)*w]
	var mask []float32
	if p.keyBias != nil {
		mask = p.keyBias[b*s : (b+1)*s]
	}
	for i := 0; i < s; i++ {
		row := scores[i*s : (i+1)*s]
		// rel[j − i + S − 1] for j = 0.. is rel[S−1−i ...].
		r := rel[s-1-i : 2*s-1-i]
		mx := float32(math.Inf(-1))
		for j := range row {
			if mask != nil && mask[j] != 0 {
				row[j] = float32(math.Inf(-1))
				continue
			}
			row[j] = row[j]*scale + r[j]
			mx = max(mx, row[j])
		}
		if math.IsInf(float64(mx), -1) {
			clear(row)
			continue
		}
		var sum float64
		for j, x := range row {
			e := math.Exp(float64(x - mx))
			row[j] = float32(e)
			sum += e
		}
		inv := float32(1 / sum)
		for j := range row {
			row[j] *= inv
		}
	}
	// out_h [S, Dh] = P · V_h
	tensor.Gemm(s, dh, s, scores, s, v, stride, false, o, d, false)
}
