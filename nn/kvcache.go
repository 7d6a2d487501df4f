package nn

import (
	"fmt"

	"github.com/embrace-go/embrace/tensor"
)

// KVCache holds the keys and values of one attention layer for a batch of
// sequences, preallocated up to a maximum length so that decoding a token
// appends in place without allocating.
//
//	K, V: [B, Cap, Width]
type KVCache struct {
	K, V       []float32
	Batch, Cap int
	Width      int
	Len        int // positions filled, the same for every sequence
	// Threads bounds the goroutines of each Attend (zero: GOMAXPROCS).
	Threads tensor.Threads
}

// NewKVCache allocates a cache for batch sequences of up to capacity positions.
func NewKVCache(batch, capacity, width int) *KVCache {
	return &KVCache{
		K:     make([]float32, batch*capacity*width),
		V:     make([]float32, batch*capacity*width),
		Batch: batch, Cap: capacity, Width: width,
	}
}

// Append copies s new positions per sequence into the cache. k and v hold B×s
// rows with row stride stride (the first Width values of each row are used).
func (c *KVCache) Append(k, v []float32, stride, s int) error {
	if c.Len+s > c.Cap {
		return fmt.Errorf("kv cache: %d positions exceed the capacity of %d", c.Len+s, c.Cap)
	}
	for b := 0; b < c.Batch; b++ {
		for i := 0; i < s; i++ {
			src := (b*s + i) * stride
			dst := (b*c.Cap + c.Len + i) * c.Width
			copy(c.K[dst:dst+c.Width], k[src:src+c.Width])
			copy(c.V[dst:dst+c.Width], v[src:src+c.Width])
		}
	}
	c.Len += s
	return nil
}

// Reset empties the cache for reuse.
func (c *KVCache) Reset() { c.Len = 0 }

// Attend runs attention of s new query rows per sequence (row stride qStride)
// against every cached position, causally: the query at absolute position p
// sees cached positions ≤ p. Call Append with the new keys and values first.
//
//	out: [B, s, Width]; keyBias: B×Cap additive per-key bias or nil
func (c *KVCache) Attend(out, q []float32, qStride, s, heads int, keyBias []float32, scale float32) {
	c.Threads.Attention(out, q, c.K, c.V, tensor.AttentionParams{
		Batch: c.Batch, Heads: heads, HeadDim: c.Width / heads, SeqQ: s, SeqK: c.Len,
		QBatchStride: s * qStride, QRowStride: qStride,
		KBatchStride: c.Cap * c.Width, KRowStride: c.Width,
		VBatchStride: c.Cap * c.Width, VRowStride: c.Width,
		OutBatchStride: s * c.Width, OutRowStride: c.Width,
		Scale:   scale,
		KeyMask: keyBias, KeyMaskStride: c.Cap,
		Causal: true, QOffset: c.Len - s,
	})
}

// AttendLast is Attend for the last of the s new query rows of each sequence
// only: the rows whose outputs a prefill keeps after its last layer.
//
//	out: [B, Width]; keyBias: B×Cap additive per-key bias or nil
func (c *KVCache) AttendLast(out, q []float32, qStride, s, heads int, keyBias []float32, scale float32) {
	c.Threads.Attention(out, q[(s-1)*qStride:], c.K, c.V, tensor.AttentionParams{
		Batch: c.Batch, Heads: heads, HeadDim: c.Width / heads, SeqQ: 1, SeqK: c.Len,
		QBatchStride: s * qStride, QRowStride: qStride,
		KBatchStride: c.Cap * c.Width, KRowStride: c.Width,
		VBatchStride: c.Cap * c.Width, VRowStride: c.Width,
		OutBatchStride: c.Width, OutRowStride: c.Width,
		Scale:   scale,
		KeyMask: keyBias, KeyMaskStride: c.Cap,
		Causal: true, QOffset: c.Len - 1,
	})
}
