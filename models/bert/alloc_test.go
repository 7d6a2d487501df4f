package bert

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
)

// gemmPackAllocs is how many times the tensor package's blocked GEMM
// allocates per product today (tensor.packB's row buffer); attention makes
// two such products per sequence and head. It should become 0, and this
// test's bound with it.
const gemmPackAllocs = 1

// gemmClosureAllocs is the same for a product the GEMM splits over the
// worker pool: its closure.
const gemmClosureAllocs = 1

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
		forward := func() {
			if _, _, err := m.Encoder.Forward(ctx, in, false); err != nil {
				t.Fatal(err)
			}
		}
		// The last hidden state (a tensor and its [B, S, D] view) and a
		// little bookkeeping, plus the GEMM's own.
		limit := float64(8 + gemmPackAllocs*2*batch*cfg.NumAttentionHeads*cfg.NumHiddenLayers)
		if allocs := testing.AllocsPerRun(10, forward); allocs > limit {
			t.Errorf("batch %d: Encoder.Forward allocates %v times per call, want <= %v", batch, allocs, limit)
		}
		// On two threads attention and the row operations go through the
		// worker pool, and so does the QKV product at batch 3, whose
		// closure the GEMM allocates (gemmClosureAllocs per layer; it
		// should become 0 too). One more is allowed for a garbage
		// collection emptying the pools.
		prev := runtime.GOMAXPROCS(2)
		allocs := allocsPerRun(20, forward)
		runtime.GOMAXPROCS(prev)
		limit2 := limit + 1
		if batch > 1 {
			limit2 += float64(gemmClosureAllocs * cfg.NumHiddenLayers)
		}
		if allocs > limit2 {
			t.Errorf("batch %d, 2 threads: Encoder.Forward allocates %v times per call, want <= %v", batch, allocs, limit2)
		}
	}
}

// allocsPerRun is testing.AllocsPerRun without its switch to GOMAXPROCS 1.
func allocsPerRun(runs int, f func()) float64 {
	for i := 0; i < 5; i++ {
		f() // warm up the pools of every P and start the workers
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs)
}
