package main

import (
	"fmt"
	"math"
	"os"
	"strings"
)

// The element-wise kernels of tensor/ops_amd64.s: exp, the activations and
// the softmax passes, eight float32 lanes at a time (AVX2 + FMA). They work on
// whole vectors only; the Go side pads the tail. Every constant is stored as
// eight copies in one table, ·opsK, so that it can be a memory operand.
//
// The polynomials are fitted here, at generation time, by Chebyshev
// interpolation in float64 (near-minimax for these smooth functions); the
// worst relative error of each fit is printed on stderr.

var (
	kNames  []string
	kVals   []float32
	kOffset = map[string]int{}
)

// kc registers a named constant and returns its memory operand.
func kc(name string, v float32) string {
	if _, ok := kOffset[name]; !ok {
		kOffset[name] = 32 * len(kVals)
		kNames = append(kNames, name)
		kVals = append(kVals, v)
	}
	return k(name)
}

// k is the memory operand of a registered constant.
func k(name string) string {
	off, ok := kOffset[name]
	if !ok {
		panic("unknown constant " + name)
	}
	return fmt.Sprintf("·opsK+%d(SB)", off)
}

func kBits(name string, bits uint32) string { return kc(name, math.Float32frombits(bits)) }

// chebFit returns the monomial coefficients (in v ∈ [-1, 1], v = A·x + B
// mapping [lo, hi]) of the degree-d Chebyshev interpolant of f on [lo, hi],
// and A, B.
func chebFit(f func(float64) float64, lo, hi float64, d int) (coef []float64, A, B float64) {
	n := d + 1
	A = 2 / (hi - lo)
	B = -(hi + lo) / (hi - lo)
	c := make([]float64, n)
	for i := 0; i < n; i++ {
		v := math.Cos(math.Pi * (float64(i) + 0.5) / float64(n))
		fx := f((v - B) / A)
		for j := 0; j < n; j++ {
			c[j] += 2 / float64(n) * fx * math.Cos(float64(j)*math.Pi*(float64(i)+0.5)/float64(n))
		}
	}
	c[0] /= 2
	// Σ c_j T_j(v) in monomials: T_0 = 1, T_1 = v, T_{j+1} = 2v·T_j − T_{j−1}.
	coef = make([]float64, n)
	tPrev := make([]float64, n)
	tCur := make([]float64, n)
	tPrev[0] = 1
	tCur[1%n] = 1
	if n == 1 {
		tCur = tPrev
	}
	for j := 0; j < n; j++ {
		var t []float64
		switch j {
		case 0:
			t = tPrev
		case 1:
			t = tCur
		default:
			next := make([]float64, n)
			for i := 0; i+1 < n; i++ {
				next[i+1] += 2 * tCur[i]
			}
			for i := range next {
				next[i] -= tPrev[i]
			}
			tPrev, tCur = tCur, next
			t = next
		}
		for i := range coef {
			coef[i] += c[j] * t[i]
		}
	}
	return coef, A, B
}

// fitReport prints the worst relative error of the float32-rounded fit.
func fitReport(name string, f func(float64) float64, coef []float64, A, B, lo, hi float64) {
	worst := 0.0
	for i := 0; i <= 100000; i++ {
		x := lo + (hi-lo)*float64(i)/100000
		v := A*x + B
		p := 0.0
		for j := len(coef) - 1; j >= 0; j-- {
			p = p*v + float64(float32(coef[j]))
		}
		if e := math.Abs(p-f(x)) / math.Abs(f(x)); e > worst {
			worst = e
		}
	}
	fmt.Fprintf(os.Stderr, "%s: degree %d, worst relative error %.3g\n", name, len(coef)-1, worst)
}

// polyConsts registers coefficients name0..nameD and returns D.
func polyConsts(name string, coef []float64) int {
	for j, c := range coef {
		kc(fmt.Sprintf("%s%d", name, j), float32(c))
	}
	return len(coef) - 1
}

// wide switches the helpers below from AVX2 (Y registers, constants read as
// eight copies) to AVX-512 (Z registers, constants broadcast from their first
// copy with the .BCST form of the instruction).
var wide bool

// vr names vector register i at the current width.
func vr(i int) string {
	if wide {
		return fmt.Sprintf("Z%d", i)
	}
	return fmt.Sprintf("Y%d", i)
}

// bc is instruction ins in the form that takes a constant memory operand.
func bc(ins string) string {
	if wide {
		return ins + ".BCST"
	}
	return ins
}

// ldk loads constant name into every lane of register r.
func ldk(name string, r int) {
	if wide {
		emit("VBROADCASTSS %s, Z%d", k(name), r)
	} else {
		emit("VMOVUPS %s, Y%d", k(name), r)
	}
}

// estrin emits p = Σ name_j·v^j into register p, with v in register v, by
// Estrin's scheme: pairs c_2i + c_2i+1·v, then pairs of those with v², v⁴,
// ... The chain of dependent FMAs is about log2(d) long instead of d
// (Horner), which lets the core overlap more of consecutive vectors: these
// kernels are latency-bound. It uses the registers of scratch
// (⌈(d+1)/2⌉ + ⌈log2(d+1)⌉ − 1 of them), none of which may be v or p.
func estrin(name string, d int, v, p int, scratch []int) {
	c := func(j int) string { return fmt.Sprintf("%s%d", name, j) }
	free := append([]int(nil), scratch...)
	alloc := func() int {
		if len(free) == 0 {
			panic("estrin: out of scratch registers for " + name)
		}
		r := free[0]
		free = free[1:]
		return r
	}
	var terms []int
	for j := 0; j <= d; j += 2 {
		r := alloc()
		ldk(c(min(j+1, d)), r)
		if j+1 <= d {
			emit("%s %s, %s, %s", bc("VFMADD213PS"), k(c(j)), vr(v), vr(r))
		}
		terms = append(terms, r)
	}
	pow := v
	for len(terms) > 1 {
		sq := alloc()
		emit("VMULPS %s, %s, %s", vr(pow), vr(pow), vr(sq))
		pow = sq
		var next []int
		for i := 0; i < len(terms); i += 2 {
			if i+1 < len(terms) {
				emit("VFMADD231PS %s, %s, %s", vr(terms[i+1]), vr(pow), vr(terms[i]))
				free = append(free, terms[i+1])
			}
			next = append(next, terms[i])
		}
		terms = next
	}
	emit("VMOVAPS %s, %s", vr(terms[0]), vr(p))
}

