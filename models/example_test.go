package models_test

import (
	"fmt"

	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
)

// Load picks the architecture from config.json; the model is used through
// what it can do.
func ExampleLoad() {
	m, err := models.Load("bert/testdata/bert-cls", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	info := m.Info()
	_, isEncoder := m.(arch.Encoder)
	fmt.Println(info.Arch, info.Task, info.Labels, isEncoder)
	// Output: bert sequence-classification [negative neutral positive] true
}
