//go:build amd64 && !purego

package tensor

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// Kernel dispatch for amd64: the CPU is examined once at start-up and the
// fastest implementation it supports becomes gemmDefault; every supported one
// stays listed in gemmImpls so the tests can force each.

var (
	gemmImpls, gemmDefault = amd64Impls()
)

func amd64Impls() ([]*gemmImpl, *gemmImpl) {
	impls := []*gemmImpl{genericImpl}
	if !(cpu.X86.HasAVX2 && cpu.X86.HasFMA) {
		return impls, genericImpl
	}
	avx2 := &gemmImpl{
		name:      "avx2",
		mr:        6,
		nr:        16,
		micro:     microWrap(microAVX2, 6, 16),
		gemvTF32:  gemvTGo[float32](gemvTF32AVX2),
		gemvTF16:  gemvTGo[uint16](gemvTF16AVX2),
		gemvTBF16: gemvTGo[uint16](gemvTBF16AVX2),
		gemvNF32:  gemvNF32AVX2Go,
		gemvNF16:  gemvNU16AVX2Go(gemvNF16AVX2),
		gemvNBF16: gemvNU16AVX2Go(gemvNBF16AVX2),
		packT8:    packTWrap(8, packTF32AVX2, packTF16AVX2, packTBF16AVX2),
		convF16:   convU16AVX2Go(convF16AVX2, F16ToF32),
		convBF16:  convU16AVX2Go(convBF16AVX2, convBF16Generic),
		gemvP:     gemvPGo[float32](gemvP16AVX2, 16),
		gemvPF16:  gemvPGo[uint16](gemvPH16AVX2, 16),
		gemvPBF16: gemvPGo[uint16](gemvPB16AVX2, 16),
	}
	impls = append(impls, avx2)
	best := avx2
	if cpu.X86.HasAVX512F {
		// Same GEMV and packing; an 8×32 zmm micro-kernel (16 accumulators
		// hide the FMA latency on two ports; 8 rows split 128 evenly).
		avx512 := *avx2
		avx512.name = "avx512"
		avx512.mr = 8
		avx512.nr = 32
		avx512.micro = microWrap(microAVX512, 8, 32)
		avx512.gemvP = gemvPGo[float32](gemvPZF32, 32)
		avx512.gemvTF32 = gemvTGo[float32](gemvTF32AVX512)
		avx512.gemvTF16 = gemvTGo[uint16](gemvTF16AVX512)
		avx512.gemvTBF16 = gemvTBF16Z
		avx512.gemvPF16 = gemvPGo[uint16](gemvPZF16, 32)
		avx512.packT16 = packTWrap(16, packTF32AVX512, packTF16AVX512, packTBF16AVX512)
		avx512.gemvPBF16 = gemvPGo[uint16](gemvPZBF16, 32)
		impls = append(impls, &avx512)
		best = &avx512
	}
	return impls, best
}

// microWrap adapts an assembly micro-kernel to gemmImpl.micro, checking the
// extents that the assembly trusts.
func microWrap(k func(kc int, a *float32, lda int, b, c *float32, ldc int, acc bool, pf uintptr, pfRun, pfSkip int), mr, nr int) func(kc int, a []float32, lda int, bp, c []float32, ldc int, acc bool, pf prefetch) {
	return func(kc int, a []float32, lda int, bp, c []float32, ldc int, acc bool, pf prefetch) {
		_ = a[(mr-1)*lda+kc-1]
		_ = bp[nr*kc-1]
		_ = c[(mr-1)*ldc+nr-1]
		k(kc, &a[0], lda, &bp[0], &c[0], ldc, acc, pf.addr, pf.run, pf.skip)
	}
}