// Limits of the exp argument: above expHi the result would overflow, below
// expLo 2^n would leave the normal range (the scaling adds n to the exponent
// field, which is only right for normal results).
const (
	expLo = -86.5
	expHi = 88.3
)

// exp emits Yx = exp(Yx) for Yx in [expLo, expHi], using Ya and Yn. The
// argument is split as x = n·ln2 + r (|r| ≤ ln2/2, n rounded with the 1.5·2²³
// trick so that n's integer value sits in the low bits), exp(r) comes from its
// degree-7 Taylor polynomial (truncation below 1e-8 relative) and 2^n is added
// to the exponent bits.
func expY(x, a, n int, scratch []int) {
	ldk("log2e", a)
	emit("%s %s, %s, %s", bc("VFMADD213PS"), k("magic"), vr(x), vr(a))
	emit("%s %s, %s, %s", bc("VSUBPS"), k("magic"), vr(a), vr(n))
	emit("%s %s, %s, %s", bc("VFNMADD231PS"), k("ln2hi"), vr(n), vr(x))
	emit("%s %s, %s, %s", bc("VFNMADD231PS"), k("ln2lo"), vr(n), vr(x))
	estrin("exp", 7, x, n, scratch)
	emit("VPSLLD $23, %s, %s", vr(a), vr(a))
	emit("VPADDD %s, %s, %s", vr(a), vr(n), vr(x))
}

// Fitted constants shared between the generator and its report.
var (
	// GELU: Φ(−|x|) = ½·erfc(z), z = |x|/√2, written as ½·t·g(t)·e^{−z²}
	// with t = 1/(1 + z/2); g is smooth on t ∈ (0, 1]. x is clamped to
	// |x| ≤ 13 (z ≤ 9.2, t ≥ 0.178), beyond which e^{−z²} underflows.
	erfcTLo = 0.17
	// tanh(x) = x + x·s·q(s), s = x², for |x| < tanhSmall, where the
	// (1−e)/(1+e) form would lose digits to cancellation.
	tanhSmall = 0.625
)

func erfcG(t float64) float64 {
	z := 2 * (1/t - 1)
	return math.Erfc(z) * math.Exp(z*z) / t
}

func tanhQ(s float64) float64 {
	if s < 1e-6 {
		return -1.0/3 + 2*s/15 - 17*s*s/315
	}
	x := math.Sqrt(s)
	return (math.Tanh(x)/x - 1) / s
}

