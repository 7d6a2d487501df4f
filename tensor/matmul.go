package tensor

import "fmt"

// checkMatMul returns m, k, n for dst = x·op(w), panicking on mismatched shapes.
// x may have any rank ≥ 1; its leading dimensions are flattened into rows.
func checkMatMul(op string, dst, x, w *Tensor, transB bool) (m, k, n int) {
	if x.dtype != F32 || dst.dtype != F32 {
		panic(fmt.Sprintf("tensor: %s needs float32 input and output, got %v and %v", op, x.dtype, dst.dtype))
	}
	if w.Rank() != 2 {
		panic(fmt.Sprintf("tensor: %s weight must be 2-D, got %v", op, w.shape))
	}
	k = x.Dim(-1)
	m = x.Len() / max(k, 1)
	if k == 0 {
		m = 0
	}
	wk, wn := w.shape[0], w.shape[1]
	if transB {
		wk, wn = wn, wk
	}
	if wk != k {
		panic(fmt.Sprintf("tensor: %s: input %v does not match weight %v", op, x.shape, w.shape))
	}
	n = wn
	if dst.Len() != m*n || dst.Dim(-1) != n {
		panic(fmt.Sprintf("tensor: %s: output %v, want %d rows of %d", op, dst.shape, m, n))
	}
	return m, k, n
}

// MatMulT computes dst = x·wᵀ where w is [n, k] (the layout of a PyTorch Linear
// weight [out, in]) and x is [..., k]. w may be F32, F16 or BF16; half-precision
// weights are converted inside the kernel, never upcast as a whole.
func (th Threads) MatMulT(dst, x, w *Tensor) {
	m, k, n := checkMatMul("MatMulT", dst, x, w, true)
	matmul(th.Count(), m, n, k, x.f32, w, true, dst.f32, false)
}

// MatMul computes dst = x·w where w is [k, n] (the layout of a GPT-2 Conv1D
// weight [in, out]) and x is [..., k]. w may be F32, F16 or BF16.
func (th Threads) MatMul(dst, x, w *Tensor) {
	m, k, n := checkMatMul("MatMul", dst, x, w, false)
	matmul(th.Count(), m, n, k, x.f32, w, false, dst.f32, false)
}

func matmul(procs, m, n, k int, a []float32, w *Tensor, transB bool, c []float32, acc bool) {
	ldb := w.shape[1]
	switch w.dtype {
	case F32:
		gemmF32(procs, m, n, k, a, k, w.f32, ldb, transB, c, n, acc)
	case F16:
		gemmF16(procs, m, n, k, a, k, w.u16, ldb, transB, c, n, acc)
	case BF16:
		gemmBF16(procs, m, n, k, a, k, w.u16, ldb, transB, c, n, acc)
	default:
		panic(fmt.Sprintf("tensor: matmul weight of dtype %v", w.dtype))
	}
}

// Gemm is the strided float32 matrix product behind the tensor operations, for
// callers that keep several matrices in one buffer. It computes C = A·op(B), or
// C += A·op(B) when acc. A is m×k with row stride lda. If transB, B is n×k with
// row stride ldb and op(B) = Bᵀ; otherwise B is k×n. C is m×n with row stride ldc.
func (th Threads) Gemm(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, acc bool) {
	checkGemm(m, n, k, len(a), lda, len(b), ldb, transB, len(c), ldc)
	gemmF32(th.Count(), m, n, k, a, lda, b, ldb, transB, c, ldc, acc)
}

func checkGemm(m, n, k, la, lda, lb, ldb int, transB bool, lc, ldc int) {
	need := func(rows, cols, ld int) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	bRows, bCols := k, n
	if transB {
		bRows, bCols = n, k
	}
	if m < 0 || n < 0 || k < 0 || lda < k || ldb < bCols || ldc < n ||
		la < need(m, k, lda) || lb < need(bRows, bCols, ldb) || lc < need(m, n, ldc) {
		panic(fmt.Sprintf("tensor: Gemm m=%d n=%d k=%d lda=%d ldb=%d ldc=%d does not fit buffers of %d, %d, %d",
			m, n, k, lda, ldb, ldc, la, lb, lc))
	}
}
