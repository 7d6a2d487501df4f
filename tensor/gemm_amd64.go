//go:build amd64 && !purego

package tensor

var (
	gemmImpls   = []*gemmImpl{genericImpl}
	gemmDefault = genericImpl
)
