package nn

import (
	"fmt"

	"github.com/embrace-go/embrace/tensor"
)

// Precision is how a Linear keeps its weight once packed and how its
// products are computed. The zero value is the default: the weight in its
// stored precision (F32, F16 or BF16), float32 compute.
type Precision uint8

const (
	// PrecisionDefault keeps the stored precision with float32 compute
	// (tensor.PackWeight).
	PrecisionDefault Precision = iota
	// PrecisionQ8 quantizes the weight to int8 blocks of 32 inputs with a
	// half-precision scale each, 34 bytes per 32 weights
	// (tensor.QuantizeQ8); products quantize their input rows the same way.
	PrecisionQ8
	// PrecisionBF16 computes products in bfloat16 with float32 accumulation
	// (tensor.PackBF16) where the CPU has AVX512_BF16
	// (tensor.BF16Compute), and in float32 elsewhere.
	PrecisionBF16
)

// String names the precision as arch.LoadOptions spells it.
func (p Precision) String() string {
	switch p {
	case PrecisionDefault:
		return "default"
	case PrecisionQ8:
		return "q8"
	case PrecisionBF16:
		return "bf16"
	}
	return fmt.Sprintf("Precision(%d)", uint8(p))
}

// SetPrecision chooses how Pack stores the weight (see Precision). Call it
// before Pack; it has no effect on a layer already packed.
func (l *Linear) SetPrecision(p Precision) { l.prec = p }

// Precision reports the precision Pack uses (or used) for this layer.
func (l *Linear) Precision() Precision { return l.prec }

// packReduced packs the weight for PrecisionQ8 or PrecisionBF16; w is in
// the Linear layout [out, in].
func (l *Linear) packReduced(w *tensor.Tensor) error {
	switch l.prec {
	case PrecisionQ8:
		q, err := tensor.QuantizeQ8(w)
		if err != nil {
			return fmt.Errorf("quantize linear weight %v: %w", l.W, err)
		}
		l.q8 = q
	case PrecisionBF16:
		b, err := tensor.PackBF16(w)
		if err != nil {
			return fmt.Errorf("pack linear weight %v for bf16 compute: %w", l.W, err)
		}
		l.bf16 = b
	default:
		return fmt.Errorf("pack linear weight %v: unknown precision %v", l.W, l.prec)
	}
	return nil
}
