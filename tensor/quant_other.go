//go:build !amd64 || purego

package tensor

// Without assembly: the pure-Go Q8 kernel, and float32 compute for
// BF16Weight (bf16Go is kept for the tests only).
var (
	q8Impls     = []*q8Impl{q8Go}
	q8Default   = q8Go
	bf16Impls   = []*bf16Impl{bf16Go}
	bf16Default *bf16Impl
)
