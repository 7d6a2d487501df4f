package main

import "fmt"

// The reduced-precision kernels of tensor/quant_amd64.s: the Q8 tile kernel
// for AVX-512 VNNI (VPDPBUSD), AVX-VNNI (its VEX form) and AVX2, and the
// BF16-compute micro-kernel for AVX-512 BF16 (VDPBF16PS), one function per
// number of activation rows (1…8 for AVX-512) so that a product of any
// height reads each weight sliver once per eight rows.

// Layout constants, as in tensor/quant.go and tensor/bf16.go.
const (
	q8NR         = 16
	q8ScaleOff   = 512
	q8SumOff     = 544
	q8BlockBytes = 576
)

func quant() {
	for mr := 1; mr <= 8; mr++ {
		q8VNNI(mr)
	}
	for mr := 1; mr <= 8; mr++ {
		bf16Micro(mr)
	}
	q8QuantZ()
	bf16ConvZ()
	q8AVX2(1)
	q8AVX2(2)
	for mr := 1; mr <= 6; mr++ {
		q8VNNI2S(mr)
	}
	for mr := 1; mr <= 3; mr++ {
		q8AVXVNNI(mr)
	}
	q8QuantAVX2()
}

// rowAt is the address of row i (< 8) at byte offset off, given the base
// register b (row 0), b3 (row 3), the stride s and three strides s3.
func rowAt(i, off int, b, b3, s, s3 string) string {
	switch i {
	case 0:
		return fmt.Sprintf("%d(%s)", off, b)
	case 1:
		return fmt.Sprintf("%d(%s)(%s*1)", off, b, s)
	case 2:
		return fmt.Sprintf("%d(%s)(%s*2)", off, b, s)
	case 3:
		return fmt.Sprintf("%d(%s)", off, b3)
	case 4:
		return fmt.Sprintf("%d(%s)(%s*4)", off, b, s)
	case 5:
		return fmt.Sprintf("%d(%s)(%s*2)", off, b3, s)
	case 6:
		return fmt.Sprintf("%d(%s)(%s*2)", off, b, s3)
	case 7:
		return fmt.Sprintf("%d(%s)(%s*4)", off, b3, s)
	}
	panic("rowAt: more than 8 rows")
}

