package llama

import (
	"context"
	"fmt"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/tensor"
)

// CacheOptions choose how a cache stores keys and values.
type CacheOptions struct {
	// DType is the storage of keys and values: tensor.F32 (the zero value
	// means F32), F16 or BF16 (half the memory, rounded once when stored).
	DType tensor.DType
	// PageSize is the number of positions per page; 0 means 64.
	PageSize int
}

// Cache is the decoding state of a batch: the paged keys and values of
// every layer, the length of each sequence (padding is not stored, so each
// sequence keeps its own positions) and the buffers of the calls made on
// it. It belongs to one goroutine at a time.
type Cache struct {
	m     *model
	kv    *nn.PagedKVCache
	batch int
	cap   int
	n     int       // positions per sequence fed so far, padding included
	real  [][]int32 // per sequence: real tokens among the first i+1 positions
	sc    scratch
	out   arch.DecoderOutput
}

// NewCache returns an empty cache for batch sequences of up to capacity
// positions each (padding included); capacity 0 means
// max_position_embeddings. Keys and values are stored in float32.
func (c *CausalLM) NewCache(batch, capacity int) (arch.Cache, error) {
	return c.NewCacheWith(batch, capacity, CacheOptions{})
}

// NewCacheWith is NewCache with storage options.
func (c *CausalLM) NewCacheWith(batch, capacity int, opt CacheOptions) (*Cache, error) {
	if err := c.m.enter(); err != nil {
		return nil, err
	}
	defer c.m.leave()
	return c.m.newCache(batch, capacity, opt)
}

func (m *model) newCache(batch, capacity int, opt CacheOptions) (*Cache, error) {
	if capacity == 0 {
		capacity = m.cfg.MaxPositionEmbeddings
	}
	if batch <= 0 || capacity <= 0 || batch > 1<<16 || capacity > 1<<24 {
		return nil, fmt.Errorf("llama: a cache for %d sequences of %d positions", batch, capacity)
	}
	dt := opt.DType
	if dt == 0 {
		dt = tensor.F32
	}
	kv, err := nn.NewPagedKVCache(len(m.layers), batch, m.cfg.NumKeyValueHeads, m.cfg.HeadDim, capacity, opt.PageSize, dt)
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	return &Cache{m: m, kv: kv, batch: batch, cap: capacity, real: make([][]int32, batch)}, nil
}

// Batch is the number of sequences.
func (c *Cache) Batch() int { return c.batch }

// Len is the number of positions fed per sequence, padding included.
func (c *Cache) Len() int { return c.n }

// Cap is the capacity in positions per sequence.
func (c *Cache) Cap() int { return c.cap }

// SeqLen is the number of real (unpadded) tokens of sequence b: the
// position its next token gets.
func (c *Cache) SeqLen(b int) int { return c.kv.SeqLen(b) }

// Reset empties the cache for a new batch of the same size, keeping its
// memory.
func (c *Cache) Reset() {
	c.kv.Reset()
	c.n = 0
	for b := range c.real {
		c.real[b] = c.real[b][:0]
	}
}

// Truncate forgets every position from n on.
func (c *Cache) Truncate(n int) error {
	if n < 0 || n > c.n {
		return fmt.Errorf("llama: truncate to %d positions of %d", n, c.n)
	}
	c.rollback(n)
	return nil
}

// rollback returns to the state after n positions.
func (c *Cache) rollback(n int) {
	for b := range c.real {
		c.real[b] = c.real[b][:n]
		keep := 0
		if n > 0 {
			keep = int(c.real[b][n-1])
		}
		c.kv.SetSeqLen(b, keep)
	}
	c.n = n
}

// scratch holds a call's intermediates for N rows, reshaped only when N
// changes, so decoding steps reuse them without allocating.
type scratch struct {
	n                            int
	x, h, qkv, att, tmp, gu, mid *tensor.Tensor
	pos                          []int
	bias                         []float32 // the key mask of a fresh prompt
	rows                         int       // rows of last and logits
	last, logits                 *tensor.Tensor
	ropeBuf                      []float32
	ws                           nn.AttnScratch
	rt                           rotTask
}

// rotGrain is the fewest rows a thread takes in rotTask: a row is a few
// hundred rotations, a hand-off to the pool a few µs.
const rotGrain = 16

