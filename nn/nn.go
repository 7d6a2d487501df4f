// Package nn holds the layers transformer models are built from: Linear,
// Embedding, LayerNorm and RMSNorm, feed-forward blocks (plain and gated),
// rotary position embeddings, multi-head and grouped-query attention with
// masks, and KV caches (a flat one and a paged one). Layers are plain structs of tensors; a model is a short recipe
// that wires them together. Layers hold no per-call state, so one model serves
// many goroutines at once.
//
// Shapes in comments: B batch, S sequence length, D hidden size, H heads.
package nn

import (
	"fmt"
	"math"

	"github.com/embrace-go/embrace/tensor"
)

// Linear is an affine map. With Conv1D false, W is [out, in] as in PyTorch's
// nn.Linear; with Conv1D true, W is [in, out] as in GPT-2's Conv1D. W may be
// F32, F16 or BF16; B is float32 [out] or nil.
type Linear struct {
	W      *tensor.Tensor
	B      *tensor.Tensor
	Conv1D bool
	// Threads bounds the goroutines of each product (zero: GOMAXPROCS).
	Threads tensor.Threads

	packed *tensor.PackedWeight // set by Pack; W stays for inspection
	// With a reduced precision (SetPrecision), Pack sets one of these
	// instead of packed.
	prec Precision
	q8   *tensor.Q8Weight
	bf16 *tensor.BF16Weight
}

// Pack stores the weight once in the layout the matmul kernels read, so that
// products no longer transpose or re-block it on every call. It costs a copy
// of the weight. F16 and BF16 weights stay in half precision (the kernels
// widen them as they read), so decoding streams half the bytes. Call Pack
// before the layer is shared between goroutines. With a reduced precision
// (SetPrecision), the weight is quantized or rounded instead.
func (l *Linear) Pack() error {
	if l.packed != nil || l.q8 != nil || l.bf16 != nil {
		return nil
	}
	w := l.W
	if l.Conv1D { // PackWeight takes the Linear layout [out, in]
		in, out := w.Dim(0), w.Dim(1)
		t := tensor.New(w.DType(), out, in)
		switch w.DType() {
		case tensor.F32:
			transpose(t.Float32s(), w.Float32s(), in, out)
		case tensor.F16, tensor.BF16:
			transpose(t.Uint16s(), w.Uint16s(), in, out)
		default:
			return fmt.Errorf("pack linear weight %v: unsupported dtype %v", l.W, w.DType())
		}
		w = t
	}
	if l.prec != PrecisionDefault {
		return l.packReduced(w)
	}
	p, err := tensor.PackWeight(w)
	if err != nil {
		return fmt.Errorf("pack linear weight %v: %w", l.W, err)
	}
	l.packed = p
	return nil
}

// transpose writes src [rows, cols] into dst as [cols, rows].
func transpose[T any](dst, src []T, rows, cols int) {
	for i := 0; i < rows; i++ {
		for o, v := range src[i*cols : (i+1)*cols] {
			dst[o*rows+i] = v
		}
	}
}

// In is the input width.
func (l *Linear) In() int {
	if l.Conv1D {
		return l.W.Dim(0)
	}
	return l.W.Dim(1)
}

// Out is the output width.
func (l *Linear) Out() int {
	if l.Conv1D {
		return l.W.Dim(1)
	}
	return l.W.Dim(0)
}

// Forward computes dst [..., out] = x [..., in] · W (+ B).
func (l *Linear) Forward(dst, x *tensor.Tensor) {
	l.ForwardNoBias(dst, x)
	if l.B != nil {
		l.Threads.AddBias(dst, l.B)
	}
}

// ForwardNoBias computes dst [..., out] = x [..., in] · W without adding B,
// for callers that fold the bias into the pass that follows (ForwardAct,
// LayerNorm.AddNorm, tensor.AddResidual), saving a pass over dst.
func (l *Linear) ForwardNoBias(dst, x *tensor.Tensor) {
	if l.q8 != nil {
		l.Threads.MatMulTQ8(dst, x, l.q8)
	} else if l.bf16 != nil {
		l.Threads.MatMulTBF16(dst, x, l.bf16)
	} else if l.packed != nil {
		l.Threads.MatMulTPacked(dst, x, l.packed)
	} else if l.Conv1D {
		l.Threads.MatMul(dst, x, l.W)
	} else {
		l.Threads.MatMulT(dst, x, l.W)
	}
}

// ForwardAct computes dst [..., out] = act(x [..., in] · W + B), the bias
// added in the activation's pass.
func (l *Linear) ForwardAct(dst, x *tensor.Tensor, act tensor.Activation) {
	l.ForwardNoBias(dst, x)
	if l.B != nil {
		l.Threads.ActivateBias(act, dst, l.B)
	} else {
		l.Threads.Activate(act, dst)
	}
}

