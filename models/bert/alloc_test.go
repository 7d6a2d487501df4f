package bert

import (
	"context"
	"path/filepath"
	"testing"
)

// gemmPackAllocs is how many times the tensor package's blocked GEMM
// allocates per product today (tensor.packB's row buffer); attention makes
// two such products per sequence and head. It should become 0, and this
// test's bound with it.
const gemmPackAllocs = 1

// A stream of same-shaped Forward calls allocates its outputs and nothing
// per layer: the scratch is recycled.
func TestForwardAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m, err := Load(filepath.Join(fixturesDir(t), "models", "bert"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config
	ctx := context.Background()
	for _, batch := range []int{1, 3} {
		const seq = 16
		in := &Input{Batch: batch, Seq: seq, InputIDs: make([]int, batch*seq), AttentionMask: make([]int, batch*seq)}
		for i := range in.InputIDs {
			in.InputIDs[i] = 100 + i
			in.AttentionMask[i] = 1
		}
		in.AttentionMask[seq-1] = 0
		allocs := testing.AllocsPerRun(10, func() {
			if _, _, err := m.Encoder.Forward(ctx, in, false); err != nil {
				t.Fatal(err)
			}
		})
		// The last hidden state (a tensor and its [B, S, D] view) and a
		// little bookkeeping, plus the GEMM's own.
		limit := float64(8 + gemmPackAllocs*2*batch*cfg.NumAttentionHeads*cfg.NumHiddenLayers)
		if allocs > limit {
			t.Errorf("batch %d: Encoder.Forward allocates %v times per call, want <= %v", batch, allocs, limit)
		}
	}
}
