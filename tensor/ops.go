package tensor

import (
	"fmt"
	"math"
)

// The element-wise and row-wise operations below work on float32 tensors in
// place where that saves memory traffic; each says which argument it writes.

func checkF32(op string, ts ...*Tensor) {
	for _, t := range ts {
		if t.dtype != F32 {
			panic(fmt.Sprintf("tensor: %s needs float32, got %v", op, t.dtype))
		}
	}
}

// AddBias adds bias [n] to every row of x [..., n], in place.
func AddBias(x, bias *Tensor) {
	checkF32("AddBias", x, bias)
	n := bias.Len()
	if x.Dim(-1) != n {
		panic(fmt.Sprintf("tensor: AddBias: %v and bias %v", x.shape, bias.shape))
	}
	b := bias.f32
	d := x.f32
	for i := 0; i+n <= len(d); i += n {
		row := d[i : i+n]
		for j := range row {
			row[j] += b[j]
		}
	}
}

// Add computes dst = a + b element-wise; dst may alias a or b.
func Add(dst, a, b *Tensor) {
	checkF32("Add", dst, a, b)
	if a.Len() != b.Len() || dst.Len() != a.Len() {
		panic(fmt.Sprintf("tensor: Add: %v + %v into %v", a.shape, b.shape, dst.shape))
	}
	bs, ds := b.f32[:len(a.f32)], dst.f32[:len(a.f32)]
	for i, v := range a.f32 {
		ds[i] = v + bs[i]
	}
}

// Scale multiplies x by s in place.
func Scale(x *Tensor, s float32) {
	checkF32("Scale", x)
	for i := range x.f32 {
		x.f32[i] *= s
	}
}

// Softmax replaces each row of x [..., n] by its softmax, in place. It
// subtracts the row maximum first, so large logits do not overflow. A row that
// is entirely -Inf becomes all zeros rather than NaN.
func Softmax(x *Tensor) {
	checkF32("Softmax", x)
	n := x.Dim(-1)
	if n == 0 {
		return
	}
	rows := len(x.f32) / n
	d := x.f32
	if rows*n < minParallelElems {
		for i := 0; i < rows; i++ {
			opsDefault.softmaxRow(d[i*n : (i+1)*n])
		}
		return
	}
	parallelFor(rows, max(1, minParallelElems/2/n), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			opsDefault.softmaxRow(d[i*n : (i+1)*n])
		}
	})
}

// SoftmaxRow replaces row by its softmax, in place (see Softmax).
func SoftmaxRow(row []float32) {
	opsDefault.softmaxRow(row)
}

// minParallelElems is the element count below which element-wise work stays
// on the calling goroutine (a hand-off costs a few microseconds).
const minParallelElems = 1 << 15

// opsImpl is one implementation of the element-wise kernels; the tests force
// each of opsImpls in turn.
type opsImpl struct {
	name       string
	act        func(a Activation, d []float32) // a is valid
	softmaxRow func(row []float32)
}

// genericOps computes in float64 with the math package: the reference the
// vector kernels are tested against, and the kernels without assembly.
var genericOps = &opsImpl{name: "generic", act: activateGeneric, softmaxRow: softmaxRowGeneric}

func softmaxRowGeneric(row []float32) {
	if len(row) == 0 {
		return
	}
	mx := float32(math.Inf(-1))
	for _, v := range row {
		if v > mx {
			mx = v
		}
	}
	if math.IsInf(float64(mx), -1) {
		clear(row)
		return
	}
	var sum float64
	for j, v := range row {
		e := float32(math.Exp(float64(v - mx)))
		row[j] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for j := range row {
		row[j] *= inv
	}
}

// LayerNorm normalizes each row of x [..., n] to zero mean and unit variance
// (biased variance, eps added inside the square root, as PyTorch does), then
// applies gamma and beta [n]. It writes dst, which may alias x. beta may be nil.
func LayerNorm(dst, x, gamma, beta *Tensor, eps float32) {
	checkF32("LayerNorm", dst, x, gamma)
	n := x.Dim(-1)
	if gamma.Len() != n || (beta != nil && beta.Len() != n) || dst.Len() != x.Len() {
		panic(fmt.Sprintf("tensor: LayerNorm: %v with gamma %v", x.shape, gamma.shape))
	}
	var b []float32
	if beta != nil {
		checkF32("LayerNorm", beta)
		b = beta.f32
	}
	g := gamma.f32
	for i := 0; i+n <= len(x.f32); i += n {
		layerNormRow(dst.f32[i:i+n], x.f32[i:i+n], g, b, eps)
	}
}

func layerNormRow(dst, x, g, b []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+float64(eps))
	m := float32(mean)
	s := float32(inv)
	for j, v := range x {
		y := (v - m) * s * g[j]
		if b != nil {
			y += b[j]
		}
		dst[j] = y
	}
}