// Apply returns a new tensor [..., out] = x · W (+ B).
func (l *Linear) Apply(x *tensor.Tensor) *tensor.Tensor {
	shape := append([]int(nil), x.Shape()...)
	shape[len(shape)-1] = l.Out()
	dst := tensor.Zeros(shape...)
	l.Forward(dst, x)
	return dst
}

// LayerNorm normalizes the last dimension, then scales by Weight and shifts by
// Bias (both float32 [D]; Bias may be nil).
type LayerNorm struct {
	Weight, Bias *tensor.Tensor
	Eps          float32
	// Threads bounds the goroutines of each call (zero: GOMAXPROCS).
	Threads tensor.Threads
}

// Forward writes the normalized x into dst, which may be x itself.
func (n *LayerNorm) Forward(dst, x *tensor.Tensor) {
	n.Threads.LayerNorm(dst, x, n.Weight, n.Bias, n.Eps)
}

// AddNorm is a residual connection and this norm in one pass: x += r (+
// bias, nil for none: the bias of the projection r came from without it,
// see Linear.ForwardNoBias), then dst = LayerNorm(x). dst may be x itself
// (post-norm, BERT: x = LN(x + r + b)) or another tensor (pre-norm, GPT-2:
// the residual stream x goes on and dst feeds the next sub-layer).
func (n *LayerNorm) AddNorm(dst, x, r, bias *tensor.Tensor) {
	n.Threads.AddLayerNorm(dst, x, r, bias, n.Weight, n.Bias, n.Eps)
}

// Embedding is a lookup table [vocab, D] (F32, F16 or BF16).
type Embedding struct {
	Table *tensor.Tensor
}

// Forward gathers the rows ids into dst [len(ids), D]. An id outside the table
// is an error naming it.
func (e *Embedding) Forward(dst *tensor.Tensor, ids []int) error {
	if err := tensor.Gather(dst, e.Table, ids); err != nil {
		return fmt.Errorf("embedding: %w", err)
	}
	return nil
}

// AddTo adds row id of the table to each row of x [N, D] given by ids[i], in
// place: x[i] += table[ids[i]]. Used for position and token-type embeddings.
func (e *Embedding) AddTo(x *tensor.Tensor, ids []int) error {
	rows := e.Table.Dim(0)
	d := e.Table.Dim(1)
	xs := x.Float32s()
	if len(xs) != len(ids)*d {
		return fmt.Errorf("embedding: %d ids for input %v", len(ids), x.Shape())
	}
	for i, id := range ids {
		if id < 0 || id >= rows {
			return fmt.Errorf("embedding: id %d at position %d is outside the table of %d rows", id, i, rows)
		}
		tensor.AddRow(xs[i*d:(i+1)*d], e.Table, id)
	}
	return nil
}

// MLP is the transformer feed-forward block: Down(act(Up(x))).
type MLP struct {
	Up, Down *Linear
	Act      tensor.Activation
}

// Forward computes dst [N, D] from x [N, D]; it allocates the [N, inner]
// intermediate (ForwardInto does not).
func (m *MLP) Forward(dst, x *tensor.Tensor) {
	shape := append([]int(nil), x.Shape()...)
	shape[len(shape)-1] = m.Up.Out()
	m.ForwardInto(dst, x, tensor.Zeros(shape...))
}

// ForwardInto is Forward with the intermediate h [..., inner] given by the
// caller.
func (m *MLP) ForwardInto(dst, x, h *tensor.Tensor) {
	m.Up.ForwardAct(h, x, m.Act)
	m.Down.Forward(dst, h)
}

// MaskBias turns an attention mask (1 attend, 0 ignore) of B×S into the additive
// per-key bias Hugging Face uses: 0 where attended, the most negative float32
// where not. A nil mask gives nil (attend everywhere).
func MaskBias(mask []int) []float32 {
	if mask == nil {
		return nil
	}
	return MaskBiasInto(make([]float32, len(mask)), mask)
}

// MaskBiasInto is MaskBias writing into dst (at least len(mask) long), for
// callers that reuse the buffer; it returns dst[:len(mask)], or nil for a nil
// mask.
func MaskBiasInto(dst []float32, mask []int) []float32 {
	if mask == nil {
		return nil
	}
	out := dst[:len(mask)]
	for i, m := range mask {
		out[i] = 0
		if m == 0 {
			out[i] = -math.MaxFloat32
		}
	}
	return out
}
