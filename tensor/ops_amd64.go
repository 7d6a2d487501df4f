//go:build amd64 && !purego

package tensor

import (
	"math"

	"golang.org/x/sys/cpu"
)

// Element-wise kernel dispatch for amd64 (see opsImpl): AVX2 + FMA where the
// CPU has them. The same AVX2 code serves AVX-512 machines.

var opsImpls, opsDefault = amd64OpsImpls()

func amd64OpsImpls() ([]*opsImpl, *opsImpl) {
	impls := []*opsImpl{genericOps}
	if !(cpu.X86.HasAVX2 && cpu.X86.HasFMA) {
		return impls, genericOps
	}
	avx2 := &opsImpl{
		name:       "avx2",
		act:        activateAVX2,
		softmaxRow: softmaxRowAVX2,
		add:        addAVX2,
		add3:       add3RowAVX2,
		scale:      func(d []float32, s float32) { vec8(kScale, d, s) },
		biasAct:    biasActAVX2,
		layerNorm:  layerNormRowAVX2,
		scoreRow:   scoreRowAVX2,
	}
	impls = append(impls, avx2)
	if !cpu.X86.HasAVX512F {
		return impls, avx2
	}
	// The compute-bound kernels (GELU, tanh-GELU, SiLU, softmax's exp) in
	// sixteen lanes; the memory-bound ones stay AVX2.
	avx512 := *avx2
	avx512.name = "avx512"
	avx512.act = activateAVX512
	avx512.biasAct = biasActAVX512
	avx512.softmaxRow = func(row []float32) { softmaxRowVec(row, true) }
	avx512.scoreRow = func(row, mask []float32, scale float32, lim int) float32 {
		return scoreRowVec(row, mask, scale, lim, true)
	}
	avx512.scoreRows = scoreRowsZ
	return append(impls, &avx512), &avx512
}

func activateAVX512(a Activation, d []float32) {
	switch a {
	case GELU:
		vec16(kGELU, d, nil)
	case GELUTanh:
		vec16(kGELUTanh, d, nil)
	case SiLU:
		vec16(kSiLU, d, nil)
	default:
		activateAVX2(a, d)
	}
}

func biasActAVX512(a Activation, d, bias []float32) {
	switch a {
	case GELU:
		vec16(kGELU, d, bias)
	case GELUTanh:
		vec16(kGELUTanh, d, bias)
	case SiLU:
		vec16(kSiLU, d, bias)
	default:
		biasActAVX2(a, d, bias)
	}
}

// unaryAVX512 runs kernel kern (kGELU, kGELUTanh or kSiLU) on n (a
// multiple of 16) values at p, with the bias at b added first unless b is
// nil.
func unaryAVX512(kern int, p, b *float32, n int) {
	switch {
	case kern == kGELU && b == nil:
		geluAVX512(p, n)
	case kern == kGELU:
		geluBiasAVX512(p, b, n)
	case kern == kGELUTanh && b == nil:
		geluTanhAVX512(p, n)
	case kern == kGELUTanh:
		geluTanhBiasAVX512(p, b, n)
	case kern == kSiLU && b == nil:
		siluAVX512(p, n)
	case kern == kSiLU:
		siluBiasAVX512(p, b, n)
	}
}

// vec16 is vec8 in sixteen lanes, with an optional bias row.
func vec16(kern int, d, bias []float32) {
	n16 := len(d) &^ 15
	if bias != nil {
		bias = bias[:len(d)]
	}
	if n16 > 0 {
		var pb *float32
		if bias != nil {
			pb = &bias[0]
		}
		unaryAVX512(kern, &d[0], pb, n16)
	}
	if n16 < len(d) {
		var buf, bb [16]float32
		copy(buf[:], d[n16:])
		var pb *float32
		if bias != nil {
			copy(bb[:], bias[n16:])
			pb = &bb[0]
		}
		unaryAVX512(kern, &buf[0], pb, 16)
		copy(d[n16:], buf[:])
	}
}

// expSumVec replaces row by exp(row − mx) and returns the sum, in float64,
// with the eight- or sixteen-lane kernel; the tail goes through the same
// kernel padded with -Inf.
func expSumVec(row []float32, mx float32, w16 bool) float64 {
	lanes := 8
	if w16 {
		lanes = 16
	}
	nv := len(row) / lanes * lanes
	var sum float64
	if nv > 0 {
		if w16 {
			sum = expSumAVX512(&row[0], nv, mx)
		} else {
			sum = expSumAVX2(&row[0], nv, mx)
		}
	}
	if nv < len(row) {
		negInf := float32(math.Inf(-1))
		var buf [16]float32
		for i := range buf {
			buf[i] = negInf
		}
		copy(buf[:], row[nv:])
		if w16 {
			sum += expSumAVX512(&buf[0], 16, mx)
		} else {
			sum += expSumAVX2(&buf[0], 8, mx)
		}
		copy(row[nv:], buf[:])
	}
	return sum
}

// The AVX2 kernels work on whole vectors of eight; the tail goes through the
// same kernel padded to eight, so every element gets the same arithmetic.
// Direct calls (no function values) keep the padding buffer on the stack.