// q8VNNI writes func q8VNNI<mr>(kb int, xq *byte, dx *float32, w *byte, y
// *float32, ldy int): the Q8 tile of mr activation rows against one sliver
// of 16 weight rows (see q8Impl.tile). Per block, each row's int32 lanes
// (one per weight row) start at -128·Σq_w and take 8 VPDPBUSD of the
// activation bytes (q_x+128, one dword broadcast per step) by the weight
// bytes; then they become float, are scaled by the 16 weight scales and
// added into the row's float accumulator times the activation scale. With
// four rows or fewer, even and odd steps go to separate accumulators, so
// that the dependent VPDPBUSD chains are half as long.
func q8VNNI(mr int) {
	name := fmt.Sprintf("q8VNNI%d", mr)
	sigs[name] = name + "(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)"
	text(name, "48")
	emit("MOVQ kb+0(FP), CX")
	emit("MOVQ xq+8(FP), SI")
	emit("MOVQ CX, R8")
	emit("SHLQ $5, R8") // activation row stride: kb·32 bytes
	emit("LEAQ (R8)(R8*2), R11")
	emit("LEAQ (SI)(R11*1), R10")
	emit("MOVQ dx+16(FP), DX")
	emit("MOVQ CX, R9")
	emit("SHLQ $2, R9") // scale row stride: kb·4 bytes
	emit("LEAQ (R9)(R9*2), R13")
	emit("LEAQ (DX)(R13*1), R12")
	emit("MOVQ w+24(FP), DI")
	emit("MOVQ y+32(FP), AX")
	emit("MOVQ ldy+40(FP), BX")
	emit("SHLQ $2, BX")
	emit("VPXORD Z21, Z21, Z21")
	for i := 0; i < mr; i++ {
		emit("VXORPS Z%d, Z%d, Z%d", 8+i, 8+i, 8+i)
	}
	split := mr <= 4
	label(name + "_block")
	// Decoding streams the weights from L3 or memory: fetch ahead every
	// line of a block (576 bytes, nine lines) with PREFETCHNTA, as the
	// float GEMV kernels do (on Zen 5, 1.07-1.34× PREFETCHT0's decode
	// speed in 8 alternating rounds; the AVX2 kernels, not measurable
	// here, keep PREFETCHT0). Taller tiles read slivers that the previous
	// tile left in cache.
	if mr <= 2 {
		for off := 0; off < q8BlockBytes; off += 64 {
			emit("PREFETCHNTA %d(DI)", prefetchAhead+off)
		}
	}
	emit("VPMOVSXWD %d(DI), Z18", q8SumOff)
	emit("VPSLLD $7, Z18, Z18")
	emit("VPSUBD Z18, Z21, Z18")
	for i := 0; i < mr; i++ {
		emit("VMOVDQA32 Z18, Z%d", i)
		if split {
			emit("VMOVDQA32 Z21, Z%d", 4+i)
		}
	}
	for t := 0; t < 8; t++ {
		for i := 0; i < mr; i++ {
			x := 24 + i
			acc := i
			if split && t%2 == 1 {
				acc = 4 + i
			}
			emit("VPBROADCASTD %s, Z%d", rowAt(i, 4*t, "SI", "R10", "R8", "R11"), x)
			emit("VPDPBUSD %d(DI), Z%d, Z%d", 64*t, x, acc)
		}
	}
	emit("VCVTPH2PS %d(DI), Z19", q8ScaleOff)
	for i := 0; i < mr; i++ {
		if split {
			emit("VPADDD Z%d, Z%d, Z%d", 4+i, i, i)
		}
		emit("VCVTDQ2PS Z%d, Z%d", i, i)
		emit("VMULPS Z19, Z%d, Z%d", i, i)
		emit("VFMADD231PS.BCST %s, Z%d, Z%d", rowAt(i, 0, "DX", "R12", "R9", "R13"), i, 8+i)
	}
	emit("ADDQ $%d, DI", q8BlockBytes)
	emit("ADDQ $32, SI")
	emit("ADDQ $32, R10")
	emit("ADDQ $4, DX")
	emit("ADDQ $4, R12")
	emit("DECQ CX")
	emit("JNZ %s_block", name)
	for i := 0; i < mr; i++ {
		emit("VMOVUPS Z%d, (AX)", 8+i)
		if i < mr-1 {
			emit("ADDQ BX, AX")
		}
	}
	emit("VZEROUPPER")
	emit("RET")
}

// vdpbf16ps emits VDPBF16PS zmm(src2), zmm(src1), zmm(dst) in Go's operand
// order (dst += pairwise products of src1 and src2, bfloat16 pairs into
// float32), register operands only. The Go assembler does not know the
// instruction, so it is written as its EVEX bytes: 62, P0 (inverted R, X,
// B, R' and map 0F38), P1 (W0, inverted vvvv, pp F3), P2 (512 bits,
// inverted V'), opcode 52, ModRM.
func vdpbf16ps(src2, src1, dst int) {
	inv := func(v, bit int) int { return ^(v >> bit) & 1 }
	p0 := inv(dst, 3)<<7 | inv(src2, 4)<<6 | inv(src2, 3)<<5 | inv(dst, 4)<<4 | 0x2
	p1 := (^src1&15)<<3 | 0x6
	p2 := 0x40 | inv(src1, 4)<<3
	modrm := 0xC0 | (dst&7)<<3 | src2&7
	emit("BYTE $0x62; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x52; BYTE $0x%02x // VDPBF16PS Z%d, Z%d, Z%d", p0, p1, p2, modrm, src2, src1, dst)
}

