package gpt2

import (
	"context"
	"fmt"
	"math"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/tensor"
)

// State is the decoding state of a batch of sequences: the keys and values
// of every layer, preallocated up to a capacity, the attention mask so far
// and the next position id of each sequence. Prefill feeds a prompt in one
// pass; Step then feeds one token per sequence, reusing the cache and the
// state's buffers, so the steady state allocates nothing.
//
// A State belongs to one goroutine at a time; many States may share a Model.
type State struct {
	m       *Model
	batch   int
	cap     int
	caches  []*nn.KVCache
	bias    []float32 // B×cap additive key mask: 0 attend, -MaxFloat32 padding
	nextPos []int     // per sequence: the position id of its next token

	// Step buffers, B rows.
	pos    []int
	x      *tensor.Tensor // [B, D]
	sc     *scratch
	logits *tensor.Tensor // [B, V]

	// out is what Forward returns; allHidden and allLogits hold the
	// every-position outputs of the last AllPositions call.
	out                  arch.DecoderOutput
	allHidden, allLogits []float32
}

// NewState returns an empty state for batch sequences of up to capacity
// positions each (prompt, padding and generated tokens together). Position
// ids must stay below n_positions; capacity 0 means n_positions.
func (m *Model) NewState(batch, capacity int) (*State, error) {
	if capacity == 0 {
		capacity = m.cfg.NPositions
	}
	if batch <= 0 || capacity <= 0 {
		return nil, fmt.Errorf("gpt2: state for %d sequences of %d positions", batch, capacity)
	}
	d := m.cfg.NEmbd
	// Bound the cache before allocating: it is 2·layers·B·cap·D floats.
	if need := 2 * float64(len(m.blocks)) * float64(batch) * float64(capacity) * float64(d) * 4; need > 1<<36 {
		return nil, fmt.Errorf("gpt2: a KV cache for %d sequences of %d positions needs %.0f GiB", batch, capacity, need/(1<<30))
	}
	s := &State{
		m: m, batch: batch, cap: capacity,
		bias:    make([]float32, batch*capacity),
		nextPos: make([]int, batch),
		pos:     make([]int, batch),
		x:       tensor.Zeros(batch, d),
		sc:      newScratch(batch, d, m.cfg.Inner()),
		logits:  tensor.Zeros(batch, m.cfg.VocabSize),
	}
	for range m.blocks {
		c := nn.NewKVCache(batch, capacity, d)
		c.Threads = m.threads
		s.caches = append(s.caches, c)
	}
	return s, nil
}

// Batch is the number of sequences.
func (s *State) Batch() int { return s.batch }

// Len is the number of positions cached per sequence (padding included).
func (s *State) Len() int { return s.caches[0].Len }

// Cap is the capacity in positions per sequence.
func (s *State) Cap() int { return s.cap }

// Reset empties the state for a new batch of the same size.
func (s *State) Reset() {
	for _, c := range s.caches {
		c.Reset()
	}
	clear(s.bias)
	clear(s.nextPos)
}

// Prefill appends B×S prompt tokens (ids row-major, S = len(ids)/B) to the
// cache in one pass and returns the logits [B×V] of each sequence's last
// position. mask is the B×S attention mask (nil: all ones); with left
// padding, position ids follow the mask as in transformers' generate. The
// returned slice is reused by the next call.
func (s *State) Prefill(ctx context.Context, ids, mask []int) ([]float32, error) {
	if err := s.m.guard.Acquire("gpt2"); err != nil {
		return nil, err
	}
	defer s.m.guard.Release()
	return s.prefill(ctx, ids, mask, false)
}