// rotTask applies a layer's q/k norms (Qwen3) and the rotary embedding to
// rows [lo, hi) of the fused QKV output, in place; padding rows are left as
// they are. It lives in the scratch, so handing it to the pool allocates
// nothing.
type rotTask struct {
	m      *model
	ly     *layer
	qkv    []float32
	pos    []int
	maxPos int
	buf    []float32 // CosSin's buffer when the table is not shared (serial)
}

func (t *rotTask) Run(lo, hi int) {
	cfg := &t.m.cfg
	nh, nkv, hd := cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.HeadDim
	kOff, vOff := nh*hd, (nh+nkv)*hd
	w := (nh + 2*nkv) * hd
	for r := lo; r < hi; r++ {
		p := t.pos[r]
		if p < 0 {
			continue
		}
		row := t.qkv[r*w : (r+1)*w]
		if t.ly.qNorm != nil {
			t.ly.qNorm.Rows(row[:kOff], row[:kOff], hd)
			t.ly.kNorm.Rows(row[kOff:vOff], row[kOff:vOff], hd)
		}
		cos, sin := t.m.rope.CosSin(p, t.maxPos+1, t.buf)
		t.m.rope.Apply(row[:kOff], nh, hd, cos, sin)
		t.m.rope.Apply(row[kOff:vOff], nkv, hd, cos, sin)
	}
}

// reuse returns t when it already has the shape, else a tensor of that
// shape on t's memory when large enough, else a new one.
func reuse(t *tensor.Tensor, rows, cols int) *tensor.Tensor {
	if t != nil && t.Rank() == 2 && t.Dim(0) == rows && t.Dim(1) == cols {
		return t
	}
	if t != nil {
		if s := t.Float32s(); cap(s) >= rows*cols {
			return tensor.FromFloat32(s[:rows*cols], rows, cols)
		}
	}
	return tensor.Zeros(rows, cols)
}

func (sc *scratch) shape(m *model, n int) {
	if sc.n == n && sc.x != nil {
		return
	}
	c := &m.cfg
	qkvW := (c.NumAttentionHeads + 2*c.NumKeyValueHeads) * c.HeadDim
	sc.n = n
	sc.x = reuse(sc.x, n, c.HiddenSize)
	sc.h = reuse(sc.h, n, c.HiddenSize)
	sc.tmp = reuse(sc.tmp, n, c.HiddenSize)
	sc.qkv = reuse(sc.qkv, n, qkvW)
	sc.att = reuse(sc.att, n, c.NumAttentionHeads*c.HeadDim)
	sc.gu = reuse(sc.gu, n, 2*c.IntermediateSize)
	sc.mid = reuse(sc.mid, n, c.IntermediateSize)
	if cap(sc.pos) < n {
		sc.pos, sc.bias = make([]int, n), make([]float32, n)
	}
	sc.pos, sc.bias = sc.pos[:n], sc.bias[:n]
	if len(sc.ropeBuf) < 3*m.rope.Half() {
		sc.ropeBuf = make([]float32, 3*m.rope.Half())
	}
}

// Forward appends the new tokens of in to every sequence of the cache and
// returns the logits (and final hidden states) asked for. Padding (mask 0)
// is not stored: each sequence's positions continue from its own real
// length, as transformers' position_ids = cumsum(mask) − 1 give them.
// Hidden with NoLogits returns the final hidden states of every new
// position. The returned slices are reused by the next call on the same
// cache; a decoding step allocates nothing.
func (c *CausalLM) Forward(ctx context.Context, ac arch.Cache, in *arch.DecoderInput) (*arch.DecoderOutput, error) {
	if err := c.m.enter(); err != nil {
		return nil, err
	}
	defer c.m.leave()
	if in == nil {
		return nil, fmt.Errorf("llama: nil input")
	}
	cache, ok := ac.(*Cache)
	if !ok || cache == nil || cache.m != c.m {
		return nil, fmt.Errorf("llama: the cache %T was not made by this model's NewCache", ac)
	}
	return c.m.forward(ctx, cache, in, nil)
}

