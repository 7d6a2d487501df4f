package weights

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// Open opens the weights of a model folder (model.safetensors, or a sharded
// model.safetensors.index.json) and returns the checkpoint, which the model
// closes with itself, and a Source carrying the load options for New. Every
// architecture's Load starts here, so a missing file reads the same for all.
func Open(f *hfdir.Folder, opt arch.LoadOptions) (*safetensors.Checkpoint, Source, error) {
	ck, err := safetensors.OpenCheckpoint(f.Dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s: no model.safetensors or model.safetensors.index.json: %w", f.Dir, err)
		}
		return nil, nil, err
	}
	return ck, WithOptions(ck, opt), nil
}
