package nn

import (
	"fmt"
	"sync"

	"github.com/embrace-go/embrace/tensor"
)

// GatedMLP is the gated feed-forward block of Llama-family models:
// Down(act(Gate(x)) · Up(x)), SwiGLU with SiLU and GeGLU with a GELU. Gate
// and Up are one stacked product (GateUp, the gate's rows first), so x is
// read once.
type GatedMLP struct {
	GateUp *Linear // [2·Inner, D]
	Down   *Linear // [D, Inner]
	Act    tensor.Activation
	Inner  int
}

// NewGatedMLP stacks gate and up (Linear layout [Inner, D], unpacked, same
// storage type) into one packed product.
func NewGatedMLP(gate, up, down *Linear, act tensor.Activation) (*GatedMLP, error) {
	gu, err := StackLinear(gate, up)
	if err != nil {
		return nil, fmt.Errorf("gated mlp: %w", err)
	}
	if err := gu.Pack(); err != nil {
		return nil, err
	}
	if err := down.Pack(); err != nil {
		return nil, err
	}
	if down.In() != gate.Out() {
		return nil, fmt.Errorf("gated mlp: down_proj takes %d values, gate_proj gives %d", down.In(), gate.Out())
	}
	return &GatedMLP{GateUp: gu, Down: down, Act: act, Inner: gate.Out()}, nil
}

// ForwardInto computes dst [N, D] (without Down's bias when noBias, for a
// caller that adds it with the residual) from x [N, D], using gu
// [N, 2·Inner] and mid [N, Inner] as scratch.
func (m *GatedMLP) ForwardInto(dst, x, gu, mid *tensor.Tensor, noBias bool) {
	m.GateUp.Forward(gu, x)
	n := m.Inner
	t := gluTasks.Get().(*gluTask)
	*t = gluTask{g: gu.Float32s(), mid: mid.Float32s(), n: n, act: m.Act, th: m.GateUp.Threads}
	rows := len(t.mid) / n
	if rows > 1 && rows*n >= minParallelNorm {
		// The rows of a prompt: split over the worker pool.
		m.GateUp.Threads.ParallelRun(rows, max(1, minParallelNorm/4/n), t)
	} else {
		t.Run(0, rows)
	}
	*t = gluTask{}
	gluTasks.Put(t)
	if noBias {
		m.Down.ForwardNoBias(dst, mid)
	} else {
		m.Down.Forward(dst, mid)
	}
}

// StackLinear concatenates the output rows of Linear layers (layout
// [out, in], unpacked) that read the same input into one unpacked layer:
// Q, K and V, or gate and up. The weights must share a storage type; a bias
// missing on some but present on others becomes zeros. The stacked layer
// takes layer 0's Precision.
func StackLinear(ls ...*Linear) (*Linear, error) {
	if len(ls) == 0 {
		return nil, fmt.Errorf("stack linear: no layers")
	}
	in, dt := ls[0].In(), ls[0].W.DType()
	out, anyBias := 0, false
	for i, l := range ls {
		if l.Conv1D {
			return nil, fmt.Errorf("stack linear: layer %d is a Conv1D", i)
		}
		if l.In() != in {
			return nil, fmt.Errorf("stack linear: layer %d takes %d inputs, layer 0 %d", i, l.In(), in)
		}
		if l.W.DType() != dt {
			return nil, fmt.Errorf("stack linear: layer %d is %v, layer 0 %v", i, l.W.DType(), dt)
		}
		out += l.Out()
		anyBias = anyBias || l.B != nil
	}
	w := tensor.New(dt, out, in)
	o := 0
	for _, l := range ls {
		n := l.Out() * in
		switch dt {
		case tensor.F32:
			copy(w.Float32s()[o:o+n], l.W.Float32s())
		case tensor.F16, tensor.BF16:
			copy(w.Uint16s()[o:o+n], l.W.Uint16s())
		default:
			return nil, fmt.Errorf("stack linear: unsupported weight type %v", dt)
		}
		o += n
	}
	st := &Linear{W: w, prec: ls[0].prec, Threads: ls[0].Threads} // as the loader chose
	if anyBias {
		b := make([]float32, 0, out)
		for _, l := range ls {
			if l.B != nil {
				b = append(b, l.B.Float32s()...)
			} else {
				b = append(b, make([]float32, l.Out())...)
			}
		}
		st.B = tensor.FromFloat32(b, out)
	}
	return st, nil
}

// gluTasks recycles the bodies of the gating step, so that it allocates
// nothing on one thread or several.
var gluTasks = sync.Pool{New: func() any { return new(gluTask) }}

// gluTask computes mid = act(gate)·up for rows [lo, hi) of the stacked
// gate/up output g (each row the n gate values then the n up values).
type gluTask struct {
	g, mid []float32
	n      int
	act    tensor.Activation
	th     tensor.Threads
}

func (t *gluTask) Run(lo, hi int) {
	n := t.n
	for r := lo; r < hi; r++ {
		gate := t.g[2*r*n : 2*r*n+n]
		t.th.ActivateSlice(t.act, gate)
		up := t.g[2*r*n+n : 2*r*n+2*n]
		o := t.mid[r*n : r*n+n]
		for i, a := range gate {
			o[i] = a * up[i]
		}
	}
}
