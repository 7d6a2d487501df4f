package arch

import "context"

// CausalLM is a decoder that predicts the next token, decoded with a KV
// cache (GPT-2, Llama, Qwen, ...). A prompt and each generated token go
// through Forward on the same Cache; a CausalLM is safe for concurrent use
// with one Cache per goroutine.
type CausalLM interface {
	Model
	// NewCache returns an empty cache for batch sequences of up to capacity
	// positions each (prompt, padding and generated tokens together);
	// capacity 0 means the model's MaxPositions.
	NewCache(batch, capacity int) (Cache, error)
	// Forward appends the new tokens of in to every sequence of the cache
	// and returns the outputs asked for. Each sequence's positions continue
	// from its own length (padding does not count), so a left-padded batch
	// of prompts of different lengths decodes as each prompt alone would.
	// The returned slices are reused by the next call on the same cache.
	Forward(ctx context.Context, c Cache, in *DecoderInput) (*DecoderOutput, error)
}

// Cache is the decoding state of a batch of sequences: the keys and values
// of every layer and each sequence's length. It belongs to one goroutine at
// a time and to the model that made it.
type Cache interface {
	// Batch is the number of sequences.
	Batch() int
	// Len is the number of positions stored per sequence, padding included.
	Len() int
	// Cap is the capacity in positions per sequence.
	Cap() int
	// Reset empties the cache for a new batch of the same size.
	Reset()
	// Truncate forgets every position from n on.
	Truncate(n int) error
}

// DecoderInput is one step of decoding: S new tokens for each of B
// sequences.
type DecoderInput struct {
	// IDs holds B·S token ids, row-major (B = the cache's Batch).
	IDs []int
	// Mask holds B·S values, 1 for real tokens and 0 for (left) padding;
	// nil means every token is real.
	Mask []int
	// Logits picks the positions whose next-token logits are computed.
	Logits LogitsAt
	// Hidden also returns the final hidden states (after the final norm) at
	// the same positions.
	Hidden bool
}

// LogitsAt picks the positions that get logits.
type LogitsAt int

const (
	// LastPosition computes the logits of each sequence's last new position
	// (B rows): what decoding needs. It is the zero value.
	LastPosition LogitsAt = iota
	// AllPositions computes the logits of every new position (B·S rows).
	AllPositions
	// NoLogits only fills the cache.
	NoLogits
)

// DecoderOutput is what a Forward computed.
type DecoderOutput struct {
	// Logits holds rows × VocabSize values (rows = B for LastPosition, B·S
	// for AllPositions, none for NoLogits).
	Logits []float32
	// Hidden holds rows × HiddenSize values when asked for.
	Hidden []float32
}
