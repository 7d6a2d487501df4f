package safetensors_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/embrace-go/embrace/safetensors"
)

func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	// Write two tensors: a 2x2 float32 matrix (1, 2, 3, 4) and an int64 id.
	weights := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40}
	ids := []byte{7, 0, 0, 0, 0, 0, 0, 0}
	err = safetensors.WriteFile(path, []safetensors.TensorView{
		{Name: "layer.weight", DType: safetensors.F32, Shape: []int{2, 2}, Data: weights},
		{Name: "ids", DType: safetensors.I64, Shape: []int{1}, Data: ids},
	}, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}

	// OpenCheckpoint finds model.safetensors (or a sharded index) in a folder.
	ckpt, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer ckpt.Close()
	fmt.Println(ckpt.Names())
	w, err := ckpt.Tensor("layer.weight")
	if err != nil {
		log.Fatal(err)
	}
	vals, err := w.Float32s()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.DType, w.Shape, vals)
	// Output:
	// [ids layer.weight]
	// F32 [2 2] [1 2 3 4]
}

func ExampleOpen() {
	f, err := safetensors.Open("model.safetensors")
	if err != nil {
		fmt.Println("open failed:", err != nil)
		return
	}
	defer f.Close()
	for _, name := range f.Names() {
		v, _ := f.Tensor(name)
		fmt.Println(name, v.DType, v.Shape)
	}
	// Output: open failed: true
}
