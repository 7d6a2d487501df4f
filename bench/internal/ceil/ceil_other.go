//go:build !amd64 || purego

package ceil

const (
	fmaFlops = 16
	fmaKind  = "go"
)

func fmaLoop(iters int) float32   { return fmaLoopGo(iters) }
func readSum(s []float32) float32 { return readSumGo(s) }
