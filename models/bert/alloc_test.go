package bert

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/embrace-go/embrace/internal/encodertest"
	"github.com/embrace-go/embrace/models/arch"
)

// A stream of same-shaped Forward calls allocates its outputs and nothing
// per layer: the scratch is recycled.
func TestForwardAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m, err := Load(filepath.Join(encodertest.FixturesDir(t), "models", "bert"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for _, batch := range []int{1, 3} {
		const seq = 16
		in := &arch.EncoderInput{Batch: batch, Seq: seq, InputIDs: make([]int, batch*seq), AttentionMask: make([]int, batch*seq)}
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
		// little bookkeeping; nothing per layer.
		const limit = 8
		if allocs := testing.AllocsPerRun(10, forward); allocs > limit {
			t.Errorf("batch %d: Encoder.Forward allocates %v times per call, want <= %v", batch, allocs, limit)
		}
		// On two threads the products, attention and the row operations go
		// through the worker pool with pooled tasks. One more is allowed
		// for a garbage collection emptying the pools.
		prev := runtime.GOMAXPROCS(2)
		allocs := allocsPerRun(20, forward)
		runtime.GOMAXPROCS(prev)
		const limit2 = limit + 1
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
