package modernbert

import (
	"context"
	"runtime"
	"testing"

	"github.com/embrace-go/embrace/models/arch"
)

// A stream of same-shaped Forward calls allocates its outputs and nothing
// per layer but the helper goroutines of attention: the scratch is
// recycled.
func TestForwardAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m, err := Load(tinyCheckpoint(t, "ModernBertModel", variants[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	in := &arch.EncoderInput{Batch: 2, Seq: 30, InputIDs: make([]int, 60), AttentionMask: make([]int, 60)}
	for i := range in.InputIDs {
		in.InputIDs[i], in.AttentionMask[i] = 1+i%20, 1
	}
	in.AttentionMask[59] = 0
	forward := func() {
		if _, _, err := m.Encoder.Forward(context.Background(), in, false); err != nil {
			t.Fatal(err)
		}
	}
	// The last hidden state (a tensor and its [B, S, D] view) and a little
	// bookkeeping.
	const limit = 8
	if allocs := testing.AllocsPerRun(10, forward); allocs > limit {
		t.Errorf("Encoder.Forward allocates %v times per call, want <= %v", allocs, limit)
	}
	// On two threads each layer's attention starts one helper goroutine
	// (one allocation); one more is allowed for a garbage collection
	// emptying the pools.
	prev := runtime.GOMAXPROCS(2)
	allocs := allocsPerRun(20, forward)
	runtime.GOMAXPROCS(prev)
	if limit2 := float64(limit + tinyLayers + 1); allocs > limit2 {
		t.Errorf("2 threads: Encoder.Forward allocates %v times per call, want <= %v", allocs, limit2)
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