// bf16Micro writes func bf16Micro<mr>(kp int, a *uint16, lda int, b
// *uint16, c *float32, ldc int, acc bool): C (+)= A·B for mr rows of A in
// bfloat16 (row stride lda values, read as kp pairs) and a sliver of B
// packed as kp groups of 32 columns × 2 bfloat16 (the pair of k that one
// VDPBF16PS lane multiplies), 32 columns of C in two zmm accumulators a row.
func bf16Micro(mr int) {
	name := fmt.Sprintf("bf16Micro%d", mr)
	sigs[name] = name + "(kp int, a *uint16, lda int, b *uint16, c *float32, ldc int, acc bool)"
	text(name, "49")
	emit("MOVQ kp+0(FP), CX")
	emit("MOVQ a+8(FP), SI")
	emit("MOVQ lda+16(FP), R8")
	emit("SHLQ $1, R8")
	emit("LEAQ (R8)(R8*2), R11")
	emit("LEAQ (SI)(R11*1), R10")
	emit("MOVQ b+24(FP), DI")
	emit("MOVQ c+32(FP), DX")
	emit("MOVQ ldc+40(FP), BX")
	emit("SHLQ $2, BX")
	for i := 0; i < 2*mr; i++ {
		emit("VXORPS Z%d, Z%d, Z%d", i, i, i)
	}
	label(name + "_loop")
	if mr <= 2 {
		// Decoding-sized calls stream the weights once: fetch ahead.
		emit("PREFETCHT0 %d(DI)", prefetchAhead)
		emit("PREFETCHT0 %d(DI)", prefetchAhead+64)
	}
	emit("VMOVDQU32 (DI), Z16")
	emit("VMOVDQU32 64(DI), Z17")
	for i := 0; i < mr; i++ {
		x := 18 + i
		emit("VPBROADCASTD %s, Z%d", rowAt(i, 0, "SI", "R10", "R8", "R11"), x)
		vdpbf16ps(16, x, 2*i)
		vdpbf16ps(17, x, 2*i+1)
	}
	emit("ADDQ $4, SI")
	emit("ADDQ $4, R10")
	emit("ADDQ $128, DI")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	emit("MOVBLZX acc+48(FP), AX")
	emit("TESTB AL, AL")
	emit("JZ %s_put", name)
	emit("MOVQ DX, R12")
	for i := 0; i < mr; i++ {
		emit("VADDPS (R12), Z%d, Z%d", 2*i, 2*i)
		emit("VADDPS 64(R12), Z%d, Z%d", 2*i+1, 2*i+1)
		if i < mr-1 {
			emit("ADDQ BX, R12")
		}
	}
	label(name + "_put")
	for i := 0; i < mr; i++ {
		emit("VMOVUPS Z%d, (DX)", 2*i)
		emit("VMOVUPS Z%d, 64(DX)", 2*i+1)
		if i < mr-1 {
			emit("ADDQ BX, DX")
		}
	}
	emit("VZEROUPPER")
	emit("RET")
}

// q8QuantZ writes func q8QuantZ(nb int, x *float32, xq *byte, dx *float32):
// the activation quantizer of quantizeRowQ8 for nb whole blocks of 32, with
// the same float32 operations so that its bytes and scales are identical:
// amax = max|x|, d = amax/127, q = trunc(x·(127/amax) ± 0.5) (halves away
// from zero), stored as q+128; an all-zero block gives d = 0 and q = 0.
func q8QuantZ() {
	name := "q8QuantZ"
	sigs[name] = name + "(nb int, x *float32, xq *byte, dx *float32)"
	text(name, "32")
	emit("MOVQ nb+0(FP), CX")
	emit("MOVQ x+8(FP), SI")
	emit("MOVQ xq+16(FP), DI")
	emit("MOVQ dx+24(FP), DX")
	emit("MOVL $0x7fffffff, AX")
	emit("VPBROADCASTD AX, Z31")
	emit("MOVL $0x3f000000, AX") // 0.5
	emit("VPBROADCASTD AX, Z30")
	emit("MOVL $0x80000000, AX")
	emit("VPBROADCASTD AX, Z29")
	emit("MOVL $128, AX")
	emit("VPBROADCASTD AX, Z28")
	emit("MOVL $0x42fe0000, AX") // 127.0
	emit("VMOVD AX, X27")
	emit("VXORPS X26, X26, X26")
	label(name + "_loop")
	emit("VMOVUPS (SI), Z0")
	emit("VMOVUPS 64(SI), Z1")
	emit("VANDPS Z31, Z0, Z2")
	emit("VANDPS Z31, Z1, Z3")
	emit("VMAXPS Z3, Z2, Z2")
	emit("VEXTRACTF32X8 $1, Z2, Y3")
	emit("VMAXPS Y3, Y2, Y2")
	emit("VEXTRACTF128 $1, Y2, X3")
	emit("VMAXPS X3, X2, X2")
	emit("VPERMILPS $0x4E, X2, X3")
	emit("VMAXPS X3, X2, X2")
	emit("VPERMILPS $0xB1, X2, X3")
	emit("VMAXPS X3, X2, X2")
	emit("VDIVSS X27, X2, X4")
	emit("VMOVSS X4, (DX)")
	emit("VUCOMISS X26, X2")
	emit("JEQ %s_zero", name)
	emit("VDIVSS X2, X27, X6")
	emit("VBROADCASTSS X6, Z6")
	for _, z := range []int{0, 1} {
		emit("VMULPS Z6, Z%d, Z%d", z, z)
		emit("VANDPS Z29, Z%d, Z7", z)
		emit("VORPS Z30, Z7, Z7")
		emit("VADDPS Z7, Z%d, Z%d", z, z)
		emit("VCVTTPS2DQ Z%d, Z%d", z, z)
		emit("VPADDD Z28, Z%d, Z%d", z, z)
		emit("VPMOVDB Z%d, %d(DI)", z, 16*z)
	}
	label(name + "_next")
	emit("ADDQ $128, SI")
	emit("ADDQ $32, DI")
	emit("ADDQ $4, DX")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	emit("VZEROUPPER")
	emit("RET")
	label(name + "_zero")
	emit("VPMOVDB Z28, (DI)")
	emit("VPMOVDB Z28, 16(DI)")
	emit("JMP %s_next", name)
}

