//go:build !amd64 || purego

package tensor

type gemvPKernel struct {
	name string
	nr   int
	f    func(x, bp, y []float32, acc bool)
}

func gemvPKernelsForTest() []gemvPKernel {
	return []gemvPKernel{{"generic", 4, gemvPGeneric}}
}
