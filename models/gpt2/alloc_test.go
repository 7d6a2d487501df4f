package gpt2

import (
	"context"
	"path/filepath"
	"testing"
)

// gemmPackAllocs is how many times the tensor package's blocked GEMM
// allocates per product today (tensor.packB's row buffer); attention over a
// prompt makes two such products per sequence and head. It should become
// 0, and this test's bound with it.
const gemmPackAllocs = 1

// Prefill reuses the model's scratch: nothing is allocated per call or per
// layer besides the GEMM's own.
func TestPrefillAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m := load(t, filepath.Join(fixtures(t), "models", "gpt2"))
	ctx := context.Background()
	for _, b := range []int{1, 2} {
		const seq = 16
		st, err := m.NewState(b, 64)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int, b*seq)
		for i := range ids {
			ids[i] = (7 * i) % m.VocabSize()
		}
		mask := make([]int, b*seq)
		for i := range mask {
			mask[i] = 1
		}
		mask[0] = 0
		allocs := testing.AllocsPerRun(10, func() {
			st.Reset()
			if _, err := st.Prefill(ctx, ids, mask); err != nil {
				t.Fatal(err)
			}
		})
		// Attention's products, and a few panels of the logits product
		// (a blocked GEMM when b > 1).
		limit := float64(gemmPackAllocs * (2*b*m.cfg.NHead*len(m.blocks) + 4))
		if allocs > limit {
			t.Errorf("batch %d: Prefill allocates %v times per call, want <= %v", b, allocs, limit)
		}
	}
}