// forward runs a call; when hs is not nil it also receives every layer's
// input and the final normed states (output_hidden_states), B·S rows each.
func (m *model) forward(ctx context.Context, c *Cache, in *arch.DecoderInput, hs *[][]float32) (*arch.DecoderOutput, error) {
	cfg := &m.cfg
	b := c.batch
	if len(in.IDs) == 0 || len(in.IDs)%b != 0 {
		return nil, fmt.Errorf("llama: %d ids for %d sequences", len(in.IDs), b)
	}
	s := len(in.IDs) / b
	n := b * s
	if in.Mask != nil && len(in.Mask) != n {
		return nil, fmt.Errorf("llama: attention mask has %d values for %d ids", len(in.Mask), n)
	}
	if c.n+s > c.cap {
		return nil, fmt.Errorf("llama: %d more positions overflow the cache (%d of %d used)", s, c.n, c.cap)
	}
	for i, id := range in.IDs {
		if id < 0 || id >= cfg.VocabSize {
			return nil, fmt.Errorf("llama: token id %d at index %d is outside the vocabulary of %d", id, i, cfg.VocabSize)
		}
		if in.Mask != nil && in.Mask[i] != 0 && in.Mask[i] != 1 {
			return nil, fmt.Errorf("llama: attention mask value %d at index %d (want 0 or 1)", in.Mask[i], i)
		}
	}
	if in.Logits < arch.LastPosition || in.Logits > arch.NoLogits {
		return nil, fmt.Errorf("llama: unknown LogitsAt %d", in.Logits)
	}
	if m.head == nil && in.Logits != arch.NoLogits {
		return nil, fmt.Errorf("llama: a base model has no LM head; ask for NoLogits")
	}
	sc := &c.sc
	sc.shape(m, n)
	pos := sc.pos
	maxPos := 0
	for r := 0; r < b; r++ {
		p := c.kv.SeqLen(r)
		for i := 0; i < s; i++ {
			k := r*s + i
			if in.Mask == nil || in.Mask[k] != 0 {
				pos[k] = p
				maxPos = max(maxPos, p)
				p++
			} else {
				pos[k] = -1
			}
		}
	}
	x := sc.x
	if err := m.embed.Forward(x, in.IDs); err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	if hs != nil {
		*hs = append(*hs, append([]float32(nil), x.Float32s()...))
	}
	start := c.n
	fresh := start == 0
	lastOnly := in.Logits == arch.LastPosition && hs == nil && s > 1
	moved := false // the last rows were moved to the front of x
	keyBias := nn.MaskBiasInto(sc.bias, in.Mask)
	nh, nkv, hd := cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.HeadDim
	qkvW := (nh + 2*nkv) * hd
	kOff, vOff := nh*hd, (nh+nkv)*hd
	for li := range m.layers {
		if err := ctx.Err(); err != nil {
			c.rollback(start)
			return nil, err
		}
		ly := &m.layers[li]
		ly.inNorm.Forward(sc.h, x)
		ly.qkv.Forward(sc.qkv, sc.h)
		qkv := sc.qkv.Float32s()
		// q/k norms and rotary on every row (over the pool on a prompt),
		// then the keys and values into the cache.
		rt := &sc.rt
		*rt = rotTask{m: m, ly: ly, qkv: qkv, pos: pos, maxPos: maxPos, buf: sc.ropeBuf}
		if m.rope.Shared(maxPos + 1) {
			if maxPos >= 0 {
				m.rope.CosSin(maxPos, maxPos+1, nil) // grow the shared table once
			}
			m.threads.ParallelRun(n, rotGrain, rt)
		} else {
			rt.Run(0, n) // one buffer for the computed rows
		}
		*rt = rotTask{}
		for r := 0; r < n; r++ {
			if p := pos[r]; p >= 0 {
				row := qkv[r*qkvW : (r+1)*qkvW]
				c.kv.Put(li, r/s, p, row[kOff:vOff], row[vOff:])
			}
		}
		att := sc.att.Float32s()
		// In the last layer of a prompt whose only output is each
		// sequence's last position, the other rows need their keys and
		// values stored (done above) but nothing more: attention, o_proj
		// and the MLP run on those b rows alone (llama.cpp skips the same).
		qs, rows := s, n
		if lastOnly && li == len(m.layers)-1 {
			qs, rows = 1, b
		}
		if fresh && (ly.window == 0 || ly.window >= s) {
			// A prompt into an empty cache: every key is in this call's
			// rows, so the parallel kernel reads them in place (padding
			// hidden by the key mask; with padding only at the ends,
			// buffer order is position order).
			m.threads.Attention(att, qkv[(s-qs)*qkvW:], qkv[kOff:], qkv[vOff:], tensor.AttentionParams{
				Batch: b, Heads: nh, KVHeads: nkv, HeadDim: hd, SeqQ: qs, SeqK: s,
				QBatchStride: s * qkvW, QRowStride: qkvW,
				KBatchStride: s * qkvW, KRowStride: qkvW,
				VBatchStride: s * qkvW, VRowStride: qkvW,
				OutBatchStride: qs * nh * hd, OutRowStride: nh * hd,
				Scale: m.scale, KeyMask: keyBias, Causal: true, QOffset: s - qs,
			})
		} else {
			opt := nn.AttnOptions{Heads: nh, Scale: m.scale, Window: ly.window, Threads: m.threads}
			for r := 0; r < b; r++ {
				o := r*s + s - qs
				c.kv.Attend(att[r*qs*nh*hd:], nh*hd, qkv[o*qkvW:], qkvW, li, r, pos[o:o+qs], opt, &sc.ws)
			}
		}
		xl, attl, tmp, h, gu, mid := x, sc.att, sc.tmp, sc.h, sc.gu, sc.mid
		if rows != n {
			moveLastRows(x, b, s)
			// Views on the first rows: a prompt may allocate these
			// headers; decoding steps never come here.
			xl, attl, tmp, h = x.Rows(0, rows), sc.att.Rows(0, rows), sc.tmp.Rows(0, rows), sc.h.Rows(0, rows)
			gu, mid = sc.gu.Rows(0, rows), sc.mid.Rows(0, rows)
			moved = true
		}
		ly.o.ForwardNoBias(tmp, attl)
		m.threads.AddResidual(xl, tmp, ly.o.B)
		ly.postNorm.Forward(h, xl)
		ly.mlp.ForwardInto(tmp, h, gu, mid, true)
		m.threads.AddResidual(xl, tmp, ly.mlp.Down.B)
		if hs != nil && li < len(m.layers)-1 {
			*hs = append(*hs, append([]float32(nil), x.Float32s()...))
		}
	}
	// Commit: each sequence's new length and the padding history.
	for r := 0; r < b; r++ {
		cnt := c.kv.SeqLen(r)
		for i := 0; i < s; i++ {
			if pos[r*s+i] >= 0 {
				cnt++
			}
			c.real[r] = append(c.real[r], int32(cnt))
		}
		c.kv.SetSeqLen(r, cnt)
	}
	c.n += s
	d := cfg.HiddenSize
	out := &c.out
	out.Logits, out.Hidden = nil, nil
	switch in.Logits {
	case arch.NoLogits:
		if hs != nil || in.Hidden {
			m.norm.Forward(x, x)
			if in.Hidden {
				out.Hidden = x.Float32s()
			}
		}
	case arch.AllPositions:
		m.norm.Forward(x, x)
		sc.logits = reuse(sc.logits, n, cfg.VocabSize)
		m.head.Forward(sc.logits, x)
		out.Logits = sc.logits.Float32s()
		if in.Hidden {
			out.Hidden = x.Float32s()
		}
	case arch.LastPosition:
		sc.last = reuse(sc.last, b, d)
		xs, ls := x.Float32s(), sc.last.Float32s()
		for r := 0; r < b; r++ {
			src := (r*s + s - 1) * d
			if moved {
				src = r * d
			}
			copy(ls[r*d:(r+1)*d], xs[src:src+d])
		}
		m.norm.Forward(sc.last, sc.last)
		sc.logits = reuse(sc.logits, b, cfg.VocabSize)
		m.head.Forward(sc.logits, sc.last)
		out.Logits = sc.logits.Float32s()
		if in.Hidden {
			out.Hidden = ls
		}
	}
	if hs != nil {
		*hs = append(*hs, append([]float32(nil), x.Float32s()...))
	}
	return out, nil
}

// moveLastRows moves row r·seq+seq−1 of x to row r for r < b (each row
// moves up, never onto a row still to be read).
func moveLastRows(x *tensor.Tensor, b, seq int) {
	d := x.Dim(-1)
	xs := x.Float32s()
	for r := 0; r < b; r++ {
		copy(xs[r*d:(r+1)*d], xs[(r*seq+seq-1)*d:(r*seq+seq)*d])
	}
}
