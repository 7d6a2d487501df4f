package models_test

import (
	"fmt"

	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/bert"
)

// Load picks the architecture from config.json.
func ExampleLoad() {
	m, err := models.Load("bert/testdata/bert-cls")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	switch m := m.(type) {
	case *bert.Model:
		fmt.Println(m.Config.Family, m.Config.Task, len(m.Encoder.Layers))
	default:
		fmt.Printf("%T\n", m)
	}
	// Output: bert sequence-classification 2
}