func ops() {
	// Constants.
	kc("one", 1)
	kc("half", 0.5)
	kc("mhalf", -0.5)
	kc("mtwo", -2)
	kBits("abs", 0x7fffffff)
	kBits("sign", 0x80000000)
	kc("expLo", expLo)
	kc("expHi", expHi)
	kc("log2e", float32(math.Log2E))
	kc("magic", 1.5*(1<<23))
	ln2hi := float32(math.Ln2)
	kc("ln2hi", ln2hi)
	kc("ln2lo", float32(math.Ln2-float64(ln2hi)))
	fact := 1.0
	for j := 0; j <= 7; j++ {
		if j > 0 {
			fact *= float64(j)
		}
		kc(fmt.Sprintf("exp%d", j), float32(1/fact))
	}
	gCoef, gA, gB := chebFit(erfcG, erfcTLo, 1, 12)
	fitReport("erfc g(t)", erfcG, gCoef, gA, gB, erfcTLo, 1)
	gDeg := polyConsts("g", gCoef)
	kc("gA", float32(gA))
	kc("gB", float32(gB))
	kc("zHalf", float32(0.5/math.Sqrt2))
	kc("geluMax", 13)
	qCoef, qA, qB := chebFit(tanhQ, 0, tanhSmall*tanhSmall, 6)
	fitReport("tanh q(s)", tanhQ, qCoef, qA, qB, 0, tanhSmall*tanhSmall)
	qDeg := polyConsts("q", qCoef)
	kc("qA", float32(qA))
	kc("qB", float32(qB))
	kc("tanhSmall", float32(tanhSmall))
	const sqrt2OverPi = 0.7978845608028654
	kc("gt1", float32(2*sqrt2OverPi))
	kc("gt3", float32(2*sqrt2OverPi*0.044715))
	kc("negInf", float32(math.Inf(-1)))
	kc("m20", -20)
	kc("p20", 20)

	// unary writes name(d, n) and, fused with the bias add that precedes
	// an activation in a feed-forward block, nameBias(d, b, n): d[i] =
	// f(d[i] + b[i]), which saves a pass over the activations. The bodies
	// use Y0..Y13 and no general registers besides SI, BX and CX.
	unary := func(name, doc string, body func()) {
		for _, bias := range []bool{false, true} {
			fn, frame := name, "16"
			if bias {
				fn, frame = strings.TrimSuffix(name, "AVX2")+"BiasAVX2", "24"
				sigs[fn] = fn + "(d, b *float32, n int)"
				fmt.Fprintf(&out, "\n// %s\n// With the bias b[i] added to d[i] first.", doc)
			} else {
				sigs[fn] = fn + "(d *float32, n int)"
				fmt.Fprintf(&out, "\n// %s", doc)
			}
			text(fn, frame)
			emit("MOVQ d+0(FP), SI")
			if bias {
				emit("MOVQ b+8(FP), BX")
				emit("MOVQ n+16(FP), CX")
			} else {
				emit("MOVQ n+8(FP), CX")
			}
			emit("SHRQ $3, CX")
			emit("JZ %s_done", fn)
			label(fn + "_loop")
			emit("VMOVUPS (SI), Y0")
			if bias {
				emit("VADDPS (BX), Y0, Y0")
				emit("ADDQ $32, BX")
			}
			body()
			emit("VMOVUPS Y0, (SI)")
			emit("ADDQ $32, SI")
			emit("DECQ CX")
			emit("JNZ %s_loop", fn)
			label(fn + "_done")
			emit("VZEROUPPER")
			emit("RET")
		}
	}

	unary("geluAVX2", "d[i] = x·Φ(x) (exact GELU) for n (a multiple of 8) values.", func() {
		// t = 1/(1 + |x|/(2√2)) in Y3.
		// Beyond |x| = geluMax, Φ(−|x|) is below float32's range: mask in Y10.
		emit("VANDPS %s, Y0, Y1", k("abs"))
		emit("VCMPPS $1, %s, Y1, Y10", k("geluMax"))
		emit("VMINPS %s, Y1, Y1", k("geluMax"))
		emit("VMOVUPS %s, Y2", k("zHalf"))
		emit("VFMADD213PS %s, Y1, Y2", k("one"))
		emit("VMOVUPS %s, Y3", k("one"))
		emit("VDIVPS Y2, Y3, Y3")
		// g(t) in Y5.
		emit("VMOVUPS %s, Y4", k("gA"))
		emit("VFMADD213PS %s, Y3, Y4", k("gB"))
		estrin("g", gDeg, 4, 5, []int{2, 6, 7, 8, 9, 11, 12, 13, 14, 15})
		// e^{−x²/2} with x² = hi + lo exactly (hi in Y6, lo in Y7), so
		// that the rounding of x² does not get amplified by the exp.
		emit("VMULPS Y1, Y1, Y6")
		emit("VMOVAPS Y6, Y7")
		emit("VFMSUB231PS Y1, Y1, Y7")
		emit("VMULPS %s, Y6, Y6", k("mhalf"))
		emit("VMAXPS %s, Y6, Y6", k("expLo"))
		expY(6, 8, 9, []int{1, 2, 4, 11, 12, 13})
		emit("VMULPS %s, Y7, Y7", k("half"))
		emit("VFNMADD231PS Y7, Y6, Y6")
		// ½·t·g·e = Φ(−|x|) in Y5; Φ(x) is that for x < 0, 1 − that otherwise.
		emit("VMULPS Y3, Y5, Y5")
		emit("VMULPS Y6, Y5, Y5")
		emit("VMULPS %s, Y5, Y5", k("half"))
		emit("VANDPS Y10, Y5, Y5")
		emit("VMOVUPS %s, Y1", k("one"))
		emit("VSUBPS Y5, Y1, Y1")
		emit("VBLENDVPS Y0, Y5, Y1, Y1")
		emit("VMULPS Y1, Y0, Y0")
	})

	// x·σ(y) = x / (1 + e^{−y}); e^{−y} is clamped below, which only matters
	// where the result is x to float32 precision anyway.
	// Where e^{−y} would overflow, the result is 0 (mask in Y10).
	// If lo ≥ 0, Ylo holds the rounding error of y (y = Yy + Ylo), taken
	// into account as e^{−y} ≈ e^{−Yy}·(1 − Ylo).
	sigmoidTimesX := func(y, lo int) {
		emit("VXORPS %s, Y%d, Y%d", k("sign"), y, y)
		emit("VCMPPS $1, %s, Y%d, Y10", k("expHi"), y)
		emit("VMAXPS %s, Y%d, Y%d", k("expLo"), y, y)
		emit("VMINPS %s, Y%d, Y%d", k("expHi"), y, y)
		expY(y, 3, 4, []int{5, 6, 7, 8, 11, 12})
		if lo >= 0 {
			emit("VFNMADD231PS Y%d, Y%d, Y%d", lo, y, y)
		}
		emit("VADDPS %s, Y%d, Y%d", k("one"), y, y)
		emit("VDIVPS Y%d, Y0, Y0", y)
		emit("VANDPS Y10, Y0, Y0")
	}
	unary("geluTanhAVX2", "d[i] = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) = x·σ(2u) for n (a multiple of 8) values.", func() {
		// y = x·w, w = 2c + 2c·0.044715·s, s = x². The exponent amplifies
		// y's rounding error by |y|, so the errors of s and of x·w are
		// carried in Y13 (computed exactly with FMA).
		// x is clamped to ±20 (Y9) for y, which keeps x² finite and does
		// not change the result: beyond, it is 0 or x in float32.
		emit("VMAXPS %s, Y0, Y9", k("m20"))
		emit("VMINPS %s, Y9, Y9", k("p20"))
		emit("VMULPS Y9, Y9, Y1")
		emit("VMOVAPS Y1, Y11")
		emit("VFMSUB231PS Y9, Y9, Y11")
		emit("VMOVUPS %s, Y2", k("gt3"))
		emit("VFMADD213PS %s, Y1, Y2", k("gt1"))
		emit("VMULPS Y9, Y2, Y12")
		emit("VMOVAPS Y12, Y13")
		emit("VFMSUB231PS Y9, Y2, Y13")
		emit("VMULPS %s, Y11, Y11", k("gt3"))
		emit("VFMADD231PS Y9, Y11, Y13")
		emit("VMOVAPS Y12, Y2")
		sigmoidTimesX(2, 13)
	})
	unary("reluAVX2", "d[i] = max(0, x) for n (a multiple of 8) values; NaN and −0 pass through, as\n// in the generic x < 0 test.", func() {
		// MAXPS returns its second source when the first is not greater:
		// max(0, NaN) = NaN, max(0, −0) = −0.
		emit("VXORPS Y1, Y1, Y1")
		emit("VMAXPS Y0, Y1, Y0")
	})
	unary("siluAVX2", "d[i] = x·σ(x) for n (a multiple of 8) values.", func() {
		emit("VMOVAPS Y0, Y2")
		sigmoidTimesX(2, -1)
	})
	unary("tanhAVX2", "d[i] = tanh(x) for n (a multiple of 8) values.", func() {
		emit("VANDPS %s, Y0, Y1", k("abs"))
		emit("VMULPS %s, Y1, Y2", k("mtwo"))
		emit("VMAXPS %s, Y2, Y2", k("expLo"))
		expY(2, 3, 4, []int{5, 6, 7, 8, 9, 11})
		emit("VMOVUPS %s, Y3", k("one"))
		emit("VSUBPS Y2, Y3, Y3")
		emit("VADDPS %s, Y2, Y2", k("one"))
		emit("VDIVPS Y2, Y3, Y3")
		emit("VANDPS %s, Y0, Y4", k("sign"))
		emit("VORPS Y4, Y3, Y3")
		// Small |x|: x + x·s·q(s).
		emit("VMULPS Y0, Y0, Y5")
		emit("VMOVUPS %s, Y8", k("qA"))
		emit("VFMADD213PS %s, Y5, Y8", k("qB"))
		estrin("q", qDeg, 8, 6, []int{2, 4, 7, 9, 10, 11})
		emit("VMULPS Y5, Y6, Y6")
		emit("VFMADD213PS Y0, Y0, Y6")
		emit("VCMPPS $1, %s, Y1, Y7", k("tanhSmall"))
		emit("VBLENDVPS Y7, Y6, Y3, Y0")
	})

	// func expSumAVX2(d *float32, n int, mx float32) float64
	name := "expSumAVX2"
	sigs[name] = name + "(d *float32, n int, mx float32) float64"
	fmt.Fprintf(&out, "\n// d[i] = exp(d[i] − mx) for n (a multiple of 8) values; returns their sum,\n// accumulated in float64. Arguments below expLo give exactly 0.")
	text(name, "32")
	emit("MOVQ d+0(FP), SI")
	emit("MOVQ n+8(FP), CX")
	emit("VBROADCASTSS mx+16(FP), Y15")
	emit("VXORPD Y12, Y12, Y12")
	emit("VXORPD Y13, Y13, Y13")
	emit("SHRQ $3, CX")
	emit("JZ %s_sum", name)
	label(name + "_loop")
	emit("VMOVUPS (SI), Y0")
	emit("VSUBPS Y15, Y0, Y0")
	emit("VCMPPS $0x1D, %s, Y0, Y7", k("expLo")) // GE_OQ: false for NaN and below expLo
	emit("VMAXPS %s, Y0, Y0", k("expLo"))
	expY(0, 2, 3, []int{1, 4, 5, 6, 8, 9})
	emit("VANDPS Y7, Y0, Y0")
	emit("VMOVUPS Y0, (SI)")
	emit("VCVTPS2PD X0, Y4")
	emit("VEXTRACTF128 $1, Y0, X5")
	emit("VCVTPS2PD X5, Y5")
	emit("VADDPD Y4, Y12, Y12")
	emit("VADDPD Y5, Y13, Y13")
	emit("ADDQ $32, SI")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	label(name + "_sum")
	emit("VADDPD Y13, Y12, Y12")
	emit("VEXTRACTF128 $1, Y12, X13")
	emit("VADDPD X13, X12, X12")
	emit("VHADDPD X12, X12, X12")
	emit("VMOVSD X12, ret+24(FP)")
	emit("VZEROUPPER")
	emit("RET")

	// func maxAVX2(d *float32, n int) float32
	name = "maxAVX2"
	sigs[name] = name + "(d *float32, n int) float32"
	fmt.Fprintf(&out, "\n// The largest of n (a multiple of 8) values; -Inf for n = 0.")
	text(name, "20")
	emit("MOVQ d+0(FP), SI")
	emit("MOVQ n+8(FP), CX")
	emit("VMOVUPS %s, Y0", k("negInf"))
	emit("VMOVUPS Y0, Y1")
	emit("SHRQ $3, CX")
	emit("JZ %s_reduce", name)
	label(name + "_loop")
	emit("VMAXPS (SI), Y0, Y0")
	emit("ADDQ $32, SI")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	label(name + "_reduce")
	emit("VEXTRACTF128 $1, Y0, X1")
	emit("VMAXPS X1, X0, X0")
	emit("VMOVHLPS X0, X0, X1")
	emit("VMAXPS X1, X0, X0")
	emit("VPSHUFD $1, X0, X1")
	emit("VMAXPS X1, X0, X0")
	emit("VMOVSS X0, ret+16(FP)")
	emit("VZEROUPPER")
	emit("RET")

	// func scaleAVX2(d *float32, n int, s float32)
	name = "scaleAVX2"
	sigs[name] = name + "(d *float32, n int, s float32)"
	fmt.Fprintf(&out, "\n// d[i] *= s for n (a multiple of 8) values.")
	text(name, "20")
	emit("MOVQ d+0(FP), SI")
	emit("MOVQ n+8(FP), CX")
	emit("VBROADCASTSS s+16(FP), Y1")
	emit("SHRQ $3, CX")
	emit("JZ %s_done", name)
	label(name + "_loop")
	emit("VMULPS (SI), Y1, Y0")
	emit("VMOVUPS Y0, (SI)")
	emit("ADDQ $32, SI")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	label(name + "_done")
	emit("VZEROUPPER")
	emit("RET")

	rowOps()
	scoreOps()
	wide = true
	wideOps(gDeg)
	wide = false

	// The constant table.
	fmt.Fprintf(&out, "\n// Constants, eight copies each:")
	for i, n := range kNames {
		if i%8 == 0 {
			fmt.Fprintf(&out, "\n//")
		}
		fmt.Fprintf(&out, " %s", n)
	}
	out.WriteString("\n")
	for i, v := range kVals {
		for l := 0; l < 8; l++ {
			fmt.Fprintf(&out, "DATA ·opsK+%d(SB)/4, $0x%08x\n", 32*i+4*l, math.Float32bits(v))
		}
	}
	fmt.Fprintf(&out, "GLOBL ·opsK(SB), RODATA|NOPTR, $%d\n", 32*len(kVals))
}

