package tensor_test

import (
	"fmt"

	"github.com/embrace-go/embrace/tensor"
)

// A Linear weight is packed once, at load, and then multiplied against any
// number of inputs.
func ExamplePackWeight() {
	w := tensor.FromFloat32([]float32{1, 0, 0, 1, 1, 1}, 3, 2) // [out=3, in=2]
	pw, err := tensor.PackWeight(w)
	if err != nil {
		panic(err)
	}
	x := tensor.FromFloat32([]float32{2, 5}, 1, 2)
	y := tensor.Zeros(1, 3)
	tensor.MatMulTPacked(y, x, pw)
	fmt.Println(y.Float32s())
	// Output: [2 5 7]
}
