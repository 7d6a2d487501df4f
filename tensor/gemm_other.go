//go:build !amd64 || purego

package tensor

// Without assembly the generic kernels are the only implementation.
var (
	gemmImpls   = []*gemmImpl{genericImpl}
	gemmDefault = genericImpl
)