// bf16ConvZ writes func bf16ConvZ(n int, src *float32, dst *uint16): n
// (a multiple of 16) float32 values rounded to bfloat16 exactly as
// tensor.F32ToBF16 rounds them (nearest even by integer arithmetic; a NaN
// keeps its top bits and is made quiet), 16 at a time.
func bf16ConvZ() {
	name := "bf16ConvZ"
	sigs[name] = name + "(n int, src *float32, dst *uint16)"
	text(name, "24")
	emit("MOVQ n+0(FP), CX")
	emit("MOVQ src+8(FP), SI")
	emit("MOVQ dst+16(FP), DI")
	emit("SHRQ $4, CX")
	emit("JZ %s_done", name)
	emit("MOVL $1, AX")
	emit("VPBROADCASTD AX, Z31")
	emit("MOVL $0x7fff, AX")
	emit("VPBROADCASTD AX, Z30")
	emit("MOVL $0x7fffffff, AX")
	emit("VPBROADCASTD AX, Z29")
	emit("MOVL $0x7f800000, AX")
	emit("VPBROADCASTD AX, Z28")
	emit("MOVL $0x40, AX")
	emit("VPBROADCASTD AX, Z27")
	label(name + "_loop")
	emit("VMOVDQU32 (SI), Z0")
	emit("VPSRLD $16, Z0, Z1")      // b>>16
	emit("VPANDD Z31, Z1, Z2")      // (b>>16)&1
	emit("VPADDD Z30, Z0, Z3")      // b+0x7fff
	emit("VPADDD Z2, Z3, Z3")       // + lsb
	emit("VPSRLD $16, Z3, Z3")      // rounded
	emit("VPANDD Z29, Z0, Z4")      // |b|
	emit("VPCMPUD $6, Z28, Z4, K1") // NaN lanes: |b| > 0x7f800000
	emit("VPORD Z27, Z1, K1, Z3")   // NaN: (b>>16)|0x40
	emit("VPMOVDW Z3, (DI)")
	emit("ADDQ $64, SI")
	emit("ADDQ $32, DI")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	emit("VZEROUPPER")
	label(name + "_done")
	emit("RET")
}