const (
	kGELU = iota
	kGELUTanh
	kSiLU
	kTanh
	kScale
	kReLU
)

func unaryAVX2(kern int, p *float32, n int, s float32) {
	switch kern {
	case kGELU:
		geluAVX2(p, n)
	case kGELUTanh:
		geluTanhAVX2(p, n)
	case kSiLU:
		siluAVX2(p, n)
	case kTanh:
		tanhAVX2(p, n)
	case kScale:
		scaleAVX2(p, n, s)
	case kReLU:
		reluAVX2(p, n)
	}
}

func vec8(kern int, d []float32, s float32) {
	n8 := len(d) &^ 7
	if n8 > 0 {
		unaryAVX2(kern, &d[0], n8, s)
	}
	if n8 < len(d) {
		var buf [8]float32
		copy(buf[:], d[n8:])
		unaryAVX2(kern, &buf[0], 8, s)
		copy(d[n8:], buf[:])
	}
}

func activateAVX2(a Activation, d []float32) {
	switch a {
	case GELU:
		vec8(kGELU, d, 0)
	case GELUTanh:
		vec8(kGELUTanh, d, 0)
	case SiLU:
		vec8(kSiLU, d, 0)
	case Tanh:
		vec8(kTanh, d, 0)
	case ReLU:
		vec8(kReLU, d, 0)
	default:
		activateGeneric(a, d)
	}
}

func softmaxRowAVX2(row []float32) { softmaxRowVec(row, false) }

func softmaxRowVec(row []float32, w16 bool) {
	if len(row) == 0 {
		return
	}
	n8 := len(row) &^ 7
	negInf := float32(math.Inf(-1))
	mx := negInf
	if n8 > 0 {
		mx = maxAVX2(&row[0], n8)
	}
	for _, v := range row[n8:] {
		if v > mx {
			mx = v
		}
	}
	if mx == negInf {
		clear(row)
		return
	}
	sum := expSumVec(row, mx, w16)
	vec8(kScale, row, float32(1/sum))
}

// unaryBiasAVX2 is unaryAVX2 with a bias added first (no kScale).
func unaryBiasAVX2(kern int, p, b *float32, n int) {
	switch kern {
	case kGELU:
		geluBiasAVX2(p, b, n)
	case kGELUTanh:
		geluTanhBiasAVX2(p, b, n)
	case kSiLU:
		siluBiasAVX2(p, b, n)
	case kTanh:
		tanhBiasAVX2(p, b, n)
	case kReLU:
		reluBiasAVX2(p, b, n)
	}
}

func vec8Bias(kern int, d, b []float32) {
	b = b[:len(d)]
	n8 := len(d) &^ 7
	if n8 > 0 {
		unaryBiasAVX2(kern, &d[0], &b[0], n8)
	}
	if n8 < len(d) {
		var buf, bb [8]float32
		copy(buf[:], d[n8:])
		copy(bb[:], b[n8:])
		unaryBiasAVX2(kern, &buf[0], &bb[0], 8)
		copy(d[n8:], buf[:])
	}
}

func biasActAVX2(a Activation, d, bias []float32) {
	switch a {
	case GELU:
		vec8Bias(kGELU, d, bias)
	case GELUTanh:
		vec8Bias(kGELUTanh, d, bias)
	case SiLU:
		vec8Bias(kSiLU, d, bias)
	case Tanh:
		vec8Bias(kTanh, d, bias)
	case ReLU:
		vec8Bias(kReLU, d, bias)
	default:
		addAVX2(d, d, bias)
		activateGeneric(a, d)
	}
}

func addAVX2(dst, a, b []float32) {
	n := len(a)
	b, dst = b[:n], dst[:n]
	n8 := n &^ 7
	if n8 > 0 {
		add2AVX2(&dst[0], &a[0], &b[0], n8)
	}
	for i := n8; i < n; i++ {
		dst[i] = a[i] + b[i]
	}
}

func add3RowAVX2(dst, a, b, c []float32) {
	n := len(a)
	b, c, dst = b[:n], c[:n], dst[:n]
	n8 := n &^ 7
	if n8 > 0 {
		add3AVX2(&dst[0], &a[0], &b[0], &c[0], n8)
	}
	for i := n8; i < n; i++ {
		dst[i] = a[i] + (b[i] + c[i])
	}
}

