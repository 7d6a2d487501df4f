//go:build !amd64 || purego

package tensor

// Without assembly the generic element-wise kernels are the only ones.
var (
	opsImpls   = []*opsImpl{genericOps}
	opsDefault = genericOps
)