// q8AVX2 writes func q8AVX2<mr>(kb int, xq *byte, dx *float32, w *byte, y
// *float32, ldy int) for mr = 1 or 2: the Q8 tile without VNNI, in ymm
// registers (rows 0-7 of the sliver in the low half of each step's 64
// bytes, rows 8-15 in the high half). VPMADDUBSW multiplies unsigned by
// signed bytes with 16-bit saturation, which the +128 activations would
// reach; so the activations are made signed again (xor 0x80), their signs
// moved onto the weights (VPSIGNB) and their magnitudes (≤ 127) used as the
// unsigned side: a pair of products is at most 2·127·127 < 2¹⁵. VPMADDWD by
// ones then sums the pairs into the int32 lanes; no correction is needed.
func q8AVX2(mr int) {
	name := fmt.Sprintf("q8AVX2%d", mr)
	sigs[name] = name + "(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)"
	text(name, "48")
	emit("MOVQ kb+0(FP), CX")
	emit("MOVQ xq+8(FP), SI")
	emit("MOVQ CX, R8")
	emit("SHLQ $5, R8")
	emit("MOVQ dx+16(FP), DX")
	emit("MOVQ CX, R9")
	emit("SHLQ $2, R9")
	emit("MOVQ w+24(FP), DI")
	emit("MOVQ y+32(FP), AX")
	emit("MOVQ ldy+40(FP), BX")
	emit("SHLQ $2, BX")
	emit("MOVL $0x00010001, R10")
	emit("MOVQ R10, X8")
	emit("VPBROADCASTD X8, Y8") // int16 ones
	emit("MOVL $0x80808080, R10")
	emit("MOVQ R10, X15")
	emit("VPBROADCASTD X15, Y15")
	for i := 0; i < 2*mr; i++ {
		emit("VXORPS Y%d, Y%d, Y%d", 4+i, 4+i, 4+i)
	}
	xrow := func(i, off int) string {
		if i == 0 {
			return fmt.Sprintf("%d(SI)", off)
		}
		return fmt.Sprintf("%d(SI)(R8*1)", off)
	}
	drow := func(i int) string {
		if i == 0 {
			return "(DX)"
		}
		return "(DX)(R9*1)"
	}
	label(name + "_block")
	for off := 0; off < q8BlockBytes; off += 64 {
		emit("PREFETCHT0 %d(DI)", prefetchAhead+off)
	}
	for i := 0; i < 2*mr; i++ {
		emit("VPXOR Y%d, Y%d, Y%d", i, i, i)
	}
	for t := 0; t < 8; t++ {
		for i := 0; i < mr; i++ {
			emit("VPBROADCASTD %s, Y%d", xrow(i, 4*t), 9+i)
			emit("VPXOR Y15, Y%d, Y%d", 9+i, 9+i)
			emit("VPABSB Y%d, Y%d", 9+i, 12+i)
		}
		for h := 0; h < 2; h++ {
			emit("VMOVDQU %d(DI), Y11", 64*t+32*h)
			for i := 0; i < mr; i++ {
				emit("VPSIGNB Y%d, Y11, Y14", 9+i)
				emit("VPMADDUBSW Y14, Y%d, Y14", 12+i)
				emit("VPMADDWD Y8, Y14, Y14")
				emit("VPADDD Y14, Y%d, Y%d", 2*i+h, 2*i+h)
			}
		}
	}
	emit("VCVTPH2PS %d(DI), Y9", q8ScaleOff)
	emit("VCVTPH2PS %d(DI), Y10", q8ScaleOff+16)
	for i := 0; i < mr; i++ {
		emit("VBROADCASTSS %s, Y11", drow(i))
		for h := 0; h < 2; h++ {
			a := 2*i + h
			emit("VCVTDQ2PS Y%d, Y%d", a, a)
			emit("VMULPS Y%d, Y%d, Y%d", 9+h, a, a)
			emit("VFMADD231PS Y11, Y%d, Y%d", a, 4+a)
		}
	}
	emit("ADDQ $%d, DI", q8BlockBytes)
	emit("ADDQ $32, SI")
	emit("ADDQ $4, DX")
	emit("DECQ CX")
	emit("JNZ %s_block", name)
	for i := 0; i < mr; i++ {
		emit("VMOVUPS Y%d, (AX)", 4+2*i)
		emit("VMOVUPS Y%d, 32(AX)", 5+2*i)
		if i < mr-1 {
			emit("ADDQ BX, AX")
		}
	}
	emit("VZEROUPPER")
	emit("RET")
}