// layerNormRowAVX2 is layerNormRowGeneric in three passes over the row: the
// residual add with the float64 sum, the float64 sum of squared deviations,
// and the normalization.
func layerNormRowAVX2(dst, x, r, c, g, b []float32, eps float32) {
	n := len(x)
	n8 := n &^ 7
	var sum float64
	switch {
	case r != nil && c != nil:
		r, c = r[:n], c[:n]
		if n8 > 0 {
			sum = add3SumAVX2(&x[0], &r[0], &c[0], n8)
		}
		for j := n8; j < n; j++ {
			x[j] += r[j] + c[j]
			sum += float64(x[j])
		}
	case r != nil:
		r = r[:n]
		if n8 > 0 {
			sum = add2SumAVX2(&x[0], &r[0], n8)
		}
		for j := n8; j < n; j++ {
			x[j] += r[j]
			sum += float64(x[j])
		}
	default:
		if n8 > 0 {
			sum = sumAVX2(&x[0], n8)
		}
		for _, v := range x[n8:] {
			sum += float64(v)
		}
	}
	mean := sum / float64(n)
	var ss float64
	if n8 > 0 {
		ss = sqDevAVX2(&x[0], n8, mean)
	}
	for _, v := range x[n8:] {
		d := float64(v) - mean
		ss += d * d
	}
	m := float32(mean)
	s := float32(1 / math.Sqrt(ss/float64(n)+float64(eps)))
	if b == nil {
		normRowGeneric(dst, x, g, nil, m, s)
		return
	}
	dst, g, b = dst[:n], g[:n], b[:n]
	if n8 > 0 {
		normAVX2(&dst[0], &x[0], &g[0], &b[0], n8, m, s)
	}
	normRowGeneric(dst[n8:], x[n8:], g[n8:], b[n8:], m, s)
}

// scoreRowAVX2 is scoreRowGeneric: scale, mask and maximum in one pass,
// exp and sum in a second.
func scoreRowAVX2(row, mask []float32, scale float32, lim int) float32 {
	return scoreRowVec(row, mask, scale, lim, false)
}

// scoreRowsZ is opsImpl.scoreRows for AVX-512: one assembly call for all
// rows when n is a multiple of 16.
func scoreRowsZ(s []float32, ld, rows, n int, mask []float32, scale float32, inv []float32) bool {
	if rows == 0 || n == 0 || n%16 != 0 {
		return false
	}
	_ = s[(rows-1)*ld+n-1]
	_ = mask[n-1]
	_ = inv[rows-1]
	scoreRowsAVX512(&s[0], ld, rows, n, &mask[0], scale, &inv[0])
	return true
}

func scoreRowVec(row, mask []float32, scale float32, lim int, w16 bool) float32 {
	clear(row[lim:])
	row = row[:lim]
	n8 := lim &^ 7
	negInf := float32(math.Inf(-1))
	mx := negInf
	if mask != nil {
		mask = mask[:lim]
		if n8 > 0 {
			mx = scaleMaskMaxAVX2(&row[0], &mask[0], n8, scale)
		}
		for j := n8; j < lim; j++ {
			y := row[j]*scale + mask[j]
			row[j] = y
			if y > mx {
				mx = y
			}
		}
	} else {
		if n8 > 0 {
			mx = scaleMaxAVX2(&row[0], n8, scale)
		}
		for j := n8; j < lim; j++ {
			y := row[j] * scale
			row[j] = y
			if y > mx {
				mx = y
			}
		}
	}
	if mx == negInf {
		clear(row)
		return 0
	}
	return float32(1 / expSumVec(row, mx, w16))
}

//go:noescape
func reluAVX2(d *float32, n int)

//go:noescape
func reluBiasAVX2(d, b *float32, n int)

//go:noescape
func geluBiasAVX2(d, b *float32, n int)

//go:noescape
func geluTanhBiasAVX2(d, b *float32, n int)

//go:noescape
func siluBiasAVX2(d, b *float32, n int)

//go:noescape
func tanhBiasAVX2(d, b *float32, n int)

//go:noescape
func add2AVX2(dst, a, b *float32, n int)

//go:noescape
func add3AVX2(dst, a, b, c *float32, n int)

//go:noescape
func sumAVX2(x *float32, n int) float64

//go:noescape
func add2SumAVX2(x, r *float32, n int) float64

//go:noescape
func add3SumAVX2(x, r, c *float32, n int) float64

//go:noescape
func sqDevAVX2(x *float32, n int, mean float64) float64

//go:noescape
func normAVX2(dst, x, gamma, beta *float32, n int, m, s float32)

//go:noescape
func scaleMaxAVX2(d *float32, n int, s float32) float32

//go:noescape
func scaleMaskMaxAVX2(d, m *float32, n int, s float32) float32

//go:noescape
func geluAVX2(d *float32, n int)

//go:noescape
func geluTanhAVX2(d *float32, n int)

//go:noescape
func siluAVX2(d *float32, n int)

//go:noescape
func tanhAVX2(d *float32, n int)

//go:noescape
func expSumAVX2(d *float32, n int, mx float32) float64

//go:noescape
func expSumAVX512(d *float32, n int, mx float32) float64

//go:noescape
func scoreRowsAVX512(d *float32, ld, rows, n int, m *float32, s float32, inv *float32)

//go:noescape
func geluAVX512(d *float32, n int)

//go:noescape
func geluBiasAVX512(d, b *float32, n int)

//go:noescape
func geluTanhAVX512(d *float32, n int)

//go:noescape
func geluTanhBiasAVX512(d, b *float32, n int)

//go:noescape
func siluAVX512(d *float32, n int)

//go:noescape
func siluBiasAVX512(d, b *float32, n int)

//go:noescape
func maxAVX2(d *float32, n int) float32

//go:noescape
func scaleAVX2(d *float32, n int, s float32)
