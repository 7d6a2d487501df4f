package tensor

import (
	"fmt"
	"math"
	"sync"
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
func (th Threads) AddBias(x, bias *Tensor) {
	checkF32("AddBias", x, bias)
	n := bias.Len()
	if x.Dim(-1) != n {
		panic(fmt.Sprintf("tensor: AddBias: %v and bias %v", x.shape, bias.shape))
	}
	if n == 0 {
		return
	}
	t := newRowTask(th.Count(), opAddBias, n, len(x.f32))
	t.x, t.c = x.f32, bias.f32
	t.do()
}

// Add computes dst = a + b element-wise; dst may alias a or b.
func (th Threads) Add(dst, a, b *Tensor) {
	checkF32("Add", dst, a, b)
	if a.Len() != b.Len() || dst.Len() != a.Len() {
		panic(fmt.Sprintf("tensor: Add: %v + %v into %v", a.shape, b.shape, dst.shape))
	}
	if len(a.f32) == 0 {
		return
	}
	// Flat: "rows" of a fixed size only to split the work.
	t := newRowTask(th.Count(), opAdd, min(len(a.f32), addChunk), len(a.f32))
	t.dst, t.x, t.r = dst.f32, a.f32, b.f32
	t.do()
}

// addChunk is the unit Add splits a flat tensor into for the worker pool.
const addChunk = 4096

// AddResidual adds r [..., n] and, if it is not nil, bias [n] to x [..., n]
// in place: x += r + bias, the residual connection of a transformer block
// with the bias of the projection that produced r folded in (x + (r + bias),
// as when the bias is added to r first).
func (th Threads) AddResidual(x, r, bias *Tensor) {
	checkF32("AddResidual", x, r)
	n := x.Dim(-1)
	if r.Len() != x.Len() || (bias != nil && bias.Len() != n) {
		panic(fmt.Sprintf("tensor: AddResidual: %v + %v with bias %v", x.shape, r.shape, shapeOf(bias)))
	}
	if n == 0 || len(x.f32) == 0 {
		return
	}
	if bias == nil {
		th.Add(x, x, r)
		return
	}
	checkF32("AddResidual", bias)
	t := newRowTask(th.Count(), opAdd3, n, len(x.f32))
	t.x, t.r, t.c = x.f32, r.f32, bias.f32
	t.do()
}

func shapeOf(t *Tensor) []int {
	if t == nil {
		return nil
	}
	return t.shape
}

// Scale multiplies x by s in place.
func Scale(x *Tensor, s float32) {
	checkF32("Scale", x)
	opsDefault.scale(x.f32, s)
}

// Softmax replaces each row of x [..., n] by its softmax, in place. It
// subtracts the row maximum first, so large logits do not overflow. A row that
// is entirely -Inf becomes all zeros rather than NaN.
func (th Threads) Softmax(x *Tensor) {
	checkF32("Softmax", x)
	n := x.Dim(-1)
	if n == 0 {
		return
	}
	if len(x.f32) == 0 {
		return
	}
	t := newRowTask(th.Count(), opSoftmax, n, len(x.f32))
	t.x = x.f32
	t.do()
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
	// add: dst = a + b; add3: dst = a + (b + c). Equal lengths; dst may
	// alias an input.
	add  func(dst, a, b []float32)
	add3 func(dst, a, b, c []float32)
	// scale: d *= s.
	scale func(d []float32, s float32)
	// biasAct: d = act(d + bias) for one row; a is valid.
	biasAct func(a Activation, d, bias []float32)
	// layerNorm: one row (see layerNormRowGeneric).
	layerNorm func(dst, x, r, c, g, b []float32, eps float32)
	// scoreRow: one attention score row (see scoreRowGeneric).
	scoreRow func(row, mask []float32, scale float32, lim int) float32
	// scoreRows, where set, is scoreRow over rows rows of n values (ld
	// apart in s, every key visible, mask of n values, 1/Σ into inv) with
	// the same results, in one call; it returns false for shapes it does
	// not take (the caller then goes row by row).
	scoreRows func(s []float32, ld, rows, n int, mask []float32, scale float32, inv []float32) bool
}

// genericOps computes in float64 with the math package: the reference the
// vector kernels are tested against, and the kernels without assembly.
var genericOps = &opsImpl{
	name: "generic", act: activateGeneric, softmaxRow: softmaxRowGeneric,
	add: addGeneric, add3: add3Generic, scale: scaleGeneric, biasAct: biasActGeneric,
	layerNorm: layerNormRowGeneric, scoreRow: scoreRowGeneric,
}

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

// scoreRowGeneric turns one row of raw attention scores into the numerators
// of its softmax, in one pass per step: y = x·scale (+ mask) over the first
// lim keys (the rest are hidden by the causal mask and become 0), then
// exp(y − max y). It returns 1/Σ, the factor the caller applies to the
// (shorter) output row instead of normalizing this one, or 0 when every
// visible key is masked with -Inf: PyTorch gives a zero row then. A finite
// large negative mask on every key gives a uniform row, as in PyTorch.
func scoreRowGeneric(row, mask []float32, scale float32, lim int) float32 {
	clear(row[lim:])
	row = row[:lim]
	mx := float32(math.Inf(-1))
	for j, v := range row {
		y := v * scale
		if mask != nil {
			y += mask[j]
		}
		row[j] = y
		if y > mx {
			mx = y
		}
	}
	if math.IsInf(float64(mx), -1) {
		clear(row)
		return 0
	}
	var sum float64
	for j, v := range row {
		e := float32(math.Exp(float64(v - mx)))
		row[j] = e
		sum += float64(e)
	}
	return float32(1 / sum)
}

// LayerNorm normalizes each row of x [..., n] to zero mean and unit variance
// (biased variance, eps added inside the square root, as PyTorch does), then
// applies gamma and beta [n]. It writes dst, which may alias x. beta may be nil.
// Mean and variance are accumulated in float64.
func (th Threads) LayerNorm(dst, x, gamma, beta *Tensor, eps float32) {
	layerNorm(th.Count(), "LayerNorm", dst, x, nil, nil, gamma, beta, eps)
}

// AddLayerNorm adds r [..., n] and, if it is not nil, bias [n] to x in place
// (x = x + (r + bias), see AddResidual), then writes LayerNorm(x) into dst,
// in one pass over x instead of three. dst may be x itself (a post-norm
// block: x = LN(x + r + b)) or another tensor (a pre-norm block keeps the
// residual stream x and normalizes it into dst for the next sub-layer).
func (th Threads) AddLayerNorm(dst, x, r, bias, gamma, beta *Tensor, eps float32) {
	checkF32("AddLayerNorm", r)
	if r.Len() != x.Len() {
		panic(fmt.Sprintf("tensor: AddLayerNorm: %v + %v", x.shape, r.shape))
	}
	layerNorm(th.Count(), "AddLayerNorm", dst, x, r, bias, gamma, beta, eps)
}

func layerNorm(procs int, op string, dst, x, r, bias, gamma, beta *Tensor, eps float32) {
	checkF32(op, dst, x, gamma)
	n := x.Dim(-1)
	if gamma.Len() != n || (beta != nil && beta.Len() != n) || (bias != nil && bias.Len() != n) || dst.Len() != x.Len() {
		panic(fmt.Sprintf("tensor: %s: %v with gamma %v, beta %v, bias %v into %v", op, x.shape, gamma.shape, shapeOf(beta), shapeOf(bias), dst.shape))
	}
	if n == 0 || len(x.f32) == 0 {
		return
	}
	t := newRowTask(procs, opLayerNorm, n, len(x.f32))
	t.dst, t.x, t.g, t.eps = dst.f32, x.f32, gamma.f32, eps
	if beta != nil {
		checkF32(op, beta)
		t.b = beta.f32
	}
	if r != nil {
		t.r = r.f32
		if bias != nil {
			checkF32(op, bias)
			t.c = bias.f32
		}
	}
	t.do()
}

// layerNormRowGeneric normalizes one row x into dst (which may alias x) with
// gamma g and beta b (nil: none). If r is not nil, x first becomes x + r, or
// x + (r + c) when c is not nil too, in place: the residual add of a
// transformer block, fused so that the row is read once for both.
func layerNormRowGeneric(dst, x, r, c, g, b []float32, eps float32) {
	if r != nil {
		if c != nil {
			add3Generic(x, x, r, c)
		} else {
			addGeneric(x, x, r)
		}
	}
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
	normRowGeneric(dst, x, g, b, float32(mean), float32(inv))
}

// normRowGeneric is LayerNorm's last pass: dst = (x − m)·s·g + b.
func normRowGeneric(dst, x, g, b []float32, m, s float32) {
	dst, g = dst[:len(x)], g[:len(x)]
	for j, v := range x {
		y := (v - m) * s * g[j]
		if b != nil {
			y += b[j]
		}
		dst[j] = y
	}
}

func addGeneric(dst, a, b []float32) {
	b, dst = b[:len(a)], dst[:len(a)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}

func add3Generic(dst, a, b, c []float32) {
	b, c, dst = b[:len(a)], c[:len(a)], dst[:len(a)]
	for i, v := range a {
		dst[i] = v + (b[i] + c[i])
	}
}

func scaleGeneric(d []float32, s float32) {
	for i := range d {
		d[i] *= s
	}
}

// rowOp names the operation of a rowTask.
type rowOp uint8

const (
	opAdd       rowOp = iota // dst = x + r (flat)
	opAddBias                // x += c
	opAdd3                   // x = x + (r + c)
	opBiasAct                // x = act(x + c)
	opLayerNorm              // dst = LN(x [+ r [+ c]])
	opAct                    // x = act(x) (flat)
	opSoftmax                // x = softmax(x)
)

// rowTask is one row-wise operation over rows of width n: dst, x and r are
// read row by row, c (a bias), g and b (gamma and beta) are one row shared by
// all. Tasks are recycled through rowTasks so that the operations allocate
// nothing, on one thread or several.
type rowTask struct {
	op        rowOp
	act       Activation
	n, total  int // row width, total elements of x
	dst, x, r []float32
	c, g, b   []float32
	eps       float32
	impl      *opsImpl
	procs     int
}

var rowTasks = sync.Pool{New: func() any { return new(rowTask) }}

func newRowTask(procs int, op rowOp, n, total int) *rowTask {
	t := rowTasks.Get().(*rowTask)
	t.op, t.n, t.total, t.impl, t.procs = op, n, total, opsDefault, procs
	return t
}

// do runs the task over all rows, split over the worker pool when the
// tensor is large, and recycles it.
func (t *rowTask) do() {
	rows := (t.total + t.n - 1) / t.n
	if t.total < minParallelElems {
		t.run(0, rows)
	} else {
		parallelRun(t.procs, rows, max(1, minParallelElems/2/t.n), t)
	}
	*t = rowTask{}
	rowTasks.Put(t)
}

func rowOf(s []float32, lo, hi int) []float32 {
	if s == nil {
		return nil
	}
	return s[lo:hi]
}

func (t *rowTask) run(lo, hi int) {
	impl := t.impl
	for i := lo; i < hi; i++ {
		a, e := i*t.n, min((i+1)*t.n, t.total)
		x := t.x[a:e]
		switch t.op {
		case opAdd:
			impl.add(t.dst[a:e], x, t.r[a:e])
		case opAddBias:
			impl.add(x, x, t.c)
		case opAdd3:
			impl.add3(x, x, t.r[a:e], t.c)
		case opBiasAct:
			impl.biasAct(t.act, x, t.c)
		case opLayerNorm:
			impl.layerNorm(t.dst[a:e], x, rowOf(t.r, a, e), t.c, t.g, t.b, t.eps)
		case opAct:
			impl.act(t.act, x)
		case opSoftmax:
			impl.softmaxRow(x)
		}
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
func (a Activation) Apply(x *Tensor) { Threads(0).Activate(a, x) }

// Activate is Activation.Apply on th's goroutines.
func (th Threads) Activate(a Activation, x *Tensor) {
	checkF32("Activation", x)
	th.ActivateSlice(a, x.f32)
}

// ApplyBias adds bias [n] to every row of x [..., n] and applies the
// activation, in place, in one pass: the bias of the projection before the
// non-linearity of a feed-forward block.
func (a Activation) ApplyBias(x, bias *Tensor) { Threads(0).ActivateBias(a, x, bias) }

// ActivateBias is Activation.ApplyBias on th's goroutines.
func (th Threads) ActivateBias(a Activation, x, bias *Tensor) {
	checkF32("Activation", x, bias)
	if a < GELU || a > Tanh {
		panic(fmt.Sprintf("tensor: unknown activation %d", a))
	}
	n := bias.Len()
	if x.Dim(-1) != n {
		panic(fmt.Sprintf("tensor: ApplyBias: %v and bias %v", x.shape, bias.shape))
	}
	if n == 0 || len(x.f32) == 0 {
		return
	}
	t := newRowTask(th.Count(), opBiasAct, n, len(x.f32))
	t.x, t.c, t.act = x.f32, bias.f32, a
	t.do()
}

func biasActGeneric(a Activation, d, bias []float32) {
	addGeneric(d, d, bias)
	activateGeneric(a, d)
}

// ActivateSlice applies activation a to every element of d in place. Large
// slices are split over the worker pool.
func (th Threads) ActivateSlice(a Activation, d []float32) {
	if a < GELU || a > Tanh {
		panic(fmt.Sprintf("tensor: unknown activation %d", a))
	}
	if len(d) == 0 {
		return
	}
	t := newRowTask(th.Count(), opAct, min(len(d), addChunk), len(d))
	t.x, t.act = d, a
	t.do()
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
		opsDefault.add(row, row, table.f32[r*n:(r+1)*n])
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