// gemvPGo adapts a packed-sliver GEMV kernel (F32 or half slivers),
// checking the extents the assembly trusts.
func gemvPGo[T float32 | uint16](kern func(kc int, x *float32, b unsafe.Pointer, y *float32, acc bool), nr int) func(x []float32, bp []T, y []float32, acc bool) {
	return func(x []float32, bp []T, y []float32, acc bool) {
		kc := len(x)
		if kc == 0 {
			if !acc {
				clear(y[:nr])
			}
			return
		}
		_ = bp[kc*nr-1]
		_ = y[nr-1]
		kern(kc, &x[0], unsafe.Pointer(&bp[0]), &y[0], acc)
	}
}

// gemvTGo adapts a gemvT kernel (F32 or half weights), checking the extents
// the assembly trusts. With nothing to sum it only clears y (when !acc).
func gemvTGo[T float32 | uint16](kern func(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32, acc bool)) func(n, k int, x []float32, b []T, ldb int, y []float32, acc bool) {
	return func(n, k int, x []float32, b []T, ldb int, y []float32, acc bool) {
		if gemvTCheck(n, k, x, b, ldb, y, acc) {
			kern(n, k, &x[0], unsafe.Pointer(&b[0]), ldb, &y[0], acc)
		}
	}
}

// gemvTCheck checks the extents a gemvT kernel trusts (panicking like a
// slice index when they are short) and reports whether there is anything to
// sum; when not, it clears y unless acc.
func gemvTCheck[T float32 | uint16](n, k int, x []float32, b []T, ldb int, y []float32, acc bool) bool {
	if n == 0 || k == 0 {
		if !acc {
			clear(y[:n])
		}
		return false
	}
	_ = x[k-1]
	_ = b[(n-1)*ldb+k-1]
	_ = y[n-1]
	return true
}

// gemvTBF16Z is gemvTBF16 through the zmm kernel, which wants x
// de-interleaved over its steps of 32: per 32 values of k, the 16 at even k,
// then the 16 at odd k, and the tail of fewer than 32 as it is. K goes in
// segments of gemvTSeg so that the rearranged x fits on the stack.
func gemvTBF16Z(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool) {
	if !gemvTCheck(n, k, x, b, ldb, y, acc) {
		return
	}
	// xs starts on a cache line: the kernel reads it 64 bytes at a time,
	// two loads per line of weights, and a stack array is only 8-byte
	// aligned (loads split over two lines made this kernel a third slower
	// than the IEEE-half one, which reads x in place).
	var xbuf [gemvTSeg + 16]float32
	a := int(uintptr(unsafe.Pointer(&xbuf[0]))&63) / 4
	xs := xbuf[(16-a)%16:][:gemvTSeg]
	for p0 := 0; p0 < k; p0 += gemvTSeg {
		seg := x[p0:min(p0+gemvTSeg, k)]
		full := len(seg) &^ 31
		for q := 0; q < full; q += 32 {
			for i := 0; i < 16; i++ {
				xs[q+i] = seg[q+2*i]
				xs[q+16+i] = seg[q+2*i+1]
			}
		}
		copy(xs[full:], seg[full:])
		gemvTBF16AVX512(n, len(seg), &xs[0], unsafe.Pointer(&b[p0]), ldb, &y[0], acc || p0 > 0)
	}
}

// gemvTSeg is the segment of k of gemvTBF16Z (a multiple of 32).
const gemvTSeg = 2048

func gemvNF32AVX2Go(n, k int, x, b []float32, ldb int, y []float32, acc bool) {
	if !acc {
		clear(y[:n])
	}
	if n == 0 || k == 0 {
		return
	}
	_ = x[k-1]
	_ = b[(k-1)*ldb+n-1]
	_ = y[n-1]
	gemvNF32AVX2(n, k, &x[0], unsafe.Pointer(&b[0]), ldb, &y[0])
}

func gemvNU16AVX2Go(kern func(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32)) func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool) {
	return func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool) {
		if !acc {
			clear(y[:n])
		}
		if n == 0 || k == 0 {
			return
		}
		_ = x[k-1]
		_ = b[(k-1)*ldb+n-1]
		_ = y[n-1]
		kern(n, k, &x[0], unsafe.Pointer(&b[0]), ldb, &y[0])
	}
}

