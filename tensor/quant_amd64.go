//go:build amd64 && !purego

package tensor

import "golang.org/x/sys/cpu"

// Dispatch of the reduced-precision kernels on amd64, by CPU feature: the
// Q8 kernel uses VPDPBUSD on zmm registers where AVX512_VNNI is present,
// else its VEX form on ymm registers where AVX-VNNI is (Alder Lake and later
// client cores: no AVX-512), else VPMADDUBSW with AVX2; BF16 compute uses
// VDPBF16PS where AVX512_BF16 is; every supported kernel stays listed so the
// tests can force each.

var (
	q8Impls, q8Default     = q8AMD64()
	bf16Impls, bf16Default = bf16AMD64()
)

func q8AMD64() ([]*q8Impl, *q8Impl) {
	impls, best := []*q8Impl{q8Go}, q8Go
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		best = &q8Impl{name: "avx2", quant: quantizeRowQ8AVX2, tile: q8TileAVX2}
		impls = append(impls, best)
		if cpu.X86.HasAVXVNNI {
			best = &q8Impl{name: "avxvnni", quant: quantizeRowQ8AVX2, tile: q8TileAVXVNNI}
			impls = append(impls, best)
		}
	}
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VNNI {
		best = &q8Impl{name: "avx512vnni", quant: quantizeRowQ8Z, tile: q8TileVNNI, tile2: q8Tile2VNNI}
		impls = append(impls, best)
	}
	return impls, best
}

// q8TileAVX2 checks the extents the assembly trusts and runs the AVX2
// kernel two rows at a time (its registers hold no more).
func q8TileAVX2(mr, kb int, xq []byte, dx []float32, w []byte, y []float32, ldy int) {
	_ = xq[mr*kb*Q8Block-1]
	_ = dx[mr*kb-1]
	_ = w[kb*q8BlockBytes-1]
	_ = y[(mr-1)*ldy+q8NR-1]
	for i := 0; i < mr; i += 2 {
		k := q8AVX22
		if mr-i == 1 {
			k = q8AVX21
		}
		k(kb, &xq[i*kb*Q8Block], &dx[i*kb], &w[0], &y[i*ldy], ldy)
	}
}

var q8AVXVNNIKernels = [3]func(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int){
	q8AVXVNNI1, q8AVXVNNI2, q8AVXVNNI3,
}

// q8TileAVXVNNI checks the extents the assembly trusts and runs the AVX-VNNI
// kernel three rows at a time (the 16 ymm registers hold no more).
func q8TileAVXVNNI(mr, kb int, xq []byte, dx []float32, w []byte, y []float32, ldy int) {
	_ = xq[mr*kb*Q8Block-1]
	_ = dx[mr*kb-1]
	_ = w[kb*q8BlockBytes-1]
	_ = y[(mr-1)*ldy+q8NR-1]
	for i := 0; i < mr; i += 3 {
		q8AVXVNNIKernels[min(3, mr-i)-1](kb, &xq[i*kb*Q8Block], &dx[i*kb], &w[0], &y[i*ldy], ldy)
	}
}

func bf16AMD64() ([]*bf16Impl, *bf16Impl) {
	impls := []*bf16Impl{bf16Go}
	if !(cpu.X86.HasAVX512F && cpu.X86.HasAVX512BF16) {
		return impls, nil
	}
	z := &bf16Impl{name: "avx512bf16", conv: convBF16Z, micro: bf16MicroZ}
	return append(impls, z), z
}

var q8VNNIKernels = [q8MR]func(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int){
	q8VNNI1, q8VNNI2, q8VNNI3, q8VNNI4, q8VNNI5, q8VNNI6, q8VNNI7, q8VNNI8,
}

// q8TileVNNI checks the extents the assembly trusts and calls the kernel
// for mr rows.
func q8TileVNNI(mr, kb int, xq []byte, dx []float32, w []byte, y []float32, ldy int) {
	_ = xq[mr*kb*Q8Block-1]
	_ = dx[mr*kb-1]
	_ = w[kb*q8BlockBytes-1]
	_ = y[(mr-1)*ldy+q8NR-1]
	q8VNNIKernels[mr-1](kb, &xq[0], &dx[0], &w[0], &y[0], ldy)
}

