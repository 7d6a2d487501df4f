package gpt2

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// block is one transformer layer (GPT2Block): pre-norm attention and MLP,
// each added to the residual stream.
type block struct {
	ln1, ln2 *nn.LayerNorm
	attn     *nn.Linear // c_attn: Conv1D [D, 3D], fused q|k|v
	proj     *nn.Linear // attn.c_proj: Conv1D [D, D]
	fc       *nn.Linear // mlp.c_fc: Conv1D [D, inner]
	out      *nn.Linear // mlp.c_proj: Conv1D [inner, D]
	scale    float32    // multiplies q·k before the mask
}

// Model is a GPT2LMHeadModel. It is immutable after Load and safe for
// concurrent use; per-generation state lives in a State.
type Model struct {
	cfg    Config
	wte    *nn.Embedding // [V, D]
	wpe    *nn.Embedding // [P, D]
	blocks []block
	lnF    *nn.LayerNorm
	head   *tensor.Tensor // [V, D]: wte when tied, else lm_head.weight
	// threads is LoadOptions.Threads, for the calls made here rather than
	// through a layer.
	threads tensor.Threads
	// headQ is the head in reduced precision when the load options ask for
	// it (q8 weights or BF16 compute); nil otherwise.
	headQ *nn.Linear
	act   tensor.Activation
	ck    *safetensors.Checkpoint // kept open: weights alias its mapped memory

	// work recycles the scratch of finished Forward and Prefill calls
	// (*scratch); concurrent calls each take their own.
	work sync.Pool
	// guard keeps Close from unmapping weights under a running call.
	guard arch.Guard
}

// Config returns a copy of the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// VocabSize is the number of logits per position.
func (m *Model) VocabSize() int { return m.cfg.VocabSize }

// MaxPositions is n_positions, the longest sequence the position table
// covers.
func (m *Model) MaxPositions() int { return m.cfg.NPositions }

// Load reads config.json and the safetensors weights (single file or
// sharded index) from dir. Weights stay in their stored precision and alias
// the memory-mapped files; Close releases them.
func Load(dir string) (*Model, error) {
	f, err := hfdir.Read(dir)
	if err != nil {
		return nil, err
	}
	return loadFolder(f, arch.LoadOptions{})
}

