package tensor

import "runtime"

// Threads is how many goroutines one tensor call may run on: the calling
// goroutine and up to Threads-1 workers of the package's shared worker pool.
// Zero (or less), the default, means runtime.GOMAXPROCS(0) at the time of
// the call; a value above GOMAXPROCS counts as GOMAXPROCS, since the pool
// never runs more goroutines than the Go scheduler has processors. A model
// loaded with a thread count keeps one Threads and makes every call through
// it, so that each model in a process can be held to its share of the
// cores (a count, not an affinity: the workers are shared).
//
// The package-level functions (MatMulT, Attention, LayerNorm, ...) are the
// same calls with Threads(0).
type Threads int

// defaultProcs is the bound of the calls made at load time (packing and
// quantizing weights), which have no Threads of their own.
func defaultProcs() int { return Threads(0).Count() }

// MatMulT computes dst = x·wᵀ where w is [n, k] (the layout of a PyTorch
// Linear weight [out, in]) and x is [..., k], on up to GOMAXPROCS
// goroutines. See Threads.MatMulT.
func MatMulT(dst, x, w *Tensor) { Threads(0).MatMulT(dst, x, w) }

// MatMul computes dst = x·w where w is [k, n] (the layout of a GPT-2 Conv1D
// weight [in, out]) and x is [..., k]. See Threads.MatMul.
func MatMul(dst, x, w *Tensor) { Threads(0).MatMul(dst, x, w) }

// Gemm is the strided float32 matrix product C = A·op(B) (or C += A·op(B)).
// See Threads.Gemm.
func Gemm(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, acc bool) {
	Threads(0).Gemm(m, n, k, a, lda, b, ldb, transB, c, ldc, acc)
}

// MatMulTPacked computes dst = x·wᵀ with w packed by PackWeight. See
// Threads.MatMulTPacked.
func MatMulTPacked(dst, x *Tensor, w *PackedWeight) { Threads(0).MatMulTPacked(dst, x, w) }

// MatMulTBF16 computes dst = x·wᵀ with w packed by PackBF16. See
// Threads.MatMulTBF16.
func MatMulTBF16(dst, x *Tensor, w *BF16Weight) { Threads(0).MatMulTBF16(dst, x, w) }

// MatMulTQ8 computes dst = x·wᵀ with w quantized by QuantizeQ8. See
// Threads.MatMulTQ8.
func MatMulTQ8(dst, x *Tensor, w *Q8Weight) { Threads(0).MatMulTQ8(dst, x, w) }

// Attention computes out = softmax(Q·Kᵀ·scale + mask)·V for every sequence
// and head. See Threads.Attention.
func Attention(out, q, k, v []float32, p AttentionParams) { Threads(0).Attention(out, q, k, v, p) }

// AddBias adds bias [n] to every row of x [..., n], in place. See
// Threads.AddBias.
func AddBias(x, bias *Tensor) { Threads(0).AddBias(x, bias) }

// Add computes dst = a + b element-wise. See Threads.Add.
func Add(dst, a, b *Tensor) { Threads(0).Add(dst, a, b) }

// AddResidual computes x += r + bias in place. See Threads.AddResidual.
func AddResidual(x, r, bias *Tensor) { Threads(0).AddResidual(x, r, bias) }

// Softmax replaces each row of x [..., n] by its softmax, in place. See
// Threads.Softmax.
func Softmax(x *Tensor) { Threads(0).Softmax(x) }

// LayerNorm normalizes each row of x [..., n] into dst. See
// Threads.LayerNorm.
func LayerNorm(dst, x, gamma, beta *Tensor, eps float32) {
	Threads(0).LayerNorm(dst, x, gamma, beta, eps)
}

// AddLayerNorm computes x += r + bias, then dst = LayerNorm(x). See
// Threads.AddLayerNorm.
func AddLayerNorm(dst, x, r, bias, gamma, beta *Tensor, eps float32) {
	Threads(0).AddLayerNorm(dst, x, r, bias, gamma, beta, eps)
}

// ActivateSlice applies activation a to every element of d in place. See
// Threads.ActivateSlice.
func ActivateSlice(a Activation, d []float32) { Threads(0).ActivateSlice(a, d) }

// Count is the number of goroutines a call made with th may run on now:
// th, bounded by runtime.GOMAXPROCS(0), or GOMAXPROCS when th is zero. Code
// that splits work over its own goroutines uses it to follow the same bound.
func (th Threads) Count() int {
	p := runtime.GOMAXPROCS(0)
	if th > 0 && int(th) < p {
		return int(th)
	}
	return p
}
