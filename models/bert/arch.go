package bert

import (
	"fmt"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
)

// Arch registers the BERT family: the model_type values this package loads.
func Arch() arch.Registration {
	return arch.Registration{
		Name:       "bert",
		ModelTypes: []string{"bert", "roberta", "xlm-roberta", "camembert", "distilbert"},
		Task: func(hc *hfdir.Config) (arch.Task, error) {
			cfg, err := ParseConfig(hc.Data)
			if err != nil {
				return "", fmt.Errorf("%s: %w", hc.Path, err)
			}
			return cfg.Task, nil
		},
		Load: func(f *hfdir.Folder, opt arch.LoadOptions) (arch.Model, error) {
			return loadFolder(f, opt)
		},
	}
}

// Info describes the model.
func (m *Model) Info() arch.Info {
	c := m.Config
	return arch.Info{
		Arch: "bert", ModelType: c.ModelType, Architectures: c.Architectures, Task: c.Task,
		HiddenSize: c.HiddenSize, VocabSize: c.VocabSize, MaxPositions: c.MaxPositions(),
		Labels: c.Labels, PadTokenID: c.PadTokenID,
	}
}

// MaxPositions is the longest sequence the position table covers: for
// RoBERTa-style position ids, which start after the padding index, the
// table less padding_idx + 1.
func (c *Config) MaxPositions() int {
	if c.Family == RoBERTa {
		return c.MaxPositionEmbeddings - c.PadTokenID - 1
	}
	return c.MaxPositionEmbeddings
}