// q8VNNI2S writes func q8VNNI2S<mr>(kb int, xq *byte, dx *float32, w *byte,
// y *float32, ldy int) for mr ≤ 6: q8VNNI over two adjacent slivers (32
// weight rows, the second kb blocks after the first), so that each
// activation broadcast feeds two VPDPBUSD: the prefill kernel.
func q8VNNI2S(mr int) {
	name := fmt.Sprintf("q8VNNI2S%d", mr)
	sigs[name] = name + "(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)"
	text(name, "48")
	emit("MOVQ kb+0(FP), CX")
	emit("MOVQ xq+8(FP), SI")
	emit("MOVQ CX, R8")
	emit("SHLQ $5, R8")
	emit("LEAQ (R8)(R8*2), R11")
	emit("LEAQ (SI)(R11*1), R10")
	emit("MOVQ dx+16(FP), DX")
	emit("MOVQ CX, R9")
	emit("SHLQ $2, R9")
	emit("LEAQ (R9)(R9*2), R13")
	emit("LEAQ (DX)(R13*1), R12")
	emit("MOVQ w+24(FP), DI")
	emit("IMUL3Q $%d, CX, R14", q8BlockBytes)
	emit("ADDQ DI, R14") // the second sliver
	emit("MOVQ y+32(FP), AX")
	emit("MOVQ ldy+40(FP), BX")
	emit("SHLQ $2, BX")
	emit("VPXORD Z30, Z30, Z30")
	for i := 0; i < 2*mr; i++ {
		emit("VXORPS Z%d, Z%d, Z%d", 12+i, 12+i, 12+i)
	}
	label(name + "_block")
	for h, p := range []string{"DI", "R14"} {
		emit("VPMOVSXWD %d(%s), Z%d", q8SumOff, p, 24+h)
		emit("VPSLLD $7, Z%d, Z%d", 24+h, 24+h)
		emit("VPSUBD Z%d, Z30, Z%d", 24+h, 24+h)
	}
	for i := 0; i < mr; i++ {
		emit("VMOVDQA32 Z24, Z%d", 2*i)
		emit("VMOVDQA32 Z25, Z%d", 2*i+1)
	}
	for t := 0; t < 8; t++ {
		for i := 0; i < mr; i++ {
			x := 26 + i%2
			emit("VPBROADCASTD %s, Z%d", rowAt(i, 4*t, "SI", "R10", "R8", "R11"), x)
			emit("VPDPBUSD %d(DI), Z%d, Z%d", 64*t, x, 2*i)
			emit("VPDPBUSD %d(R14), Z%d, Z%d", 64*t, x, 2*i+1)
		}
	}
	emit("VCVTPH2PS %d(DI), Z28", q8ScaleOff)
	emit("VCVTPH2PS %d(R14), Z29", q8ScaleOff)
	for i := 0; i < mr; i++ {
		for h := 0; h < 2; h++ {
			a := 2*i + h
			emit("VCVTDQ2PS Z%d, Z%d", a, a)
			emit("VMULPS Z%d, Z%d, Z%d", 28+h, a, a)
			emit("VFMADD231PS.BCST %s, Z%d, Z%d", rowAt(i, 0, "DX", "R12", "R9", "R13"), a, 12+a)
		}
	}
	emit("ADDQ $%d, DI", q8BlockBytes)
	emit("ADDQ $%d, R14", q8BlockBytes)
	emit("ADDQ $32, SI")
	emit("ADDQ $32, R10")
	emit("ADDQ $4, DX")
	emit("ADDQ $4, R12")
	emit("DECQ CX")
	emit("JNZ %s_block", name)
	for i := 0; i < mr; i++ {
		emit("VMOVUPS Z%d, (AX)", 12+2*i)
		emit("VMOVUPS Z%d, 64(AX)", 13+2*i)
		if i < mr-1 {
			emit("ADDQ BX, AX")
		}
	}
	emit("VZEROUPPER")
	emit("RET")
}

// vexDPBUSD emits the VEX-encoded (AVX-VNNI) VPDPBUSD off(DI), Y(src1),
// Y(dst): dst += per dword, the four products of the unsigned bytes of src1
// by the signed bytes at off(DI). The Go assembler knows only the EVEX form
// (AVX512_VNNI with AVX512VL), which CPUs with AVX-VNNI alone do not run,
// so it is written as its bytes: C4, R̄X̄B̄ with map 0F38, W0 and the
// inverted vvvv with L = 256 bits and pp = 66, opcode 50, ModRM (DI base,
// disp8 or disp32).
func vexDPBUSD(off, src1, dst int) {
	if src1 > 15 || dst > 15 {
		panic("vexDPBUSD: VEX reaches Y0-Y15 only")
	}
	b1 := (^dst>>3&1)<<7 | 1<<6 | 1<<5 | 0x02
	b2 := (^src1&15)<<3 | 1<<2 | 0x1
	var disp []byte
	mod := 1
	if off >= -128 && off <= 127 {
		disp = []byte{byte(int8(off))}
	} else {
		mod = 2
		disp = []byte{byte(off), byte(off >> 8), byte(off >> 16), byte(off >> 24)}
	}
	modrm := mod<<6 | (dst&7)<<3 | 7
	bs := fmt.Sprintf("BYTE $0xc4; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x50; BYTE $0x%02x", b1, b2, modrm)
	for _, d := range disp {
		bs += fmt.Sprintf("; BYTE $0x%02x", d)
	}
	emit("%s // {vex} VPDPBUSD %d(DI), Y%d, Y%d", bs, off, src1, dst)
}

