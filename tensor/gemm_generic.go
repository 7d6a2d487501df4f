package tensor

import "math"

// The pure-Go kernels: the only ones with -tags purego or on architectures
// without assembly, and a forced variant in the tests everywhere. They are
// blocked like the assembly (same driver, same packing of B), with a 4×4 register
// tile that the Go compiler keeps in registers.

var genericImpl = &gemmImpl{
	name:     "generic",
	mr:       2,
	nr:       4,
	micro:    microGeneric,
	gemvTF32: gemvTF32Generic,
	gemvTF16: func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool) {
		gemvTU16Generic(n, k, x, b, ldb, y, acc, false)
	},
	gemvTBF16: func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool) {
		gemvTU16Generic(n, k, x, b, ldb, y, acc, true)
	},
	gemvNF32: gemvNF32Generic,
	gemvNF16: func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool) {
		gemvNU16Generic(n, k, x, b, ldb, y, acc, false)
	},
	gemvNBF16: func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool) {
		gemvNU16Generic(n, k, x, b, ldb, y, acc, true)
	},
	convF16:  F16ToF32,
	convBF16: convBF16Generic,
	gemvP:    gemvPGeneric,
	gemvPF16: func(x []float32, bp []uint16, y []float32, acc bool) {
		gemvPU16Generic(x, bp, y, acc, false)
	},
	gemvPBF16: func(x []float32, bp []uint16, y []float32, acc bool) {
		gemvPU16Generic(x, bp, y, acc, true)
	},
}

// gemvPU16Generic is gemvPGeneric over half values, widened 256 at a time.
func gemvPU16Generic(x []float32, bp []uint16, y []float32, acc, bf16 bool) {
	var buf [256]float32
	for p0 := 0; p0 < len(x); p0 += len(buf) / 4 {
		kc := min(len(buf)/4, len(x)-p0)
		src := bp[4*p0 : 4*(p0+kc)]
		if bf16 {
			convBF16Generic(buf[:4*kc], src)
		} else {
			F16ToF32(buf[:4*kc], src)
		}
		gemvPGeneric(x[p0:p0+kc], buf[:4*kc], y, acc || p0 > 0)
	}
	if len(x) == 0 && !acc {
		clear(y[:4])
	}
}

// gemvPGeneric is gemmImpl.gemvP for the 4-wide slivers of the generic
// kernels.
func gemvPGeneric(x, bp, y []float32, acc bool) {
	var y0, y1, y2, y3 float32
	bp = bp[:4*len(x)]
	for p, xp := range x {
		b := bp[4*p : 4*p+4 : 4*p+4]
		y0 += xp * b[0]
		y1 += xp * b[1]
		y2 += xp * b[2]
		y3 += xp * b[3]
	}
	y = y[:4]
	if acc {
		y0, y1, y2, y3 = y[0]+y0, y[1]+y1, y[2]+y2, y[3]+y3
	}
	y[0], y[1], y[2], y[3] = y0, y1, y2, y3
}

func convBF16Generic(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// microGeneric is the 2×4 micro-kernel (see gemmImpl.micro); it has no use
// for the prefetch hint. Two rows rather than four: the 8 accumulators, 2
// values of A and the B value in flight fit in the 15 vector registers Go's
// amd64 ABI leaves free, where a 4×4 tile spilled to the stack on every p.
func microGeneric(kc int, a []float32, lda int, bp, c []float32, ldc int, acc bool, _ prefetch) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	a0s := a[:kc]
	a1s := a[lda : lda+kc]
	bp = bp[:4*kc]
	for p := range a0s {
		b := bp[4*p : 4*p+4 : 4*p+4]
		a0, a1 := a0s[p], a1s[p]
		b0 := b[0]
		c00 += a0 * b0
		c10 += a1 * b0
		b1 := b[1]
		c01 += a0 * b1
		c11 += a1 * b1
		b2 := b[2]
		c02 += a0 * b2
		c12 += a1 * b2
		b3 := b[3]
		c03 += a0 * b3
		c13 += a1 * b3
	}
	r0 := c[0:4:4]
	r1 := c[ldc : ldc+4 : ldc+4]
	if acc {
		r0[0], r0[1], r0[2], r0[3] = r0[0]+c00, r0[1]+c01, r0[2]+c02, r0[3]+c03
		r1[0], r1[1], r1[2], r1[3] = r1[0]+c10, r1[1]+c11, r1[2]+c12, r1[3]+c13
		return
	}
	r0[0], r0[1], r0[2], r0[3] = c00, c01, c02, c03
	r1[0], r1[1], r1[2], r1[3] = c10, c11, c12, c13
}

// dotGeneric is Σ x[p]·y[p] with four partial sums (independent chains).
func dotGeneric(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	p := 0
	for ; p+4 <= len(x); p += 4 {
		s0 += x[p] * y[p]
		s1 += x[p+1] * y[p+1]
		s2 += x[p+2] * y[p+2]
		s3 += x[p+3] * y[p+3]
	}
	for ; p < len(x); p++ {
		s0 += x[p] * y[p]
	}
	return (s0 + s1) + (s2 + s3)
}

func gemvTF32Generic(n, k int, x, b []float32, ldb int, y []float32, acc bool) {
	x = x[:k]
	for j := 0; j < n; j++ {
		s := dotGeneric(x, b[j*ldb:j*ldb+k])
		if acc {
			y[j] += s
		} else {
			y[j] = s
		}
	}
}

// gemvTU16Generic widens one row chunk at a time into a stack buffer.
func gemvTU16Generic(n, k int, x []float32, b []uint16, ldb int, y []float32, acc, bf16 bool) {
	var row [256]float32
	x = x[:k]
	for j := 0; j < n; j++ {
		var s float32
		for p0 := 0; p0 < k; p0 += len(row) {
			kc := min(len(row), k-p0)
			src := b[j*ldb+p0 : j*ldb+p0+kc]
			if bf16 {
				convBF16Generic(row[:kc], src)
			} else {
				F16ToF32(row[:kc], src)
			}
			s += dotGeneric(x[p0:p0+kc], row[:kc])
		}
		if acc {
			y[j] += s
		} else {
			y[j] = s
		}
	}
}

func gemvNF32Generic(n, k int, x, b []float32, ldb int, y []float32, acc bool) {
	y = y[:n]
	if !acc {
		clear(y)
	}
	for p := 0; p < k; p++ {
		xp := x[p]
		row := b[p*ldb : p*ldb+n]
		for j, v := range row {
			y[j] += xp * v
		}
	}
}

func gemvNU16Generic(n, k int, x []float32, b []uint16, ldb int, y []float32, acc, bf16 bool) {
	var row [256]float32
	y = y[:n]
	if !acc {
		clear(y)
	}
	for j0 := 0; j0 < n; j0 += len(row) {
		nc := min(len(row), n-j0)
		yc := y[j0 : j0+nc]
		for p := 0; p < k; p++ {
			src := b[p*ldb+j0 : p*ldb+j0+nc]
			if bf16 {
				convBF16Generic(row[:nc], src)
			} else {
				F16ToF32(row[:nc], src)
			}
			xp := x[p]
			for j, v := range row[:nc] {
				yc[j] += xp * v
			}
		}
	}
}
