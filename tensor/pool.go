package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The worker pool behind parallelFor. Workers are started lazily and never
// exit; an idle worker is parked on workCh. The pool has at most
// GOMAXPROCS-1 workers busy for one call, because the calling goroutine does
// its share of the work too. It is process-wide (like the Go runtime's own
// scheduler) because cores are: two models in one process share the cores.
type workerPool struct {
	mu      sync.Mutex   // serialises spawning
	started atomic.Int64 // workers spawned so far
	idle    atomic.Int64 // workers parked (or about to park) on workCh
	workCh  chan *parJob
}

var pool = &workerPool{workCh: make(chan *parJob)}

// parJob is one parallelFor call: chunks are claimed with next and counted
// off with done, so whoever is free takes the next chunk.
type parJob struct {
	fn      func(lo, hi int)
	n       int
	chunk   int
	nChunks int64
	next    atomic.Int64
	wg      sync.WaitGroup // one count per helper worker
}

// run claims chunks until none are left.
func (j *parJob) run() {
	for {
		c := j.next.Add(1) - 1
		if c >= j.nChunks {
			return
		}
		lo := int(c) * j.chunk
		j.fn(lo, min(lo+j.chunk, j.n))
	}
}

func (p *workerPool) worker() {
	for {
		p.idle.Add(1)
		j := <-p.workCh
		j.run()
		j.wg.Done()
	}
}

// ensure starts workers until there are at least want of them.
func (p *workerPool) ensure(want int) {
	if p.started.Load() >= int64(want) {
		return
	}
	p.mu.Lock()
	for p.started.Load() < int64(want) {
		p.started.Add(1)
		go p.worker()
	}
	p.mu.Unlock()
}

// reserveIdle takes one idle worker if there is one. A worker counted in idle
// is on its way to (or parked in) a receive on workCh, so a send after a
// successful reservation never blocks for long and can never deadlock.
func (p *workerPool) reserveIdle() bool {
	for {
		v := p.idle.Load()
		if v <= 0 {
			return false
		}
		if p.idle.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// parallelFor splits [0,n) into chunks of at least grain and runs fn on them,
// on the calling goroutine and on idle workers of the persistent pool,
// returning when all are done. The number of goroutines used follows
// runtime.GOMAXPROCS(0) at call time. Work is only handed to workers that are
// idle, so a call from inside fn (or from another goroutine while the pool is
// busy) runs on the caller inline instead of waiting: nesting never deadlocks.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	procs := runtime.GOMAXPROCS(0)
	maxChunks := n / grain // so every chunk has at least grain items
	if procs <= 1 || maxChunks <= 1 {
		fn(0, n)
		return
	}
	// A few chunks per thread let a fast thread take over a slow one's share
	// (the machine is shared, cores are not equally fast at every moment).
	nChunks := min(maxChunks, procs*4)
	chunk := (n + nChunks - 1) / nChunks
	nChunks = (n + chunk - 1) / chunk
	j := &parJob{fn: fn, n: n, chunk: chunk, nChunks: int64(nChunks)}
	pool.ensure(procs - 1)
	helpers := min(procs-1, nChunks-1)
	for h := 0; h < helpers; h++ {
		if !pool.reserveIdle() {
			break
		}
		j.wg.Add(1)
		pool.workCh <- j
	}
	j.run()
	j.wg.Wait()
}