// q8AVXVNNI writes func q8AVXVNNI<mr>(kb int, xq *byte, dx *float32, w
// *byte, y *float32, ldy int) for mr ≤ 3: the Q8 tile for CPUs with AVX-VNNI
// but not AVX512_VNNI (Alder Lake and later client cores), q8VNNI in ymm
// registers: rows 0-7 of the sliver in the low 32 bytes of each step's 64,
// rows 8-15 in the high 32, in two accumulators a row. Per block the int32
// lanes start at -128·Σq_w, take 8 steps of VPDPBUSD of the activation
// bytes (q_x+128, one dword broadcast) by the weight bytes, then are scaled
// as in q8VNNI. With one or two rows, even and odd steps go to separate
// int lanes (the dependent VPDPBUSD chains are half as long: one row
// otherwise waits on their latency). The 16 ymm registers VEX reaches hold
// three rows: int lanes from Y0 (then the odd steps' when split), the
// float accumulators after them, the correction then the scales in
// Y12-Y13, the activation broadcast in Y14, its scale in Y15.
func q8AVXVNNI(mr int) {
	name := fmt.Sprintf("q8AVXVNNI%d", mr)
	sigs[name] = name + "(kb int, xq *byte, dx *float32, w *byte, y *float32, ldy int)"
	text(name, "48")
	emit("MOVQ kb+0(FP), CX")
	emit("MOVQ xq+8(FP), SI")
	emit("MOVQ CX, R8")
	emit("SHLQ $5, R8") // activation row stride: kb·32 bytes
	emit("MOVQ dx+16(FP), DX")
	emit("MOVQ CX, R9")
	emit("SHLQ $2, R9") // scale row stride: kb·4 bytes
	emit("MOVQ w+24(FP), DI")
	emit("MOVQ y+32(FP), AX")
	emit("MOVQ ldy+40(FP), BX")
	emit("SHLQ $2, BX")
	row := func(i, off int, base, stride string) string {
		switch i {
		case 0:
			return fmt.Sprintf("%d(%s)", off, base)
		case 1:
			return fmt.Sprintf("%d(%s)(%s*1)", off, base, stride)
		}
		return fmt.Sprintf("%d(%s)(%s*2)", off, base, stride)
	}
	split := mr <= 2
	odd := 2 * mr // first int lane of the odd steps when split
	fb := 2 * mr  // first float accumulator
	if split {
		fb = 4 * mr
	}
	for i := 0; i < 2*mr; i++ {
		emit("VXORPS Y%d, Y%d, Y%d", fb+i, fb+i, fb+i)
	}
	label(name + "_block")
	for off := 0; off < q8BlockBytes; off += 64 {
		emit("PREFETCHT0 %d(DI)", prefetchAhead+off)
	}
	emit("VPXOR Y14, Y14, Y14")
	for h := 0; h < 2; h++ {
		emit("VPMOVSXWD %d(DI), Y%d", q8SumOff+16*h, 12+h)
		emit("VPSLLD $7, Y%d, Y%d", 12+h, 12+h)
		emit("VPSUBD Y%d, Y14, Y%d", 12+h, 12+h)
	}
	for i := 0; i < mr; i++ {
		emit("VMOVDQA Y12, Y%d", 2*i)
		emit("VMOVDQA Y13, Y%d", 2*i+1)
		if split {
			emit("VPXOR Y%d, Y%d, Y%d", odd+2*i, odd+2*i, odd+2*i)
			emit("VPXOR Y%d, Y%d, Y%d", odd+2*i+1, odd+2*i+1, odd+2*i+1)
		}
	}
	for t := 0; t < 8; t++ {
		for i := 0; i < mr; i++ {
			a := 2 * i
			if split && t%2 == 1 {
				a += odd
			}
			emit("VPBROADCASTD %s, Y14", row(i, 4*t, "SI", "R8"))
			vexDPBUSD(64*t, 14, a)
			vexDPBUSD(64*t+32, 14, a+1)
		}
	}
	emit("VCVTPH2PS %d(DI), Y12", q8ScaleOff)
	emit("VCVTPH2PS %d(DI), Y13", q8ScaleOff+16)
	for i := 0; i < mr; i++ {
		emit("VBROADCASTSS %s, Y15", row(i, 0, "DX", "R9"))
		for h := 0; h < 2; h++ {
			a := 2*i + h
			if split {
				emit("VPADDD Y%d, Y%d, Y%d", odd+a, a, a)
			}
			emit("VCVTDQ2PS Y%d, Y%d", a, a)
			emit("VMULPS Y%d, Y%d, Y%d", 12+h, a, a)
			emit("VFMADD231PS Y15, Y%d, Y%d", a, fb+a)
		}
	}
	emit("ADDQ $%d, DI", q8BlockBytes)
	emit("ADDQ $32, SI")
	emit("ADDQ $4, DX")
	emit("DECQ CX")
	emit("JNZ %s_block", name)
	for i := 0; i < mr; i++ {
		emit("VMOVUPS Y%d, (AX)", fb+2*i)
		emit("VMOVUPS Y%d, 32(AX)", fb+2*i+1)
		if i < mr-1 {
			emit("ADDQ BX, AX")
		}
	}
	emit("VZEROUPPER")
	emit("RET")
}

