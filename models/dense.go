package models

import (
	"encoding/json"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"os"
	"path/filepath"
	"strings"

	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// Dense is a sentence-transformers Dense module (a folder such as 2_Dense):
// y = act(x·Wᵀ + b), applied to pooled sentence embeddings.
type Dense struct {
	Linear *nn.Linear
	// Act is the activation; Identity is true when there is none.
	Act      tensor.Activation
	Identity bool
	closer   func() error
}

// LoadDense reads dir/config.json (in_features, out_features, bias,
// activation_function) and the linear.weight / linear.bias tensors of
// dir/model.safetensors.
func LoadDense(dir string) (*Dense, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		In   int    `json:"in_features"`
		Out  int    `json:"out_features"`
		Bias *bool  `json:"bias"`
		Act  string `json:"activation_function"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w", path, err)
	}
	if cfg.In <= 0 || cfg.Out <= 0 {
		return nil, fmt.Errorf("%s: in_features %d and out_features %d must be positive", path, cfg.In, cfg.Out)
	}
	d := &Dense{}
	// activation_function is a Python class path, e.g.
	// "torch.nn.modules.activation.Tanh".
	switch name := cfg.Act[strings.LastIndex(cfg.Act, ".")+1:]; name {
	case "Identity", "":
		d.Identity = true
	case "Tanh":
		d.Act = tensor.Tanh
	case "ReLU":
		d.Act = tensor.ReLU
	case "GELU":
		d.Act = tensor.GELU
	case "SiLU":
		d.Act = tensor.SiLU
	default:
		return nil, fmt.Errorf("%s: %w: activation_function %q", path, arch.ErrUnsupported, cfg.Act)
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	bias := cfg.Bias == nil || *cfg.Bias
	if d.Linear, err = weights.New(ck, dir).Linear("linear", cfg.In, cfg.Out, bias); err != nil {
		ck.Close()
		return nil, err
	}
	d.closer = ck.Close
	return d, nil
}

// In and Out are the input and output widths.
func (d *Dense) In() int { return d.Linear.In() }

// Out is the output width.
func (d *Dense) Out() int { return d.Linear.Out() }

// Forward maps x [N, In] to [N, Out].
func (d *Dense) Forward(x *tensor.Tensor) *tensor.Tensor {
	y := d.Linear.Apply(x)
	if !d.Identity {
		d.Linear.Threads.Activate(d.Act, y)
	}
	return y
}

// Apply maps n rows of width In, side by side in xs, to n rows of width Out.
func (d *Dense) Apply(xs []float32, n int) []float32 {
	return d.Forward(tensor.FromFloat32(xs, n, d.In())).Float32s()
}

// Close releases the weights file.
func (d *Dense) Close() error {
	if d.closer == nil {
		return nil
	}
	return d.closer()
}
