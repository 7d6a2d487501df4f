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
	}
	return append(impls, avx2), avx2
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
	default:
		activateGeneric(a, d)
	}
}

func softmaxRowAVX2(row []float32) {
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
	var sum float64
	if n8 > 0 {
		sum = expSumAVX2(&row[0], n8, mx)
	}
	if n8 < len(row) {
		buf := [8]float32{negInf, negInf, negInf, negInf, negInf, negInf, negInf, negInf}
		copy(buf[:], row[n8:])
		sum += expSumAVX2(&buf[0], 8, mx)
		copy(row[n8:], buf[:])
	}
	vec8(kScale, row, float32(1/sum))
}

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
func maxAVX2(d *float32, n int) float32

//go:noescape
func scaleAVX2(d *float32, n int, s float32)