// q8QuantAVX2 writes func q8QuantAVX2(nb int, x *float32, xq *byte, dx
// *float32): q8QuantZ in ymm registers for CPUs without AVX-512, with the
// same float32 operations (so the same bytes and scales as quantizeRowQ8).
// Without VPMOVDB the int32 values (within ±127) are packed to bytes with
// signed saturation, put back in order by VPERMD (the packs interleave the
// 128-bit lanes), and offset by 128 with an xor of the sign bit.
func q8QuantAVX2() {
	name := "q8QuantAVX2"
	sigs[name] = name + "(nb int, x *float32, xq *byte, dx *float32)"
	text(name, "32")
	emit("MOVQ nb+0(FP), CX")
	emit("MOVQ x+8(FP), SI")
	emit("MOVQ xq+16(FP), DI")
	emit("MOVQ dx+24(FP), DX")
	bcast := func(v uint32, y int) {
		emit("MOVL $0x%08x, AX", v)
		emit("VMOVD AX, X%d", y)
		emit("VPBROADCASTD X%d, Y%d", y, y)
	}
	bcast(0x7fffffff, 15)
	bcast(0x3f000000, 14) // 0.5
	bcast(0x80000000, 13)
	bcast(0x80808080, 12)
	// VPERMD indexes 0, 4, 1, 5, 2, 6, 3, 7: after the two packs, dword
	// i of the result holds values 4i…4i+3 of the block in that order.
	emit("MOVQ $0x0703060205010400, AX")
	emit("VMOVQ AX, X11")
	emit("VPMOVZXBD X11, Y11")
	emit("MOVL $0x42fe0000, AX") // 127.0
	emit("VMOVD AX, X10")
	emit("VXORPS X9, X9, X9")
	label(name + "_loop")
	for i := 0; i < 4; i++ {
		emit("VMOVUPS %d(SI), Y%d", 32*i, i)
		emit("VANDPS Y15, Y%d, Y%d", i, 4+i)
	}
	emit("VMAXPS Y5, Y4, Y4")
	emit("VMAXPS Y7, Y6, Y6")
	emit("VMAXPS Y6, Y4, Y4")
	emit("VEXTRACTF128 $1, Y4, X5")
	emit("VMAXPS X5, X4, X4")
	emit("VPERMILPS $0x4E, X4, X5")
	emit("VMAXPS X5, X4, X4")
	emit("VPERMILPS $0xB1, X4, X5")
	emit("VMAXPS X5, X4, X4")
	emit("VDIVSS X10, X4, X5")
	emit("VMOVSS X5, (DX)")
	emit("VUCOMISS X9, X4")
	emit("JEQ %s_zero", name)
	emit("VDIVSS X4, X10, X6")
	emit("VBROADCASTSS X6, Y6")
	for i := 0; i < 4; i++ {
		emit("VMULPS Y6, Y%d, Y%d", i, i)
		emit("VANDPS Y13, Y%d, Y7", i)
		emit("VORPS Y14, Y7, Y7")
		emit("VADDPS Y7, Y%d, Y%d", i, i)
		emit("VCVTTPS2DQ Y%d, Y%d", i, i)
	}
	emit("VPACKSSDW Y1, Y0, Y0")
	emit("VPACKSSDW Y3, Y2, Y2")
	emit("VPACKSSWB Y2, Y0, Y0")
	emit("VPERMD Y0, Y11, Y0")
	emit("VPXOR Y12, Y0, Y0")
	emit("VMOVDQU Y0, (DI)")
	label(name + "_next")
	emit("ADDQ $128, SI")
	emit("ADDQ $32, DI")
	emit("ADDQ $4, DX")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	emit("VZEROUPPER")
	emit("RET")
	label(name + "_zero")
	emit("VMOVDQU Y12, (DI)")
	emit("JMP %s_next", name)
}