func loadFolder(f *hfdir.Folder, opt arch.LoadOptions) (*Model, error) {
	hc, err := f.RequireConfig()
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(hc.Data, hc.Path)
	if err != nil {
		return nil, err
	}
	ck, src, err := weights.Open(f, opt)
	if err != nil {
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	m, err := FromCheckpoint(cfg, src, f.Dir)
	if err != nil {
		ck.Close()
		return nil, err
	}
	m.ck = ck
	return m, nil
}

// Close waits for the calls in flight and releases the checkpoint files
// behind a model made by Load; calls made afterwards return arch.ErrClosed.
func (m *Model) Close() error {
	return m.guard.Close(func() error {
		if m.ck == nil {
			return nil
		}
		return m.ck.Close()
	})
}

// FromCheckpoint builds a model from cfg and the tensors of src (names with
// or without the "transformer." prefix); where names the source in errors.
// The tensors must outlive the model.
func FromCheckpoint(cfg *Config, src weights.Source, where string) (*Model, error) {
	prefix, ok := weights.FirstPrefix(src, "wte.weight", "transformer.", "")
	if !ok {
		return nil, fmt.Errorf("gpt2: %s: no token embeddings (neither transformer.wte.weight nor wte.weight)", where)
	}
	root := weights.New(src, where)
	base := root.Sub(prefix)
	d, inner := cfg.NEmbd, cfg.Inner()
	m := &Model{cfg: *cfg}
	var err error
	if m.act, err = tensor.ParseActivation(cfg.ActivationFunction); err != nil {
		return nil, fmt.Errorf("gpt2: %s: %w", where, err)
	}
	if m.wte, err = base.Embedding("wte", cfg.VocabSize, d); err != nil {
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	if m.wpe, err = base.Embedding("wpe", cfg.NPositions, d); err != nil {
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	eps := cfg.LayerNormEpsilon
	scaleW := cfg.ScaleAttnWeights == nil || *cfg.ScaleAttnWeights
	for i := 0; i < cfg.NLayer; i++ {
		l := base.Subf("h.%d", i)
		var b block
		if b.ln1, err = l.LayerNorm("ln_1", d, eps); err == nil {
			if b.attn, err = l.Conv1D("attn.c_attn", d, 3*d); err == nil {
				if b.proj, err = l.Conv1D("attn.c_proj", d, d); err == nil {
					if b.ln2, err = l.LayerNorm("ln_2", d, eps); err == nil {
						if b.fc, err = l.Conv1D("mlp.c_fc", d, inner); err == nil {
							b.out, err = l.Conv1D("mlp.c_proj", inner, d)
						}
					}
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("gpt2: layer %d: %w", i, err)
		}
		// modeling_gpt2.py: divide by sqrt(head_dim) when scale_attn_weights,
		// and by layer_idx+1 when scale_attn_by_inverse_layer_idx.
		s := 1.0
		if scaleW {
			s /= math.Sqrt(float64(cfg.HeadDim()))
		}
		if cfg.ScaleAttnByInverseLayer {
			s /= float64(i + 1)
		}
		b.scale = float32(s)
		m.blocks = append(m.blocks, b)
	}
	if m.lnF, err = base.LayerNorm("ln_f", d, eps); err != nil {
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	m.head = m.wte.Table
	m.threads = root.Threads()
	if !cfg.Tied() {
		if !root.Has("lm_head.weight") {
			return nil, fmt.Errorf("gpt2: %s: tie_word_embeddings is false but the checkpoint has no lm_head.weight", where)
		}
		if m.head, err = root.Weight("lm_head.weight", cfg.VocabSize, d); err != nil {
			return nil, fmt.Errorf("gpt2: %w", err)
		}
	}
	if root.HeadPrecision() != nn.PrecisionDefault {
		if m.headQ, err = root.Head(m.head); err != nil {
			return nil, fmt.Errorf("gpt2: %w", err)
		}
	}
	return m, nil
}

// logits writes the vocabulary logits of the rows of x [N, D] into dst
// [N, V].
func (m *Model) logits(dst, x *tensor.Tensor) {
	if m.headQ != nil {
		m.headQ.ForwardNoBias(dst, x)
		return
	}
	m.threads.MatMulT(dst, x, m.head)
}

// Input is a batch of token ids, B sequences of S positions, row-major.
type Input struct {
	IDs   []int // B×S token ids
	Batch int   // B; 0 means 1
	// Mask is the B×S attention mask (1 real token, 0 padding) or nil for
	// all ones. Padding may sit anywhere; left padding is what generation
	// uses.
	Mask []int
	// Positions are the B×S position ids. When nil they are derived from
	// Mask the way transformers' generate does (cumsum(mask)-1, and 1 where
	// the mask is 0), so a left-padded row gets the same positions as the
	// unpadded sequence alone.
	Positions []int
}

// Output holds the results of Forward.
type Output struct {
	Logits     *tensor.Tensor // [B, S, V]
	LastHidden *tensor.Tensor // [B, S, D], after ln_f
}

// shape validates an input and returns B and S.
func (in *Input) shape() (b, s int, err error) {
	b = in.Batch
	if b == 0 {
		b = 1
	}
	if b < 0 || len(in.IDs)%b != 0 {
		return 0, 0, fmt.Errorf("gpt2: %d ids do not split into %d sequences", len(in.IDs), b)
	}
	s = len(in.IDs) / b
	if in.Mask != nil && len(in.Mask) != len(in.IDs) {
		return 0, 0, fmt.Errorf("gpt2: attention mask has %d values for %d ids", len(in.Mask), len(in.IDs))
	}
	if in.Positions != nil && len(in.Positions) != len(in.IDs) {
		return 0, 0, fmt.Errorf("gpt2: %d position ids for %d ids", len(in.Positions), len(in.IDs))
	}
	return b, s, nil
}

// PositionsFromMask returns position ids for a B×S mask as transformers'
// generate builds them: cumsum(mask)-1 along each row, 1 where the mask is 0.
func PositionsFromMask(mask []int, batch int) []int {
	pos := make([]int, len(mask))
	if batch <= 0 {
		return pos
	}
	s := len(mask) / batch
	for b := 0; b < batch; b++ {
		n := 0
		for i := 0; i < s; i++ {
			if mask[b*s+i] != 0 {
				pos[b*s+i] = n
				n++
			} else {
				pos[b*s+i] = 1
			}
		}
	}
	return pos
}

func (m *Model) positions(in *Input, b, s int) []int {
	if in.Positions != nil {
		return in.Positions
	}
	if in.Mask != nil {
		return PositionsFromMask(in.Mask, b)
	}
	pos := make([]int, b*s)
	for i := range pos {
		pos[i] = i % s
	}
	return pos
}

// embed writes wte[ids] + wpe[pos] into x [N, D].
func (m *Model) embed(x *tensor.Tensor, ids, pos []int) error {
	if err := m.wte.Forward(x, ids); err != nil {
		return fmt.Errorf("gpt2: token ids: %w", err)
	}
	if err := m.wpe.AddTo(x, pos); err != nil {
		return fmt.Errorf("gpt2: position ids (n_positions is %d): %w", m.cfg.NPositions, err)
	}
	return nil
}

// Recompute runs the whole model over a batch without a cache and returns the
// logits and the last hidden state at every position. Padded positions hold
// values without meaning.
func (m *Model) Recompute(ctx context.Context, in Input) (*Output, error) {
	if err := m.guard.Acquire("gpt2"); err != nil {
		return nil, err
	}
	defer m.guard.Release()
	b, s, err := in.shape()
	if err != nil {
		return nil, err
	}
	if s == 0 {
		return nil, fmt.Errorf("gpt2: empty input")
	}
	n, d := b*s, m.cfg.NEmbd
	pos := m.positions(&in, b, s)
	// Check ranges before allocating anything sized by the input.
	for i, p := range pos {
		if p < 0 || p >= m.cfg.NPositions {
			return nil, fmt.Errorf("gpt2: position id %d at index %d is outside n_positions %d", p, i, m.cfg.NPositions)
		}
	}
	for i, id := range in.IDs {
		if id < 0 || id >= m.cfg.VocabSize {
			return nil, fmt.Errorf("gpt2: token id %d at index %d is outside the vocabulary of %d", id, i, m.cfg.VocabSize)
		}
	}
	x := tensor.Zeros(n, d)
	if err := m.embed(x, in.IDs, pos); err != nil {
		return nil, err
	}
	sc := m.scratch(n)
	defer m.work.Put(sc)
	bias := nn.MaskBiasInto(sc.bias, in.Mask)
	for li := range m.blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		blk := &m.blocks[li]
		m.blockForward(blk, x, sc, func(qkv, out []float32) {
			m.threads.Attention(out, qkv, qkv[d:], qkv[2*d:], tensor.AttentionParams{
				Batch: b, Heads: m.cfg.NHead, HeadDim: m.cfg.HeadDim(), SeqQ: s, SeqK: s,
				QBatchStride: s * 3 * d, QRowStride: 3 * d,
				KBatchStride: s * 3 * d, KRowStride: 3 * d,
				VBatchStride: s * 3 * d, VRowStride: 3 * d,
				OutBatchStride: s * d, OutRowStride: d,
				Scale: blk.scale, KeyMask: bias, Causal: true,
			})
		})
	}
	m.lnF.Forward(x, x)
	logits := tensor.Zeros(b, s, m.cfg.VocabSize)
	m.logits(logits.Reshape(n, m.cfg.VocabSize), x)
	return &Output{Logits: logits, LastHidden: x.Reshape(b, s, d)}, nil
}

// scratch holds the per-layer intermediates for N rows, and the per-token
// rows of a call.
type scratch struct {
	h, qkv, ctx, tmp, mlp *tensor.Tensor
	n                     int // rows the tensors are shaped for
	x                     *tensor.Tensor
	pos                   []int
	bias                  []float32
	last                  lastViews
}

// lastViews are [b, ·] views on the first rows of a scratch's buffers, for
// blockForwardLast; kept so that a prefill allocates nothing.
type lastViews struct {
	b                   int // 0: not made for the current shape
	ctx, tmp, h, mlp, x *tensor.Tensor
}

// lastRowsViews returns the views for b rows, making them on first use.
func (sc *scratch) lastRowsViews(b int) *lastViews {
	if v := &sc.last; v.b != b {
		*v = lastViews{b: b, ctx: sc.ctx.Rows(0, b), tmp: sc.tmp.Rows(0, b), h: sc.h.Rows(0, b), mlp: sc.mlp.Rows(0, b), x: sc.x.Rows(0, b)}
	}
	return &sc.last
}

func newScratch(n, d, inner int) *scratch {
	sc := new(scratch)
	sc.shape(n, d, inner)
	return sc
}

// shape sizes the buffers for n rows, reusing the backing arrays that are
// large enough.
func (sc *scratch) shape(n, d, inner int) {
	if sc.n == n && sc.h != nil {
		return
	}
	sc.n = n
	sc.last = lastViews{}
	sc.h = reuse(sc.h, n, d)
	sc.qkv = reuse(sc.qkv, n, 3*d)
	sc.ctx = reuse(sc.ctx, n, d)
	sc.tmp = reuse(sc.tmp, n, d)
	sc.mlp = reuse(sc.mlp, n, inner)
	sc.x = reuse(sc.x, n, d)
	if cap(sc.pos) < n {
		sc.pos, sc.bias = make([]int, n), make([]float32, n)
	}
	sc.pos, sc.bias = sc.pos[:n], sc.bias[:n]
}

// scratch takes a recycled scratch (or a new one) shaped for n rows; the
// caller puts it back in m.work when done.
func (m *Model) scratch(n int) *scratch {
	sc, _ := m.work.Get().(*scratch)
	if sc == nil {
		sc = new(scratch)
	}
	sc.shape(n, m.cfg.NEmbd, m.cfg.Inner())
	return sc
}

// reuse returns a [rows, cols] tensor on t's backing array when it is large
// enough, else a new one. The contents are not cleared: every buffer is
// written in full before it is read.
func reuse(t *tensor.Tensor, rows, cols int) *tensor.Tensor {
	if t != nil {
		if s := t.Float32s(); cap(s) >= rows*cols {
			return tensor.FromFloat32(s[:rows*cols], rows, cols)
		}
	}
	return tensor.Zeros(rows, cols)
}

// blockForward updates the residual stream x [N, D] through one layer;
// attend turns the fused qkv rows [N, 3D] into the attention output [N, D].
// The biases of c_proj, c_fc and mlp.c_proj are added in the pass after
// each product (residual add and ln_2, activation, residual add).
func (m *Model) blockForward(blk *block, x *tensor.Tensor, sc *scratch, attend func(qkv, out []float32)) {
	blk.ln1.Forward(sc.h, x)
	blk.attn.Forward(sc.qkv, sc.h)
	attend(sc.qkv.Float32s(), sc.ctx.Float32s())
	// x += ctx·Wproj + bproj; h = ln_2(x)
	blk.proj.ForwardNoBias(sc.tmp, sc.ctx)
	blk.ln2.AddNorm(sc.h, x, sc.tmp, blk.proj.B)
	// x += act(h·Wfc + bfc)·Wout + bout
	blk.fc.ForwardAct(sc.mlp, sc.h, m.act)
	blk.out.ForwardNoBias(sc.tmp, sc.mlp)
	m.threads.AddResidual(x, sc.tmp, blk.out.B)
}

// blockForwardLast is blockForward for the last layer of a prefill of seq
// positions in each of b sequences, where only each sequence's last position
// feeds the logits: every position still goes through ln_1 and the QKV
// product (the cache needs all keys and values), but attention, the output
// projection and the MLP run on those b rows alone (llama.cpp skips the same
// work). attend writes the b attention rows. It returns the b rows of the
// residual stream, moved to the front of x (which must be sc.x).
func (m *Model) blockForwardLast(blk *block, x *tensor.Tensor, sc *scratch, b, seq int, attend func(qkv, out []float32)) *tensor.Tensor {
	blk.ln1.Forward(sc.h, x)
	blk.attn.Forward(sc.qkv, sc.h)
	v := sc.lastRowsViews(b)
	attend(sc.qkv.Float32s(), v.ctx.Float32s())
	moveLastRows(x, b, seq)
	blk.proj.ForwardNoBias(v.tmp, v.ctx)
	blk.ln2.AddNorm(v.h, v.x, v.tmp, blk.proj.B)
	blk.fc.ForwardAct(v.mlp, v.h, m.act)
	blk.out.ForwardNoBias(v.tmp, v.mlp)
	m.threads.AddResidual(v.x, v.tmp, blk.out.B)
	return v.x
}

// moveLastRows moves row r·seq+seq-1 of x to row r for r < b (each row
// moves up, never onto a row still to be read).
func moveLastRows(x *tensor.Tensor, b, seq int) {
	d := x.Dim(-1)
	xs := x.Float32s()
	for r := 0; r < b; r++ {
		copy(xs[r*d:(r+1)*d], xs[(r*seq+seq-1)*d:(r*seq+seq)*d])
	}
}
