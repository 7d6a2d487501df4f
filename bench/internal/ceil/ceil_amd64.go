//go:build amd64 && !purego

package ceil

import "golang.org/x/sys/cpu"

var (
	hasAVX512 = cpu.X86.HasAVX512F
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)

var fmaFlops, fmaKind = func() (float64, string) {
	switch {
	case hasAVX512:
		return 16 * 16 * 2, "avx512"
	case hasAVX2:
		return 14 * 8 * 2, "avx2"
	}
	return 16, "go"
}()

func fmaLoop(iters int) float32 {
	switch {
	case hasAVX512:
		return fma512(iters)
	case hasAVX2:
		return fma256(iters)
	}
	return fmaLoopGo(iters)
}

func readSum(s []float32) float32 {
	if !hasAVX2 || len(s) < 64 {
		return readSumGo(s)
	}
	n := len(s) &^ 63
	return readSum256(s[:n]) + readSumGo(s[n:])
}

// fma512 runs 16 vfmadd231ps zmm per iteration on 16 accumulators.
//
//go:noescape
func fma512(iters int) float32

// fma256 runs 14 vfmadd231ps ymm per iteration on 14 accumulators.
//
//go:noescape
func fma256(iters int) float32

// readSum256 sums s (len a multiple of 64) with 8 ymm accumulators.
//
//go:noescape
func readSum256(s []float32) float32
