package tensor

import (
	"sync/atomic"
	"testing"
)

// countRunner counts how many times each item was run.
type countRunner struct{ hits []atomic.Int32 }

func (c *countRunner) Run(lo, hi int) {
	for i := lo; i < hi; i++ {
		c.hits[i].Add(1)
	}
}

// Every item of Parallel and ParallelRun runs exactly once, whatever the
// thread bound, the grain and nesting; ParallelRun with a long-lived body
// allocates nothing.
func TestParallelCoversEveryItemOnce(t *testing.T) {
	for _, th := range []Threads{0, 1, 2, 3} {
		for _, n := range []int{0, 1, 2, 7, 100, 1000} {
			for _, grain := range []int{0, 1, 3, 64} {
				c := &countRunner{hits: make([]atomic.Int32, n)}
				th.ParallelRun(n, grain, c)
				inner := &countRunner{hits: make([]atomic.Int32, n*3)}
				th.Parallel(n, grain, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						c.hits[i].Add(1)
						th.ParallelRun(3, 1, runnerFunc(func(a, b int) { // nested: runs inline or on an idle worker
							for j := a; j < b; j++ {
								inner.hits[i*3+j].Add(1)
							}
						}))
					}
				})
				for i := range c.hits {
					if got := c.hits[i].Load(); got != 2 {
						t.Fatalf("threads %d n %d grain %d: item %d ran %d times, want 2", th, n, grain, i, got)
					}
				}
				for i := range inner.hits {
					if got := inner.hits[i].Load(); got != 1 {
						t.Fatalf("threads %d n %d grain %d: nested item %d ran %d times, want 1", th, n, grain, i, got)
					}
				}
			}
		}
	}
	if raceEnabled {
		return // sync.Pool drops items under the race detector
	}
	c := &countRunner{hits: make([]atomic.Int32, 4096)}
	ParallelRun(len(c.hits), 64, c) // warm the pools
	if a := testing.AllocsPerRun(20, func() { ParallelRun(len(c.hits), 64, c) }); a != 0 {
		t.Errorf("ParallelRun allocated %v times per call", a)
	}
}

type runnerFunc func(lo, hi int)

func (f runnerFunc) Run(lo, hi int) { f(lo, hi) }
