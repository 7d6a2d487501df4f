package modernbert

import (
	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
)

// Arch registers ModernBERT: config.json model_type "modernbert".
func Arch() arch.Registration {
	return arch.Registration{
		Name:       "modernbert",
		ModelTypes: []string{"modernbert"},
		Task: func(hc *hfdir.Config) (arch.Task, error) {
			cfg, err := ParseConfig(hc)
			if err != nil {
				return "", err
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
		Arch: "modernbert", ModelType: c.ModelType, Architectures: c.Architectures, Task: c.Task,
		HiddenSize: c.HiddenSize, VocabSize: c.VocabSize, MaxPositions: c.MaxPositionEmbeddings,
		Labels: c.Labels, PadTokenID: c.PadTokenID,
	}
}