// sumPD emits the float64 accumulation of the eight floats in Y0 into Y12
// (low four) and Y13 (high four), using Y4 and Y5.
func sumPD() {
	emit("VCVTPS2PD X0, Y4")
	emit("VEXTRACTF128 $1, Y0, X5")
	emit("VCVTPS2PD X5, Y5")
	emit("VADDPD Y4, Y12, Y12")
	emit("VADDPD Y5, Y13, Y13")
}

// reducePD emits the sum of Y12 and Y13's lanes into ret (a float64 result).
func reducePD(ret string) {
	emit("VADDPD Y13, Y12, Y12")
	emit("VEXTRACTF128 $1, Y12, X13")
	emit("VADDPD X13, X12, X12")
	emit("VHADDPD X12, X12, X12")
	emit("VMOVSD X12, %s", ret)
}

// rowOps writes the memory-bound row kernels behind Add, AddBias and
// LayerNorm (plain and fused with the residual add), on whole vectors of
// eight; the Go side does the tails.
func rowOps() {
	// add2AVX2 / add3AVX2: dst = a + b, dst = a + (b + c).
	for _, three := range []bool{false, true} {
		name, frame := "add2AVX2", "32"
		sigs[name] = name + "(dst, a, b *float32, n int)"
		doc := "dst[i] = a[i] + b[i] for n (a multiple of 8) values; dst may alias a or b."
		if three {
			name, frame = "add3AVX2", "40"
			sigs[name] = name + "(dst, a, b, c *float32, n int)"
			doc = "dst[i] = a[i] + (b[i] + c[i]) for n (a multiple of 8) values; dst may alias any input."
		}
		fmt.Fprintf(&out, "\n// %s", doc)
		text(name, frame)
		emit("MOVQ dst+0(FP), DI")
		emit("MOVQ a+8(FP), SI")
		emit("MOVQ b+16(FP), DX")
		if three {
			emit("MOVQ c+24(FP), R8")
			emit("MOVQ n+32(FP), CX")
		} else {
			emit("MOVQ n+24(FP), CX")
		}
		emit("XORQ AX, AX")
		emit("SHLQ $2, CX")
		emit("JZ %s_done", name)
		label(name + "_loop")
		emit("VMOVUPS (DX)(AX*1), Y0")
		if three {
			emit("VADDPS (R8)(AX*1), Y0, Y0")
		}
		emit("VADDPS (SI)(AX*1), Y0, Y0")
		emit("VMOVUPS Y0, (DI)(AX*1)")
		emit("ADDQ $32, AX")
		emit("CMPQ AX, CX")
		emit("JLT %s_loop", name)
		label(name + "_done")
		emit("VZEROUPPER")
		emit("RET")
	}

	// sumAVX2, add2SumAVX2, add3SumAVX2: the first pass of LayerNorm, with
	// the residual (and bias) added in the same pass: x[i] += r[i] (+ c[i]),
	// returning Σ x[i] accumulated in float64 as the generic code does.
	for _, extra := range []int{0, 1, 2} {
		name, frame := "sumAVX2", "24"
		sigs[name] = name + "(x *float32, n int) float64"
		doc := "The sum of n (a multiple of 8) values, accumulated in float64."
		switch extra {
		case 1:
			name, frame = "add2SumAVX2", "32"
			sigs[name] = name + "(x, r *float32, n int) float64"
			doc = "x[i] += r[i] for n (a multiple of 8) values; returns Σ x[i] (new values),\n// accumulated in float64."
		case 2:
			name, frame = "add3SumAVX2", "40"
			sigs[name] = name + "(x, r, c *float32, n int) float64"
			doc = "x[i] = x[i] + (r[i] + c[i]) for n (a multiple of 8) values; returns Σ x[i]\n// (new values), accumulated in float64."
		}
		fmt.Fprintf(&out, "\n// %s", doc)
		text(name, frame)
		emit("MOVQ x+0(FP), SI")
		nOff := 8 * (1 + extra)
		if extra >= 1 {
			emit("MOVQ r+8(FP), DX")
		}
		if extra == 2 {
			emit("MOVQ c+16(FP), R8")
		}
		emit("MOVQ n+%d(FP), CX", nOff)
		emit("VXORPD Y12, Y12, Y12")
		emit("VXORPD Y13, Y13, Y13")
		emit("SHRQ $3, CX")
		emit("JZ %s_sum", name)
		label(name + "_loop")
		switch extra {
		case 0:
			emit("VMOVUPS (SI), Y0")
		case 1:
			emit("VMOVUPS (DX), Y0")
			emit("VADDPS (SI), Y0, Y0")
			emit("VMOVUPS Y0, (SI)")
			emit("ADDQ $32, DX")
		case 2:
			emit("VMOVUPS (DX), Y0")
			emit("VADDPS (R8), Y0, Y0")
			emit("VADDPS (SI), Y0, Y0")
			emit("VMOVUPS Y0, (SI)")
			emit("ADDQ $32, DX")
			emit("ADDQ $32, R8")
		}
		sumPD()
		emit("ADDQ $32, SI")
		emit("DECQ CX")
		emit("JNZ %s_loop", name)
		label(name + "_sum")
		reducePD(fmt.Sprintf("ret+%d(FP)", nOff+8))
		emit("VZEROUPPER")
		emit("RET")
	}

	// sqDevAVX2: Σ (x[i] − mean)², in float64 throughout (the second pass of
	// LayerNorm; the row is in L1 by now).
	name := "sqDevAVX2"
	sigs[name] = name + "(x *float32, n int, mean float64) float64"
	fmt.Fprintf(&out, "\n// Σ (x[i] − mean)² over n (a multiple of 8) values, in float64.")
	text(name, "32")
	emit("MOVQ x+0(FP), SI")
	emit("MOVQ n+8(FP), CX")
	emit("VBROADCASTSD mean+16(FP), Y15")
	emit("VXORPD Y12, Y12, Y12")
	emit("VXORPD Y13, Y13, Y13")
	emit("SHRQ $3, CX")
	emit("JZ %s_sum", name)
	label(name + "_loop")
	emit("VCVTPS2PD (SI), Y4")
	emit("VCVTPS2PD 16(SI), Y5")
	emit("VSUBPD Y15, Y4, Y4")
	emit("VSUBPD Y15, Y5, Y5")
	emit("VFMADD231PD Y4, Y4, Y12")
	emit("VFMADD231PD Y5, Y5, Y13")
	emit("ADDQ $32, SI")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	label(name + "_sum")
	reducePD("ret+24(FP)")
	emit("VZEROUPPER")
	emit("RET")

	// normAVX2: the last pass of LayerNorm.
	name = "normAVX2"
	sigs[name] = name + "(dst, x, gamma, beta *float32, n int, m, s float32)"
	fmt.Fprintf(&out, "\n// dst[i] = (x[i] − m)·s·gamma[i] + beta[i] for n (a multiple of 8) values; dst may\n// alias x.")
	text(name, "48")
	emit("MOVQ dst+0(FP), DI")
	emit("MOVQ x+8(FP), SI")
	emit("MOVQ gamma+16(FP), DX")
	emit("MOVQ beta+24(FP), R8")
	emit("MOVQ n+32(FP), CX")
	emit("VBROADCASTSS m+40(FP), Y14")
	emit("VBROADCASTSS s+44(FP), Y15")
	emit("XORQ AX, AX")
	emit("SHLQ $2, CX")
	emit("JZ %s_done", name)
	label(name + "_loop")
	emit("VMOVUPS (SI)(AX*1), Y0")
	emit("VSUBPS Y14, Y0, Y0")
	emit("VMULPS Y15, Y0, Y0")
	emit("VMOVUPS (DX)(AX*1), Y1")
	emit("VFMADD213PS (R8)(AX*1), Y1, Y0")
	emit("VMOVUPS Y0, (DI)(AX*1)")
	emit("ADDQ $32, AX")
	emit("CMPQ AX, CX")
	emit("JLT %s_loop", name)
	label(name + "_done")
	emit("VZEROUPPER")
	emit("RET")
}

