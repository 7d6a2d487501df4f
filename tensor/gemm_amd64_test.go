//go:build amd64 && !purego

package tensor

import "golang.org/x/sys/cpu"

type gemvPKernel struct {
	name string
	nr   int
	f    func(x, bp, y []float32, acc bool)
}

func gemvPKernelsForTest() []gemvPKernel {
	ks := []gemvPKernel{{"generic", 4, gemvPGeneric}}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, gemvPKernel{"gemvP16AVX2", 16, gemvPAVX2Go(gemvP16AVX2, 16)}, gemvPKernel{"gemvP32AVX2", 32, gemvPAVX2Go(gemvP32AVX2, 32)})
	}
	return ks
}