// prefill is Prefill; with all it computes the final norm and the logits of
// every position into s.allHidden and s.allLogits instead of the last ones.
func (s *State) prefill(ctx context.Context, ids, mask []int, all bool) ([]float32, error) {
	b := s.batch
	if len(ids) == 0 || len(ids)%b != 0 {
		return nil, fmt.Errorf("gpt2: prefill with %d ids for %d sequences", len(ids), b)
	}
	seq := len(ids) / b
	if mask != nil && len(mask) != len(ids) {
		return nil, fmt.Errorf("gpt2: prefill: attention mask has %d values for %d ids", len(mask), len(ids))
	}
	start := s.Len()
	if start+seq > s.cap {
		return nil, fmt.Errorf("gpt2: prefill of %d positions overflows the state (%d of %d used)", seq, start, s.cap)
	}
	m := s.m
	d := m.cfg.NEmbd
	n := b * seq
	sc := m.scratch(n)
	defer m.work.Put(sc)
	pos := sc.pos
	for r := 0; r < b; r++ {
		p := s.nextPos[r]
		for i := 0; i < seq; i++ {
			k := r*seq + i
			if mask == nil || mask[k] != 0 {
				pos[k] = p
				p++
			} else {
				pos[k] = 1
				s.bias[r*s.cap+start+i] = -math.MaxFloat32
			}
		}
	}
	x := sc.x
	if err := m.embed(x, ids, pos); err != nil {
		s.rollback(start) // undo the mask entries set above
		return nil, err
	}
	for r := 0; r < b; r++ {
		for i := 0; i < seq; i++ {
			if mask == nil || mask[r*seq+i] != 0 {
				s.nextPos[r]++
			}
		}
	}
	// Only the last position of each sequence feeds the next token, so the
	// last layer computes the rest of its work for those rows alone.
	var xl *tensor.Tensor
	for li := range m.blocks {
		if err := ctx.Err(); err != nil {
			s.rollback(start)
			return nil, err
		}
		blk := &m.blocks[li]
		c := s.caches[li]
		var aerr error
		if li == len(m.blocks)-1 && !all {
			xl = m.blockForwardLast(blk, x, sc, b, seq, func(qkv, out []float32) {
				if aerr = c.Append(qkv[d:], qkv[2*d:], 3*d, seq); aerr == nil {
					c.AttendLast(out, qkv, 3*d, seq, m.cfg.NHead, s.bias, blk.scale)
				}
			})
		} else {
			m.blockForward(blk, x, sc, func(qkv, out []float32) {
				if aerr = c.Append(qkv[d:], qkv[2*d:], 3*d, seq); aerr == nil {
					c.Attend(out, qkv, 3*d, seq, m.cfg.NHead, s.bias, blk.scale)
				}
			})
		}
		if aerr != nil {
			s.rollback(start)
			return nil, fmt.Errorf("gpt2: layer %d: %w", li, aerr)
		}
	}
	if all {
		m.lnF.Forward(x, x)
		s.allHidden = append(s.allHidden[:0], x.Float32s()[:n*d]...)
		logits := tensor.Zeros(n, m.cfg.VocabSize)
		m.logits(logits, x)
		s.allLogits = logits.Float32s()
		return s.allLogits, nil
	}
	last := s.x
	if xl == nil { // no layers
		moveLastRows(x, b, seq)
		xl = x
	}
	copy(last.Float32s(), xl.Float32s()[:b*d])
	m.lnF.Forward(last, last)
	m.logits(s.logits, last)
	return s.logits.Float32s(), nil
}

// Truncate forgets every position from n on, so decoding can resume from an
// earlier point (to retry a continuation, or to keep a shared prompt cached
// and generate several continuations from it).
func (s *State) Truncate(n int) error {
	if n < 0 || n > s.Len() {
		return fmt.Errorf("gpt2: truncate to %d positions of %d", n, s.Len())
	}
	s.rollback(n)
	return nil
}

// rollback undoes a failed or cancelled call so the state stays usable.
func (s *State) rollback(start int) {
	for _, c := range s.caches {
		c.Len = min(c.Len, start)
	}
	for r := 0; r < s.batch; r++ {
		n := 0
		for i := 0; i < start; i++ {
			if s.bias[r*s.cap+i] == 0 {
				n++
			}
		}
		s.nextPos[r] = n
		clear(s.bias[r*s.cap+start : (r+1)*s.cap])
	}
}

// Step appends one token per sequence (ids has B entries) and returns the
// next-token logits [B×V]. It allocates nothing; the returned slice is
// reused by the next call.
func (s *State) Step(ctx context.Context, ids []int) ([]float32, error) {
	if len(ids) != s.batch {
		return nil, fmt.Errorf("gpt2: step with %d ids for %d sequences", len(ids), s.batch)
	}
	start := s.Len()
	if start >= s.cap {
		return nil, fmt.Errorf("gpt2: the state is full (%d positions)", s.cap)
	}
	if start == 0 {
		return s.Prefill(ctx, ids, nil)
	}
	if err := s.m.guard.Acquire("gpt2"); err != nil {
		return nil, err
	}
	defer s.m.guard.Release()
	m := s.m
	d := m.cfg.NEmbd
	copy(s.pos, s.nextPos)
	if err := m.embed(s.x, ids, s.pos); err != nil {
		return nil, err
	}
	for li := range m.blocks {
		if err := ctx.Err(); err != nil {
			s.rollback(start)
			return nil, err
		}
		blk := &m.blocks[li]
		c := s.caches[li]
		m.blockForward(blk, s.x, s.sc, func(qkv, out []float32) {
			// Cannot fail: capacity was checked above.
			_ = c.Append(qkv[d:], qkv[2*d:], 3*d, 1)
			c.Attend(out, qkv, 3*d, 1, m.cfg.NHead, s.bias, blk.scale)
		})
	}
	for r := range s.nextPos {
		s.nextPos[r]++
	}
	m.lnF.Forward(s.x, s.x)
	m.logits(s.logits, s.x)
	return s.logits.Float32s(), nil
}
