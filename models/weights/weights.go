// Package weights loads named tensors from a safetensors checkpoint into the
// shapes a model expects, scoped by name prefix the way a module tree is, so a
// model's weight names fall out of its structure (Sub("encoder.layer.3")).
package weights

import (
	"fmt"
	"slices"
	"strings"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// Source is where tensors come from: a *safetensors.Checkpoint, or anything
// else that finds a tensor by its full name.
type Source interface {
	Tensor(name string) (safetensors.TensorView, error)
	Has(name string) bool
}

// Loader reads tensors under a name prefix.
type Loader struct {
	src    Source
	prefix string
	where  string           // the folder or file, for error messages
	opt    arch.LoadOptions // precision of the Linear layers it loads
}

// New returns a loader over src; where names it in errors. When src came
// from WithOptions, the loader applies its options.
func New(src Source, where string) *Loader {
	l := &Loader{src: src, where: where}
	if o, ok := src.(*optioned); ok {
		l.src, l.opt = o.Source, o.opt
	}
	return l
}

// optioned is a Source that carries load options to New.
type optioned struct {
	Source
	opt arch.LoadOptions
}

// WithOptions returns src with opt attached: a Loader made from it by New
// loads Linear layers in the precision opt asks for. This is how an
// architecture's Load passes arch.LoadOptions down to code that takes a
// Source.
func WithOptions(src Source, opt arch.LoadOptions) Source {
	if o, ok := src.(*optioned); ok {
		src = o.Source
	}
	return &optioned{Source: src, opt: opt}
}

// WithOptions returns a loader like l that applies opt.
func (l *Loader) WithOptions(opt arch.LoadOptions) *Loader {
	c := *l
	c.opt = opt
	return &c
}

// Options returns the load options the loader applies.
func (l *Loader) Options() arch.LoadOptions { return l.opt }

// Threads is the goroutine bound of the options (arch.LoadOptions.Threads),
// which the loader sets on every layer it makes; a model passes it to the
// tensor calls it makes itself.
func (l *Loader) Threads() tensor.Threads { return tensor.Threads(l.opt.Threads) }

// Precision is the precision of the Linear layers the loader makes (set on
// each before it is packed): Q8 when the options quantize, else BF16 when
// they ask for bfloat16 compute, else the default.
func (l *Loader) Precision() nn.Precision {
	switch {
	case l.opt.Quantize == arch.QuantizeQ8:
		return nn.PrecisionQ8
	case l.opt.Compute == arch.ComputeBF16:
		return nn.PrecisionBF16
	}
	return nn.PrecisionDefault
}

// HeadPrecision is Precision for the LM head: as the other layers, unless
// the options keep the head out of quantization (KeepHead), when only the
// compute option applies.
func (l *Loader) HeadPrecision() nn.Precision {
	if l.opt.KeepHead && l.opt.Quantize != arch.QuantizeNone {
		if l.opt.Compute == arch.ComputeBF16 {
			return nn.PrecisionBF16
		}
		return nn.PrecisionDefault
	}
	return l.Precision()
}

// Head makes an LM head from an output-projection weight [vocab, hidden]
// (lm_head.weight, or the tied embedding table): a bias-free Linear in
// HeadPrecision, packed.
func (l *Loader) Head(w *tensor.Tensor) (*nn.Linear, error) {
	lin := &nn.Linear{W: w, Threads: l.Threads()}
	lin.SetPrecision(l.HeadPrecision())
	if err := lin.Pack(); err != nil {
		return nil, fmt.Errorf("%s: LM head: %w", l.where, err)
	}
	return lin, nil
}

// Sub returns a loader for the names under p ("a.b" + ".").
func (l *Loader) Sub(p string) *Loader {
	c := *l
	if p != "" {
		c.prefix = l.prefix + p + "."
	}
	return &c
}

// Subf is Sub with a formatted prefix.
func (l *Loader) Subf(format string, args ...any) *Loader { return l.Sub(fmt.Sprintf(format, args...)) }

// Name returns the full name of a tensor under this loader.
func (l *Loader) Name(name string) string { return l.prefix + name }

// Has reports whether the checkpoint holds the named tensor.
func (l *Loader) Has(name string) bool { return l.src.Has(l.prefix + name) }

func (l *Loader) get(name string, shape []int) (safetensors.TensorView, error) {
	full := l.prefix + name
	v, err := l.src.Tensor(full)
	if err != nil {
		return v, fmt.Errorf("%s: missing tensor %q: %w", l.where, full, err)
	}
	if shape != nil && !slices.Equal(v.Shape, shape) {
		return v, fmt.Errorf("%s: tensor %q has shape %v, the config implies %v", l.where, full, v.Shape, shape)
	}
	return v, nil
}

// Weight returns a matrix or table in its stored precision (F32, F16 or BF16,
// zero-copy where possible); F64 is narrowed to F32. shape is the expected
// shape (nil accepts any).
func (l *Loader) Weight(name string, shape ...int) (*tensor.Tensor, error) {
	v, err := l.get(name, shape)
	if err != nil {
		return nil, err
	}
	var dt tensor.DType
	switch v.DType {
	case safetensors.F32:
		dt = tensor.F32
	case safetensors.F16:
		dt = tensor.F16
	case safetensors.BF16:
		dt = tensor.BF16
	case safetensors.F64:
		return l.F32(name, shape...)
	default:
		return nil, fmt.Errorf("%s: tensor %q has dtype %s; unsupported for weights (want F32, F16, BF16 or F64)", l.where, l.prefix+name, v.DType)
	}
	t, err := tensor.FromBytes(dt, v.Data, v.Shape...)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", l.where, l.prefix+name, err)
	}
	return t, nil
}