// scoreOps writes the first pass of the attention softmax: scale, add the key
// mask and find the row maximum in one go, so each score row is read three
// times (this pass, exp-and-sum, and nothing more: the normalisation is applied
// to the much shorter output row).
func scoreOps() {
	for _, masked := range []bool{false, true} {
		name, frame, ret := "scaleMaxAVX2", "28", "ret+24(FP)"
		sigs[name] = name + "(d *float32, n int, s float32) float32"
		doc := "d[i] *= s for n (a multiple of 8) values; returns the largest (-Inf for n = 0)."
		if masked {
			name, frame, ret = "scaleMaskMaxAVX2", "36", "ret+32(FP)"
			sigs[name] = name + "(d, m *float32, n int, s float32) float32"
			doc = "d[i] = d[i]·s + m[i] for n (a multiple of 8) values; returns the largest\n// (-Inf for n = 0)."
		}
		fmt.Fprintf(&out, "\n// %s", doc)
		text(name, frame)
		emit("MOVQ d+0(FP), SI")
		if masked {
			emit("MOVQ m+8(FP), DX")
			emit("MOVQ n+16(FP), CX")
			emit("VBROADCASTSS s+24(FP), Y15")
		} else {
			emit("MOVQ n+8(FP), CX")
			emit("VBROADCASTSS s+16(FP), Y15")
		}
		emit("VMOVUPS %s, Y1", k("negInf"))
		emit("SHRQ $3, CX")
		emit("JZ %s_reduce", name)
		label(name + "_loop")
		if masked {
			emit("VMOVUPS (DX), Y0")
			emit("VFMADD231PS (SI), Y15, Y0")
			emit("ADDQ $32, DX")
		} else {
			emit("VMULPS (SI), Y15, Y0")
		}
		emit("VMOVUPS Y0, (SI)")
		emit("VMAXPS Y0, Y1, Y1")
		emit("ADDQ $32, SI")
		emit("DECQ CX")
		emit("JNZ %s_loop", name)
		label(name + "_reduce")
		maxReduceY1()
		emit("VMOVSS X1, %s", ret)
		emit("VZEROUPPER")
		emit("RET")
	}
}

