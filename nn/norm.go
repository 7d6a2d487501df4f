package nn

import (
	"fmt"
	"math"
	"sync"

	"github.com/embrace-go/embrace/tensor"
)

// Norm is a normalization over the last dimension: LayerNorm (BERT, GPT-2)
// or RMSNorm (Llama, Qwen, Mistral). dst may be x itself.
type Norm interface {
	Forward(dst, x *tensor.Tensor)
}

var (
	_ Norm = (*LayerNorm)(nil)
	_ Norm = (*RMSNorm)(nil)
)

// RMSNorm scales each row by the inverse root mean square of its values and
// then by Weight (float32 [n]), as transformers' LlamaRMSNorm does in
// float32: y = weight · (x · rsqrt(mean(x²) + eps)).
type RMSNorm struct {
	Weight *tensor.Tensor
	Eps    float32
	// Threads bounds the goroutines of each call (zero: GOMAXPROCS); the
	// rows of a prompt split over them.
	Threads tensor.Threads
}

// Forward normalizes every row of x [..., n] into dst (which may be x).
func (n *RMSNorm) Forward(dst, x *tensor.Tensor) {
	w := n.Weight.Float32s()
	d := len(w)
	if x.Dim(-1) != d || dst.Len() != x.Len() {
		panic(fmt.Sprintf("nn: RMSNorm of %v into %v with weight [%d]", x.Shape(), dst.Shape(), d))
	}
	n.Rows(dst.Float32s(), x.Float32s(), d)
}

// minParallelNorm is the number of values below which a normalization stays
// on the calling goroutine: a hand-off to the pool costs a few µs, a row of
// a few hundred values well under one.
const minParallelNorm = 1 << 14

// rmsTasks recycles the bodies of parallel RMSNorm calls, so a prompt's
// norms split over the pool without allocating.
var rmsTasks = sync.Pool{New: func() any { return new(rmsTask) }}

// rmsTask normalizes rows [lo, hi) of width len(w).
type rmsTask struct {
	dst, x, w []float32
	eps       float32
}

func (t *rmsTask) Run(lo, hi int) {
	d := len(t.w)
	for r := lo; r < hi; r++ {
		rmsRow(t.dst[r*d:(r+1)*d], t.x[r*d:(r+1)*d], t.w, t.eps)
	}
}

// Rows normalizes consecutive slices of width len(Weight) of x into dst:
// every row of a matrix, or every head of a row of [heads·headDim] values
// (Qwen3's q_norm and k_norm). dst may be x.
func (n *RMSNorm) Rows(dst, x []float32, width int) {
	w := n.Weight.Float32s()
	if rows := len(x) / width; rows > 1 && len(x) >= minParallelNorm && width == len(w) {
		// Rows of a prompt: split over the worker pool.
		t := rmsTasks.Get().(*rmsTask)
		*t = rmsTask{dst: dst, x: x, w: w, eps: n.Eps}
		n.Threads.ParallelRun(rows, max(1, minParallelNorm/4/width), t)
		*t = rmsTask{}
		rmsTasks.Put(t)
		return
	}
	for o := 0; o+width <= len(x); o += width {
		rmsRow(dst[o:o+width], x[o:o+width], w, n.Eps)
	}
}

// Strided normalizes rows slices of width len(Weight) that start stride
// values apart in x, in place: the heads of one projection inside a fused
// QKV row, for instance.
func (n *RMSNorm) Strided(x []float32, rows, stride int) {
	w := n.Weight.Float32s()
	d := len(w)
	for r := 0; r < rows; r++ {
		row := x[r*stride : r*stride+d]
		rmsRow(row, row, w, n.Eps)
	}
}

// rmsRow is one row: the mean of squares accumulated in float64 then rounded
// to float32 (PyTorch's float32 mean differs by an ulp at most), the inverse
// root in float32, then two float32 products in transformers' order.
func rmsRow(dst, x, w []float32, eps float32) {
	// Four partial sums, so the additions do not wait on each other (the
	// squares are exact in float64; only the order of the sums changes).
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += float64(v[0]) * float64(v[0])
		s1 += float64(v[1]) * float64(v[1])
		s2 += float64(v[2]) * float64(v[2])
		s3 += float64(v[3]) * float64(v[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i]) * float64(x[i])
	}
	ss := (s0 + s1) + (s2 + s3)
	variance := float32(ss / float64(len(x)))
	r := float32(1 / math.Sqrt(float64(variance+eps)))
	dst, w = dst[:len(x)], w[:len(x)]
	for i, v := range x {
		dst[i] = w[i] * float32(v*r)
	}
}