// F32 returns a tensor converted to float32 (biases and norms, which are small
// and added element-wise).
func (l *Loader) F32(name string, shape ...int) (*tensor.Tensor, error) {
	v, err := l.get(name, shape)
	if err != nil {
		return nil, err
	}
	f, err := v.Float32s()
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", l.where, l.prefix+name, err)
	}
	return tensor.FromFloat32(f, v.Shape...), nil
}

// Linear loads a PyTorch Linear "name.weight" [out, in] and "name.bias" [out]
// (the bias may be absent when bias is false), packed for the matmul kernels
// (nn.Linear.Pack) in the loader's Precision.
func (l *Loader) Linear(name string, in, out int, bias bool) (*nn.Linear, error) {
	lin, err := l.UnpackedLinear(name, in, out, bias)
	if err != nil {
		return nil, err
	}
	if err := lin.Pack(); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", l.where, l.Name(name+".weight"), err)
	}
	return lin, nil
}

// UnpackedLinear is Linear without packing, for weights that are combined
// with others before use (nn.StackLinear keeps the Precision set here).
func (l *Loader) UnpackedLinear(name string, in, out int, bias bool) (*nn.Linear, error) {
	s := l.Sub(name)
	w, err := s.Weight("weight", out, in)
	if err != nil {
		return nil, err
	}
	lin := &nn.Linear{W: w, Threads: l.Threads()}
	lin.SetPrecision(l.Precision())
	if bias {
		if lin.B, err = s.F32("bias", out); err != nil {
			return nil, err
		}
	}
	return lin, nil
}

// Conv1D loads a GPT-2 Conv1D "name.weight" [in, out] and "name.bias" [out],
// packed in the loader's Precision.
func (l *Loader) Conv1D(name string, in, out int) (*nn.Linear, error) {
	s := l.Sub(name)
	w, err := s.Weight("weight", in, out)
	if err != nil {
		return nil, err
	}
	b, err := s.F32("bias", out)
	if err != nil {
		return nil, err
	}
	lin := &nn.Linear{W: w, B: b, Conv1D: true, Threads: l.Threads()}
	lin.SetPrecision(l.Precision())
	if err := lin.Pack(); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", l.where, s.Name("weight"), err)
	}
	return lin, nil
}

// LayerNorm loads "name.weight"/"name.bias", or the legacy "name.gamma"/"name.beta".
func (l *Loader) LayerNorm(name string, n int, eps float64) (*nn.LayerNorm, error) {
	s := l.Sub(name)
	wn, bn := "weight", "bias"
	if !s.Has(wn) && s.Has("gamma") {
		wn, bn = "gamma", "beta"
	}
	w, err := s.F32(wn, n)
	if err != nil {
		return nil, err
	}
	b, err := s.F32(bn, n)
	if err != nil {
		return nil, err
	}
	return &nn.LayerNorm{Weight: w, Bias: b, Eps: float32(eps), Threads: l.Threads()}, nil
}

// Embedding loads "name.weight" [rows, dim].
func (l *Loader) Embedding(name string, rows, dim int) (*nn.Embedding, error) {
	w, err := l.Sub(name).Weight("weight", rows, dim)
	if err != nil {
		return nil, err
	}
	return &nn.Embedding{Table: w}, nil
}

// FirstPrefix returns the first of prefixes under which name exists ("" is a
// valid prefix meaning none), so a model can accept checkpoints saved with and
// without the base-model prefix ("bert.", "transformer.").
func FirstPrefix(src Source, name string, prefixes ...string) (string, bool) {
	for _, p := range prefixes {
		full := name
		if p != "" {
			full = strings.TrimSuffix(p, ".") + "." + name
		}
		if src.Has(full) {
			return strings.TrimSuffix(p, "."), true
		}
	}
	return "", false
}