// quantizeRowQ8Z is quantizeRowQ8 with the whole blocks of x in assembly.
func quantizeRowQ8Z(xq []byte, dx []float32, x []float32) {
	nb := len(x) / Q8Block
	if nb > 0 {
		_ = xq[nb*Q8Block-1]
		_ = dx[nb-1]
		q8QuantZ(nb, &x[0], &xq[0], &dx[0])
	}
	quantizeRowQ8(xq[nb*Q8Block:], dx[nb:], x[nb*Q8Block:])
}

// quantizeRowQ8AVX2 is quantizeRowQ8 with the whole blocks of x in AVX2
// assembly.
func quantizeRowQ8AVX2(xq []byte, dx []float32, x []float32) {
	nb := len(x) / Q8Block
	if nb > 0 {
		_ = xq[nb*Q8Block-1]
		_ = dx[nb-1]
		q8QuantAVX2(nb, &x[0], &xq[0], &dx[0])
	}
	quantizeRowQ8(xq[nb*Q8Block:], dx[nb:], x[nb*Q8Block:])
}

// convBF16Z is F32ToBF16 with whole groups of 16 in assembly.
func convBF16Z(dst []uint16, src []float32) {
	n := len(src) &^ 15
	if n > 0 {
		_ = dst[n-1]
		bf16ConvZ(n, &src[0], &dst[0])
	}
	F32ToBF16(dst[n:len(src)], src[n:])
}

var q8VNNI2SKernels = [q8MR2]func(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int){
	q8VNNI2S1, q8VNNI2S2, q8VNNI2S3, q8VNNI2S4, q8VNNI2S5, q8VNNI2S6,
}

// q8Tile2VNNI checks the extents the assembly trusts and calls the
// two-sliver kernel for mr rows.
func q8Tile2VNNI(mr, kb int, xq []byte, dx []float32, w []byte, y []float32, ldy int) {
	_ = xq[mr*kb*Q8Block-1]
	_ = dx[mr*kb-1]
	_ = w[2*kb*q8BlockBytes-1]
	_ = y[(mr-1)*ldy+2*q8NR-1]
	q8VNNI2SKernels[mr-1](kb, &xq[0], &dx[0], &w[0], &y[0], ldy)
}

var bf16MicroKernels = [bf16MR]func(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool){
	bf16Micro1, bf16Micro2, bf16Micro3, bf16Micro4, bf16Micro5, bf16Micro6, bf16Micro7, bf16Micro8,
}

// bf16MicroZ checks the extents the assembly trusts and calls the kernel
// for mr rows.
func bf16MicroZ(mr, kp int, a []uint16, lda int, b []uint16, c []float32, ldc int, acc bool) {
	_ = a[(mr-1)*lda+2*kp-1]
	_ = b[2*kp*bf16NR-1]
	_ = c[(mr-1)*ldc+bf16NR-1]
	bf16MicroKernels[mr-1](kp, &a[0], lda, &b[0], &c[0], ldc, acc)
}

//go:noescape
func q8VNNI1(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI2(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI3(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI4(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI5(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI6(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI7(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI8(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func bf16Micro1(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)

//go:noescape
func bf16Micro2(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)

//go:noescape
func bf16Micro3(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)

//go:noescape
func bf16Micro4(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)

//go:noescape
func bf16Micro5(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)

//go:noescape
func bf16Micro6(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)

//go:noescape
func bf16Micro7(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)

//go:noescape
func bf16Micro8(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)

//go:noescape
func q8QuantZ(nb int, x *float32, xq *byte, dx *float32)

//go:noescape
func bf16ConvZ(n int, src *float32, dst *uint16)

//go:noescape
func q8AVX21(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8AVX22(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI2S1(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI2S2(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI2S3(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI2S4(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI2S5(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8VNNI2S6(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8AVXVNNI1(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8AVXVNNI2(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8AVXVNNI3(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)

//go:noescape
func q8QuantAVX2(nb int, x *float32, xq *byte, dx *float32)