// wideOps writes the AVX-512 forms of the compute-bound element-wise kernels
// (GELU, tanh-GELU, SiLU and the softmax exp), sixteen lanes at a time: the
// same arithmetic as the AVX2 bodies, with masks in K registers instead of
// vectors. They work on whole vectors of sixteen; the Go side pads the tail.
func wideOps(gDeg int) {
	unary := func(name, doc string, body func()) {
		for _, bias := range []bool{false, true} {
			fn, frame := name, "16"
			if bias {
				fn, frame = strings.TrimSuffix(name, "AVX512")+"BiasAVX512", "24"
				sigs[fn] = fn + "(d, b *float32, n int)"
				fmt.Fprintf(&out, "\n// %s\n// With the bias b[i] added to d[i] first.", doc)
			} else {
				sigs[fn] = fn + "(d *float32, n int)"
				fmt.Fprintf(&out, "\n// %s", doc)
			}
			text(fn, frame)
			emit("MOVQ d+0(FP), SI")
			if bias {
				emit("MOVQ b+8(FP), BX")
				emit("MOVQ n+16(FP), CX")
			} else {
				emit("MOVQ n+8(FP), CX")
			}
			emit("SHRQ $4, CX")
			emit("JZ %s_done", fn)
			label(fn + "_loop")
			emit("VMOVUPS (SI), Z0")
			if bias {
				emit("VADDPS (BX), Z0, Z0")
				emit("ADDQ $64, BX")
			}
			body()
			emit("VMOVUPS Z0, (SI)")
			emit("ADDQ $64, SI")
			emit("DECQ CX")
			emit("JNZ %s_loop", fn)
			label(fn + "_done")
			emit("VZEROUPPER")
			emit("RET")
		}
	}

	unary("geluAVX512", "d[i] = x·Φ(x) (exact GELU) for n (a multiple of 16) values; see geluAVX2.", func() {
		emit("VPANDD.BCST %s, Z0, Z1", k("abs"))
		emit("VCMPPS.BCST $1, %s, Z1, K1", k("geluMax")) // |x| < geluMax
		emit("VMINPS.BCST %s, Z1, Z1", k("geluMax"))
		ldk("zHalf", 2)
		emit("VFMADD213PS.BCST %s, Z1, Z2", k("one"))
		ldk("one", 3)
		emit("VDIVPS Z2, Z3, Z3")
		ldk("gA", 4)
		emit("VFMADD213PS.BCST %s, Z3, Z4", k("gB"))
		estrin("g", gDeg, 4, 5, []int{2, 6, 7, 8, 9, 11, 12, 13, 14, 15})
		emit("VMULPS Z1, Z1, Z6")
		emit("VMOVAPS Z6, Z7")
		emit("VFMSUB231PS Z1, Z1, Z7")
		emit("VMULPS.BCST %s, Z6, Z6", k("mhalf"))
		emit("VMAXPS.BCST %s, Z6, Z6", k("expLo"))
		expY(6, 8, 9, []int{1, 2, 4, 11, 12, 13})
		emit("VMULPS.BCST %s, Z7, Z7", k("half"))
		emit("VFNMADD231PS Z7, Z6, Z6")
		emit("VMULPS Z3, Z5, Z5")
		emit("VMULPS Z6, Z5, Z5")
		emit("VMULPS.BCST %s, Z5, Z5", k("half"))
		emit("VMOVAPS.Z Z5, K1, Z5")
		// Φ(x) = Φ(−|x|) for x < 0, 1 − Φ(−|x|) otherwise (both ½ at ±0).
		ldk("one", 1)
		emit("VSUBPS Z5, Z1, Z1")
		emit("VPXORD Z11, Z11, Z11")
		emit("VCMPPS $1, Z11, Z0, K2") // x < 0
		emit("VBLENDMPS Z5, Z1, K2, Z1")
		emit("VMULPS Z1, Z0, Z0")
	})

	// x·σ(y) as in the AVX2 sigmoidTimesX; the overflow mask is K1.
	sigmoidTimesX := func(y, lo int) {
		emit("VPXORD.BCST %s, Z%d, Z%d", k("sign"), y, y)
		emit("VCMPPS.BCST $1, %s, Z%d, K1", k("expHi"), y)
		emit("VMAXPS.BCST %s, Z%d, Z%d", k("expLo"), y, y)
		emit("VMINPS.BCST %s, Z%d, Z%d", k("expHi"), y, y)
		expY(y, 3, 4, []int{5, 6, 7, 8, 11, 12})
		if lo >= 0 {
			emit("VFNMADD231PS Z%d, Z%d, Z%d", lo, y, y)
		}
		emit("VADDPS.BCST %s, Z%d, Z%d", k("one"), y, y)
		emit("VDIVPS Z%d, Z0, Z0", y)
		emit("VMOVAPS.Z Z0, K1, Z0")
	}
	unary("geluTanhAVX512", "d[i] = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) for n (a multiple of 16) values;\n// see geluTanhAVX2.", func() {
		emit("VMAXPS.BCST %s, Z0, Z9", k("m20"))
		emit("VMINPS.BCST %s, Z9, Z9", k("p20"))
		emit("VMULPS Z9, Z9, Z1")
		emit("VMOVAPS Z1, Z11")
		emit("VFMSUB231PS Z9, Z9, Z11")
		ldk("gt3", 2)
		emit("VFMADD213PS.BCST %s, Z1, Z2", k("gt1"))
		emit("VMULPS Z9, Z2, Z12")
		emit("VMOVAPS Z12, Z13")
		emit("VFMSUB231PS Z9, Z2, Z13")
		emit("VMULPS.BCST %s, Z11, Z11", k("gt3"))
		emit("VFMADD231PS Z9, Z11, Z13")
		emit("VMOVAPS Z12, Z2")
		sigmoidTimesX(2, 13)
	})
	unary("siluAVX512", "d[i] = x·σ(x) for n (a multiple of 16) values.", func() {
		emit("VMOVAPS Z0, Z2")
		sigmoidTimesX(2, -1)
	})

	scoreRowsAVX512()

	// func expSumAVX512(d *float32, n int, mx float32) float64
	name := "expSumAVX512"
	sigs[name] = name + "(d *float32, n int, mx float32) float64"
	fmt.Fprintf(&out, "\n// d[i] = exp(d[i] − mx) for n (a multiple of 16) values; returns their sum,\n// accumulated in float64. Arguments below expLo give exactly 0.")
	text(name, "32")
	emit("MOVQ d+0(FP), SI")
	emit("MOVQ n+8(FP), CX")
	emit("VBROADCASTSS mx+16(FP), Z15")
	emit("VPXORQ Z12, Z12, Z12")
	emit("VPXORQ Z13, Z13, Z13")
	emit("SHRQ $4, CX")
	emit("JZ %s_sum", name)
	label(name + "_loop")
	expSumStep()
	emit("ADDQ $64, SI")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	label(name + "_sum")
	expSumReduce()
	emit("VMOVSD X12, ret+24(FP)")
	emit("VZEROUPPER")
	emit("RET")
}