// Activation names a point-wise non-linearity.
type Activation uint8

// The activations of BERT- and GPT-2-family checkpoints (config `hidden_act` /
// `activation_function`).
const (
	GELU     Activation = iota + 1 // exact, with erf ("gelu")
	GELUTanh                       // tanh approximation ("gelu_new", "gelu_pytorch_tanh")
	ReLU                           // "relu"
	SiLU                           // "silu", "swish"
	Tanh                           // "tanh"
)

// ParseActivation maps a Hugging Face activation name to an Activation.
func ParseActivation(name string) (Activation, error) {
	switch name {
	case "gelu":
		return GELU, nil
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return GELUTanh, nil
	case "relu":
		return ReLU, nil
	case "silu", "swish":
		return SiLU, nil
	case "tanh":
		return Tanh, nil
	}
	return 0, fmt.Errorf("unsupported activation %q", name)
}

// Apply applies the activation to x in place.
func (a Activation) Apply(x *Tensor) {
	checkF32("Activation", x)
	ActivateSlice(a, x.f32)
}

// ActivateSlice applies activation a to every element of d in place. Large
// slices are split over the worker pool.
func ActivateSlice(a Activation, d []float32) {
	if a < GELU || a > Tanh {
		panic(fmt.Sprintf("tensor: unknown activation %d", a))
	}
	if len(d) < minParallelElems {
		opsDefault.act(a, d)
		return
	}
	// Units of 64 elements keep every chunk but the last whole vectors.
	const unit = 64
	parallelFor((len(d)+unit-1)/unit, minParallelElems/2/unit, func(lo, hi int) {
		opsDefault.act(a, d[lo*unit:min(hi*unit, len(d))])
	})
}

func activateGeneric(a Activation, d []float32) {
	switch a {
	case GELU:
		for i, v := range d {
			x := float64(v)
			d[i] = float32(0.5 * x * (1 + math.Erf(x/math.Sqrt2)))
		}
	case GELUTanh:
		const c = 0.7978845608028654 // sqrt(2/pi)
		for i, v := range d {
			x := float64(v)
			d[i] = float32(0.5 * x * (1 + math.Tanh(c*(x+0.044715*x*x*x))))
		}
	case ReLU:
		for i, v := range d {
			if v < 0 {
				d[i] = 0
			}
		}
	case SiLU:
		for i, v := range d {
			x := float64(v)
			d[i] = float32(x / (1 + math.Exp(-x)))
		}
	case Tanh:
		for i, v := range d {
			d[i] = float32(math.Tanh(float64(v)))
		}
	}
}

// Gather copies rows ids of table [vocab, n] into dst [len(ids), n], converting
// F16/BF16 tables to float32. It returns an error for an id outside the table.
func Gather(dst, table *Tensor, ids []int) error {
	checkF32("Gather", dst)
	if table.Rank() != 2 {
		panic(fmt.Sprintf("tensor: Gather table %v", table.shape))
	}
	v, n := table.shape[0], table.shape[1]
	if dst.Len() != len(ids)*n {
		panic(fmt.Sprintf("tensor: Gather %d ids of width %d into %v", len(ids), n, dst.shape))
	}
	for i, id := range ids {
		if id < 0 || id >= v {
			return fmt.Errorf("id %d at position %d is outside the table of %d rows", id, i, v)
		}
		out := dst.f32[i*n : (i+1)*n]
		switch table.dtype {
		case F32:
			copy(out, table.f32[id*n:(id+1)*n])
		case F16:
			F16ToF32(out, table.u16[id*n:(id+1)*n])
		case BF16:
			BF16ToF32(out, table.u16[id*n:(id+1)*n])
		default:
			panic(fmt.Sprintf("tensor: Gather from %v table", table.dtype))
		}
	}
	return nil
}

// AddRow adds row r of table [rows, n] (any float dtype) to x [n], in place.
func AddRow(x []float32, table *Tensor, r int) {
	n := table.shape[1]
	row := x[:n]
	switch table.dtype {
	case F32:
		for j, v := range table.f32[r*n : (r+1)*n] {
			row[j] += v
		}
	case F16:
		for j, v := range table.u16[r*n : (r+1)*n] {
			row[j] += f16ToF32(v)
		}
	case BF16:
		for j, v := range table.u16[r*n : (r+1)*n] {
			row[j] += bf16ToF32(v)
		}
	default:
		panic(fmt.Sprintf("tensor: AddRow from %v table", table.dtype))
	}
}