// packTWrap adapts the transposing pack kernels for rows rows of B at a time
// (see gemmImpl.packT8), checking the extents that the assembly trusts.
func packTWrap(rows int, f32, f16, bf16 func(kc int, b unsafe.Pointer, ldb int, dst *float32, nr int)) func(kc int, b bMat, off int, dst []float32, nr int) int {
	return func(kc int, b bMat, off int, dst []float32, nr int) int {
		kcr := kc - kc%rows
		if kcr == 0 {
			return 0
		}
		_ = dst[(kcr-1)*nr+rows-1]
		last := off + (rows-1)*b.ld + kcr - 1
		switch {
		case b.f32 != nil:
			_ = b.f32[last]
			f32(kcr, unsafe.Pointer(&b.f32[off]), b.ld, &dst[0], nr)
		case b.bf16:
			_ = b.u16[last]
			bf16(kcr, unsafe.Pointer(&b.u16[off]), b.ld, &dst[0], nr)
		default:
			_ = b.u16[last]
			f16(kcr, unsafe.Pointer(&b.u16[off]), b.ld, &dst[0], nr)
		}
		return kcr
	}
}

func convU16AVX2Go(kern func(dst *float32, src *uint16, n int), tail func(dst []float32, src []uint16)) func(dst []float32, src []uint16) {
	return func(dst []float32, src []uint16) {
		n := len(src) &^ 7
		if n > 0 {
			_ = dst[n-1]
			kern(&dst[0], &src[0], n)
		}
		tail(dst[n:len(src)], src[n:])
	}
}

//go:noescape
func microAVX2(kc int, a *float32, lda int, b, c *float32, ldc int, acc bool, pf uintptr, pfRun, pfSkip int)

//go:noescape
func microAVX512(kc int, a *float32, lda int, b, c *float32, ldc int, acc bool, pf uintptr, pfRun, pfSkip int)

//go:noescape
func gemvTF32AVX2(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32, acc bool)

//go:noescape
func gemvTF16AVX2(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32, acc bool)

//go:noescape
func gemvTBF16AVX2(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32, acc bool)

//go:noescape
func gemvNF32AVX2(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32)

//go:noescape
func gemvNF16AVX2(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32)

//go:noescape
func gemvNBF16AVX2(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32)

//go:noescape
func packTF32AVX2(kc int, b unsafe.Pointer, ldb int, dst *float32, nr int)

//go:noescape
func packTF16AVX2(kc int, b unsafe.Pointer, ldb int, dst *float32, nr int)

//go:noescape
func packTBF16AVX2(kc int, b unsafe.Pointer, ldb int, dst *float32, nr int)

//go:noescape
func packTF32AVX512(kc int, b unsafe.Pointer, ldb int, dst *float32, nr int)

//go:noescape
func packTF16AVX512(kc int, b unsafe.Pointer, ldb int, dst *float32, nr int)

//go:noescape
func packTBF16AVX512(kc int, b unsafe.Pointer, ldb int, dst *float32, nr int)

//go:noescape
func convF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func convBF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func gemvP16AVX2(kc int, x *float32, b unsafe.Pointer, y *float32, acc bool)

//go:noescape
func gemvPH16AVX2(kc int, x *float32, b unsafe.Pointer, y *float32, acc bool)

//go:noescape
func gemvPB16AVX2(kc int, x *float32, b unsafe.Pointer, y *float32, acc bool)

//go:noescape
func gemvPZF32(kc int, x *float32, b unsafe.Pointer, y *float32, acc bool)

//go:noescape
func gemvPZF16(kc int, x *float32, b unsafe.Pointer, y *float32, acc bool)

//go:noescape
func gemvPZBF16(kc int, x *float32, b unsafe.Pointer, y *float32, acc bool)

//go:noescape
func gemvTF32AVX512(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32, acc bool)

//go:noescape
func gemvTF16AVX512(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32, acc bool)

//go:noescape
func gemvTBF16AVX512(n, k int, x *float32, b unsafe.Pointer, ldb int, y *float32, acc bool)
