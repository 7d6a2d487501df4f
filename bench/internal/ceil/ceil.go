// Package ceil holds the machine ceilings the kernel benchmarks are judged
// against: a register-only FMA loop (compute peak) and a streaming read
// (memory bandwidth).
package ceil

// FMAFlopsPerIter is the floating-point work of one FMALoop iteration.
func FMAFlopsPerIter() float64 { return fmaFlops }

// FMALoop runs iters iterations of independent fused multiply-adds held in
// registers and returns a value derived from them (so nothing is optimised
// away). Each iteration does FMAFlopsPerIter flops.
func FMALoop(iters int) float32 { return fmaLoop(iters) }

// FMAKind names the instruction set FMALoop uses on this machine.
func FMAKind() string { return fmaKind }

// ReadSum adds up s with wide loads and several accumulators: a pass that is
// bound by memory bandwidth once s is far larger than the caches.
func ReadSum(s []float32) float32 { return readSum(s) }

// fmaLoopGo is the portable peak loop: 8 independent chains so the adds
// pipeline; the Go compiler keeps them in registers. Like the assembly, each
// accumulator grows by x·y per iteration.
func fmaLoopGo(iters int) float32 {
	var a0, a1, a2, a3, a4, a5, a6, a7 float32
	const x, y = 0.5, 1e-6
	for i := 0; i < iters; i++ {
		a0 += x * y
		a1 += x * y
		a2 += x * y
		a3 += x * y
		a4 += x * y
		a5 += x * y
		a6 += x * y
		a7 += x * y
	}
	return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7
}

func readSumGo(s []float32) float32 {
	var a0, a1, a2, a3 float32
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a0 += s[i]
		a1 += s[i+1]
		a2 += s[i+2]
		a3 += s[i+3]
	}
	for ; i < len(s); i++ {
		a0 += s[i]
	}
	return a0 + a1 + a2 + a3
}
