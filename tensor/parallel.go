package tensor

import "sync"

// Parallel splits [0, n) into chunks of at least grain items and runs fn on
// them, on the calling goroutine and on idle workers of the package's worker
// pool (the one the products use), on up to th goroutines in all (zero:
// GOMAXPROCS), returning when every chunk is done. With one goroutine, or
// when n/grain < 2, fn(0, n) runs on the caller. A call from inside fn, or
// while the pool is busy, runs inline rather than waiting, so nesting never
// deadlocks. fn must be safe to run on several goroutines at once over
// disjoint ranges.
//
// A closure that captures variables is allocated on the heap at its call
// site; ParallelRun is the allocation-free form for hot paths.
func (th Threads) Parallel(n, grain int, fn func(lo, hi int)) {
	parallelFor(th.Count(), n, grain, fn)
}

// Parallel is Threads(0).Parallel: up to GOMAXPROCS goroutines.
func Parallel(n, grain int, fn func(lo, hi int)) { Threads(0).Parallel(n, grain, fn) }

// Runner is the body of a parallel loop: Run does items [lo, hi).
type Runner interface {
	Run(lo, hi int)
}

// runnerTask adapts a Runner to the pool's task type; it is pooled so that
// handing it to the workers allocates nothing.
type runnerTask struct{ r Runner }

func (t *runnerTask) run(lo, hi int) { t.r.Run(lo, hi) }

var runnerTasks = sync.Pool{New: func() any { return new(runnerTask) }}

// ParallelRun is Parallel with the body as a Runner. It allocates nothing in
// the steady state when r is a pointer to long-lived (or pooled) state:
// decoding steps use it to split their small loops over the pool.
func (th Threads) ParallelRun(n, grain int, r Runner) {
	if n <= 0 {
		return
	}
	if n < 2*max(grain, 1) {
		r.Run(0, n) // one chunk: no hand-off
		return
	}
	t := runnerTasks.Get().(*runnerTask)
	t.r = r
	parallelRun(th.Count(), n, grain, t)
	t.r = nil
	runnerTasks.Put(t)
}

// ParallelRun is Threads(0).ParallelRun: up to GOMAXPROCS goroutines.
func ParallelRun(n, grain int, r Runner) { Threads(0).ParallelRun(n, grain, r) }
