package nn

import (
	"fmt"
	"math"

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

// Rows normalizes consecutive slices of width len(Weight) of x into dst:
// every row of a matrix, or every head of a row of [heads·headDim] values
// (Qwen3's q_norm and k_norm). dst may be x.
func (n *RMSNorm) Rows(dst, x []float32, width int) {
	w := n.Weight.Float32s()
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
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	variance := float32(ss / float64(len(x)))
	r := float32(1 / math.Sqrt(float64(variance+eps)))
	for i, v := range x {
		dst[i] = w[i] * float32(v*r)
	}
}
