package tensor

import (
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool behind parallelFor. Workers are started lazily and never
// exit; an idle worker polls workCh for a while (spinFor), then parks on it. The pool has at most
// GOMAXPROCS-1 workers busy for one call, because the calling goroutine does
// its share of the work too. It is process-wide (like the Go runtime's own
// scheduler) because cores are: two models in one process share the cores.
type workerPool struct {
	mu      sync.Mutex   // serialises spawning
	splits  atomic.Int64 // calls that split their work (ParallelCalls)
	started atomic.Int64 // workers spawned so far
	idle    atomic.Int64 // workers waiting (polling or parked) on workCh
	workCh  chan *parJob
}

// workCh is buffered so that handing a job to a polling worker does not
// block the caller: reserveIdle keeps the jobs in flight to the number of
// waiting workers (and a send that finds the buffer full is taken by one of
// them soon).
var pool = &workerPool{workCh: make(chan *parJob, 1024)}

// parTask is the body of a parallel loop: run does items [lo, hi). A caller
// that must not allocate passes a pointer to a pooled or long-lived struct
// (parallelRun); a closure (parallelFor) escapes to the heap because the
// workers see it.
type parTask interface{ run(lo, hi int) }

// funcTask adapts a closure to parTask; a func value converts to an
// interface without allocating.
type funcTask func(lo, hi int)

func (f funcTask) run(lo, hi int) { f(lo, hi) }

// parJob is one parallel loop. Whoever is free claims the next items with
// a compare-and-swap on next, in chunks that shrink as the loop drains
// (guided scheduling): a chunk is the items left divided by div, and at
// least grain. Big first chunks keep the per-chunk costs few (an unpacked
// product packs its first panel cold); small last ones let the threads
// finish together. Jobs are recycled through jobPool.
type parJob struct {
	task  parTask
	n     int64
	grain int64
	div   int64
	next  atomic.Int64
	left  atomic.Int64   // helpers still running (see parallelRun)
	wg    sync.WaitGroup // one count per helper worker
}

// run claims chunks until none are left.
func (j *parJob) run() {
	for {
		lo := j.next.Load()
		if lo >= j.n {
			return
		}
		hi := min(j.n, lo+max(j.grain, (j.n-lo+j.div-1)/j.div))
		if j.next.CompareAndSwap(lo, hi) {
			j.task.run(int(lo), int(hi))
		}
	}
}

func (p *workerPool) worker() {
	for {
		p.idle.Add(1)
		j := p.receive()
		j.run()
		j.left.Add(-1)
		j.wg.Done()
	}
}

// spinFor is how long an idle worker keeps polling for work before it
// parks. Waking a parked worker goes through the OS (a futex wake and a
// reschedule), which at two threads cost a short GEMV a large share of its
// time (bench/README.md); a model's forward pass hands out a job every few
// µs to ms, so a worker that polls a while is almost always there.
const spinFor = 200 * time.Microsecond

// spinPolls bounds the caller's wait for its helpers before it parks: a few
// hundred µs of atomic loads.
const spinPolls = 1 << 18

// receive waits for the next job: polling for up to spinFor, then parked.
// The polling does not yield: a worker that went through the scheduler would
// come back on whichever processor was free, and its chunks would then miss
// the sync.Pool caches (per processor) that the scratch buffers live in
// (yielding between polls made the allocation tests fail under load).
// Another goroutine waits at most spinFor for this processor: many
// goroutines sharing a model on 2 threads lose some throughput to it, while
// a single caller gains more (bench minilm-l6/8xb1s128 and bench/README.md
// have the figures and the variants measured).
func (p *workerPool) receive() *parJob {
	var deadline time.Time
	for i := 0; ; i++ {
		select {
		case j := <-p.workCh:
			return j
		default:
		}
		if i%16 == 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(spinFor)
			} else if now.After(deadline) {
				return <-p.workCh
			}
		}
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

var jobPool = sync.Pool{New: func() any { return new(parJob) }}

// parallelFor splits [0,n) into chunks of at least grain and runs fn on them,
// on the calling goroutine and on idle workers of the persistent pool,
// returning when all are done, on at most procs goroutines (see
// Threads.procs: GOMAXPROCS at call time unless a caller caps it). Work is only handed to workers that are
// idle, so a call from inside fn (or from another goroutine while the pool is
// busy) runs on the caller inline instead of waiting: nesting never deadlocks.
// The closure fn is heap-allocated at the call site; parallelRun is the
// allocation-free form.
func parallelFor(procs, n, grain int, fn func(lo, hi int)) {
	parallelRun(procs, n, grain, funcTask(fn))
}

// parallelRun is parallelFor with the body as a parTask. It allocates
// nothing in the steady state (jobs are pooled), so a caller that keeps its
// task in a sync.Pool or in long-lived state does not allocate either.
func parallelRun(procs, n, grain int, t parTask) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	maxChunks := n / grain // so every chunk has at least grain items
	if procs <= 1 || maxChunks <= 1 {
		t.run(0, n)
		return
	}
	pool.splits.Add(1)
	// Chunks of half a thread's share of what is left: a fast thread takes
	// over a slow one's share (the machine is shared, cores are not equally
	// fast at every moment) and the last chunks are small.
	j := jobPool.Get().(*parJob)
	j.task, j.n, j.grain, j.div = t, int64(n), int64(grain), int64(2*procs)
	j.next.Store(0)
	pool.ensure(procs - 1)
	helpers := min(procs-1, maxChunks-1)
	for h := 0; h < helpers; h++ {
		if !pool.reserveIdle() {
			break
		}
		j.wg.Add(1)
		j.left.Add(1)
		pool.workCh <- j
	}
	j.run()
	// The helpers are on their last chunks: poll for them a while before
	// parking in Wait. Polling without yielding keeps this goroutine on its
	// processor; parked, it is woken on the helper's, where it finds the
	// sync.Pool caches of the other and allocates.
	for i := 0; j.left.Load() > 0 && i < spinPolls; i++ {
	}
	// Every helper has called Done after its last touch of j, so j can be
	// reused once Wait returns.
	j.wg.Wait()
	j.task = nil
	jobPool.Put(j)
}

// ParallelCalls is the number of calls, since the process started, that
// split their work for more than one goroutine (whether or not a worker was
// free to take a share). It only grows; tests and monitoring read it to see
// that a call bounded to one thread (Threads(1)) never split.
func ParallelCalls() int64 { return pool.splits.Load() }
