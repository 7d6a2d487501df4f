package gpt2

import (
	"context"
	"testing"
)

// Prefill reuses the model's scratch: nothing is allocated per call or per
// layer besides the GEMM's own.
func TestPrefillAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m := load(t, smallModel(t))
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
		// Nothing: scratch, attention and the products' buffers are all
		// recycled.
		const limit = 0
		if allocs > limit {
			t.Errorf("batch %d: Prefill allocates %v times per call, want <= %v", b, allocs, limit)
		}
	}
}