// scoreRowsAVX512 writes the attention softmax numerators of several score
// rows in one call (the rows of one head of an encoder, every key visible):
// per row the first pass of scaleMaskMaxAVX2 in sixteen lanes, then the loop
// of expSumAVX512 and its float64 sum, so every value and 1/Σ come out with
// the same bits as scoreRowVec gives row by row, without a call per row.
func scoreRowsAVX512() {
	name := "scoreRowsAVX512"
	sigs[name] = name + "(d *float32, ld, rows, n int, m *float32, s float32, inv *float32)"
	fmt.Fprintf(&out, "\n// For each of rows rows of n values (a multiple of 16, > 0) at d, ld apart: d[i] =\n"+
		"// exp(y[i] − max y) with y[i] = d[i]·s + m[i], and inv[row] = float32(1/Σ), both\n"+
		"// as scoreRowVec computes them; a row whose every y is -Inf becomes zeros with\n"+
		"// inv 0.")
	text(name, "56")
	emit("MOVQ d+0(FP), DI")
	emit("MOVQ ld+8(FP), R9")
	emit("SHLQ $2, R9")
	emit("MOVQ rows+16(FP), R10")
	emit("MOVQ n+24(FP), R11")
	emit("SHRQ $4, R11")
	emit("MOVQ m+32(FP), R8")
	emit("VBROADCASTSS s+40(FP), Z10")
	emit("MOVQ inv+48(FP), R12")
	emit("TESTQ R10, R10")
	emit("JZ %s_done", name)
	label(name + "_row")
	// Pass 1: scale, mask, maximum.
	emit("MOVQ DI, SI")
	emit("MOVQ R8, DX")
	emit("MOVQ R11, CX")
	emit("VBROADCASTSS %s, Z1", k("negInf"))
	label(name + "_max")
	emit("VMOVUPS (DX), Z0")
	emit("VFMADD231PS (SI), Z10, Z0")
	emit("ADDQ $64, DX")
	emit("VMOVUPS Z0, (SI)")
	emit("VMAXPS Z0, Z1, Z1")
	emit("ADDQ $64, SI")
	emit("DECQ CX")
	emit("JNZ %s_max", name)
	emit("VEXTRACTF64X4 $1, Z1, Y0")
	emit("VMAXPS Y0, Y1, Y1")
	maxReduceY1()
	// Every key hidden with -Inf: a zero row and 1/Σ = 0, as PyTorch.
	emit("VMOVSS %s, X2", k("negInf"))
	emit("VUCOMISS X2, X1")
	emit("JNE %s_exp", name)
	emit("JPS %s_exp", name)
	emit("VPXORD Z0, Z0, Z0")
	emit("MOVQ DI, SI")
	emit("MOVQ R11, CX")
	label(name + "_zero")
	emit("VMOVUPS Z0, (SI)")
	emit("ADDQ $64, SI")
	emit("DECQ CX")
	emit("JNZ %s_zero", name)
	emit("MOVL $0, (R12)")
	emit("JMP %s_next", name)
	// Pass 2: exp(y − max) and the float64 sum, as expSumAVX512.
	label(name + "_exp")
	emit("VBROADCASTSS X1, Z15")
	emit("VPXORQ Z12, Z12, Z12")
	emit("VPXORQ Z13, Z13, Z13")
	emit("MOVQ DI, SI")
	emit("MOVQ R11, CX")
	label(name + "_loop")
	expSumStep()
	emit("ADDQ $64, SI")
	emit("DECQ CX")
	emit("JNZ %s_loop", name)
	expSumReduce()
	// inv = float32(1/Σ)
	emit("MOVQ $0x3FF0000000000000, AX")
	emit("VMOVQ AX, X13")
	emit("VDIVSD X12, X13, X13")
	emit("VCVTSD2SS X13, X13, X13")
	emit("VMOVSS X13, (R12)")
	label(name + "_next")
	emit("ADDQ R9, DI")
	emit("ADDQ $4, R12")
	emit("DECQ R10")
	emit("JNZ %s_row", name)
	label(name + "_done")
	emit("VZEROUPPER")
	emit("RET")
}

