package tensor

// gemmF32 computes C = A·op(B), or C += A·op(B) when acc. A is m×k, row stride
// lda. If transB, B is n×k with row stride ldb (a PyTorch Linear weight
// [out,in]) and op(B) = Bᵀ; else B is k×n with row stride ldb. C is m×n, row
// stride ldc.
func gemmF32(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, acc bool) {
	parallelFor(m, 1, func(lo, hi int) {
		gemmRefF32(hi-lo, n, k, a[lo*lda:], lda, b, ldb, transB, c[lo*ldc:], ldc, acc)
	})
}

// gemmF32Serial is gemmF32 without the worker pool.
func gemmF32Serial(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, acc bool) {
	gemmRefF32(m, n, k, a, lda, b, ldb, transB, c, ldc, acc)
}

// gemmF16 is gemmF32 with B stored as IEEE half bits.
func gemmF16(m, n, k int, a []float32, lda int, b []uint16, ldb int, transB bool, c []float32, ldc int, acc bool) {
	gemmRefU16(m, n, k, a, lda, b, ldb, transB, c, ldc, acc, f16ToF32)
}

// gemmBF16 is gemmF32 with B stored as bfloat16 bits.
func gemmBF16(m, n, k int, a []float32, lda int, b []uint16, ldb int, transB bool, c []float32, ldc int, acc bool) {
	gemmRefU16(m, n, k, a, lda, b, ldb, transB, c, ldc, acc, bf16ToF32)
}