// expSumStep replaces the sixteen values at (SI) by exp(value − Z15) (0 below
// expLo) and adds them, widened to float64, into Z12 (lanes 0-7) and Z13.
func expSumStep() {
	emit("VMOVUPS (SI), Z0")
	emit("VSUBPS Z15, Z0, Z0")
	emit("VCMPPS.BCST $0x1D, %s, Z0, K1", k("expLo")) // GE_OQ: false for NaN and below expLo
	emit("VMAXPS.BCST %s, Z0, Z0", k("expLo"))
	expY(0, 2, 3, []int{1, 4, 5, 6, 8, 9})
	emit("VMOVAPS.Z Z0, K1, Z0")
	emit("VMOVUPS Z0, (SI)")
	emit("VCVTPS2PD Y0, Z4")
	emit("VEXTRACTF64X4 $1, Z0, Y5")
	emit("VCVTPS2PD Y5, Z5")
	emit("VADDPD Z4, Z12, Z12")
	emit("VADDPD Z5, Z13, Z13")
}

// expSumReduce adds the float64 lanes of Z12 and Z13 into X12's low lane.
func expSumReduce() {
	emit("VADDPD Z13, Z12, Z12")
	emit("VEXTRACTF64X4 $1, Z12, Y13")
	emit("VADDPD Y13, Y12, Y12")
	emit("VEXTRACTF128 $1, Y12, X13")
	emit("VADDPD X13, X12, X12")
	emit("VHADDPD X12, X12, X12")
}

// maxReduceY1 leaves the largest of Y1's eight values in X1's low lane
// (scratch X0).
func maxReduceY1() {
	emit("VEXTRACTF128 $1, Y1, X0")
	emit("VMAXPS X0, X1, X1")
	emit("VMOVHLPS X1, X1, X0")
	emit("VMAXPS X0, X1, X1")
	emit("VPSHUFD $1, X1, X0")
	emit("VMAXPS X0, X1, X1")
}
