package serve

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// batcher gathers the inputs of concurrent embedding requests into padded
// batches: it waits at most `wait` after the first input for others, and
// closes a batch early when it reaches maxBatch inputs or maxTokens padded
// tokens (inputs × the longest). The queue is bounded in inputs; a request
// that does not fit is refused whole rather than waiting.
type batcher struct {
	emb       embedder
	maxBatch  int
	maxTokens int
	wait      time.Duration
	log       *slog.Logger
	m         *metrics

	queue    chan *embedItem
	reserved atomic.Int64 // inputs admitted and not yet taken by the gatherer
	maxQueue int64
	work     chan []*embedItem
	stop     chan struct{}
	wg       sync.WaitGroup
	closing  sync.Once
}

// embedItem is one input of a request.
type embedItem struct {
	job    *embedJob
	index  int
	text   string
	tokens int
}

// embedJob is one request's inputs; done closes when every vector is in or
// the first error is recorded.
type embedJob struct {
	ctx       context.Context
	out       [][]float32
	remaining atomic.Int64
	once      sync.Once
	err       error
	done      chan struct{}
}

func (j *embedJob) finish(err error) {
	j.once.Do(func() {
		j.err = err
		close(j.done)
	})
}

// finished reports whether the job needs no more work.
func (j *embedJob) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return j.ctx.Err() != nil
	}
}

func newBatcher(emb embedder, cfg Options, m *metrics, log *slog.Logger) *batcher {
	maxBatch := max(cfg.MaxBatchSize, 1)
	b := &batcher{
		emb:       emb,
		maxBatch:  maxBatch,
		maxTokens: max(cfg.MaxBatchTokens, 1),
		wait:      cfg.BatchWait,
		log:       log,
		m:         m,
		queue:     make(chan *embedItem, max(cfg.MaxQueue, 1)),
		maxQueue:  int64(max(cfg.MaxQueue, 1)),
		work:      make(chan []*embedItem),
		stop:      make(chan struct{}),
	}
	b.wg.Add(1)
	go b.gather()
	for range max(cfg.EmbedWorkers, 1) {
		b.wg.Add(1)
		go b.worker()
	}
	return b
}

// depth is the number of inputs waiting.
func (b *batcher) depth() int { return int(b.reserved.Load()) }

// close stops the goroutines; inputs still queued fail.
func (b *batcher) close() {
	b.closing.Do(func() { close(b.stop) })
	b.wg.Wait()
	for {
		select {
		case it := <-b.queue:
			it.job.finish(errShuttingDown)
		default:
			return
		}
	}
}

var errShuttingDown = newError(503, typeOverload, "shutting_down", "server is shutting down")

// embed queues texts (with their token counts) and waits for their vectors.
func (b *batcher) embed(ctx context.Context, texts []string, tokens []int) ([][]float32, error) {
	n := int64(len(texts))
	for {
		cur := b.reserved.Load()
		if cur+n > b.maxQueue {
			return nil, errBusy("embedding")
		}
		if b.reserved.CompareAndSwap(cur, cur+n) {
			break
		}
	}
	select {
	case <-b.stop:
		b.reserved.Add(-n)
		return nil, errShuttingDown
	default:
	}
	job := &embedJob{ctx: ctx, out: make([][]float32, len(texts)), done: make(chan struct{})}
	job.remaining.Store(n)
	for i, t := range texts {
		// Never blocks: the reservation above keeps len(queue) <= maxQueue.
		b.queue <- &embedItem{job: job, index: i, text: t, tokens: tokens[i]}
	}
	select {
	case <-job.done:
		if job.err != nil {
			return nil, job.err
		}
		return job.out, nil
	case <-ctx.Done():
		job.finish(ctx.Err()) // queued inputs of this job are skipped
		return nil, ctx.Err()
	}
}

// gather forms batches and hands them to the workers.
func (b *batcher) gather() {
	defer b.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var carry *embedItem // the input that did not fit the last batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-b.queue:
				b.reserved.Add(-1)
			case <-b.stop:
				return
			}
		}
		if first.job.finished() {
			continue
		}
		batch := []*embedItem{first}
		longest := first.tokens
		if b.maxBatch > 1 {
			timer.Reset(b.wait)
		gathering:
			for len(batch) < b.maxBatch {
				select {
				case it := <-b.queue:
					b.reserved.Add(-1)
					if it.job.finished() {
						continue
					}
					l := max(longest, it.tokens)
					if l*(len(batch)+1) > b.maxTokens {
						carry = it
						break gathering
					}
					batch = append(batch, it)
					longest = l
				case <-timer.C:
					break gathering
				case <-b.stop:
					timer.Stop()
					failAll(batch, errShuttingDown)
					if carry != nil {
						carry.job.finish(errShuttingDown)
					}
					return
				}
			}
			timer.Stop()
		}
		// Hand the batch over; while every worker is busy, keep filling it
		// (there is no point in waiting with a half-empty batch).
	handover:
		for {
			var more <-chan *embedItem
			if carry == nil && len(batch) < b.maxBatch {
				more = b.queue
			}
			select {
			case b.work <- batch:
				break handover
			case it := <-more:
				b.reserved.Add(-1)
				if it.job.finished() {
					continue
				}
				l := max(longest, it.tokens)
				if l*(len(batch)+1) > b.maxTokens {
					carry = it
					continue
				}
				batch = append(batch, it)
				longest = l
			case <-b.stop:
				failAll(batch, errShuttingDown)
				if carry != nil {
					carry.job.finish(errShuttingDown)
				}
				return
			}
		}
	}
}

func failAll(batch []*embedItem, err error) {
	for _, it := range batch {
		it.job.finish(err)
	}
}

func (b *batcher) worker() {
	defer b.wg.Done()
	for {
		select {
		case batch := <-b.work:
			b.run(batch)
		case <-b.stop:
			return
		}
	}
}

// run embeds one batch. Its context ends when every request in it has ended,
// so one impatient client does not cancel the others' work.
func (b *batcher) run(batch []*embedItem) {
	live := batch[:0]
	for _, it := range batch {
		if !it.job.finished() {
			live = append(live, it)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := map[*embedJob]bool{}
	for _, it := range live {
		jobs[it.job] = true
	}
	var alive atomic.Int64
	alive.Store(int64(len(jobs)))
	for j := range jobs {
		stop := context.AfterFunc(j.ctx, func() {
			if alive.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}

	texts := make([]string, len(live))
	longest := 0
	for i, it := range live {
		texts[i] = it.text
		longest = max(longest, it.tokens)
	}
	b.m.observeBatch(len(live), longest*len(live))
	vecs, err := b.safeEmbed(ctx, texts)
	if err == nil && len(vecs) != len(live) {
		err = fmt.Errorf("embedder returned %d vectors for %d inputs", len(vecs), len(live))
	}
	for i, it := range live {
		if err != nil {
			it.job.finish(err)
			continue
		}
		it.job.out[it.index] = vecs[i]
		b.m.embedTokens.Add(uint64(it.tokens))
		if it.job.remaining.Add(-1) == 0 {
			it.job.finish(nil)
		}
	}
}

// safeEmbed turns a panic in the model into an error for the batch, so the
// server goes on.
func (b *batcher) safeEmbed(ctx context.Context, texts []string) (vecs [][]float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("panic in embedding batch", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic in embedding batch: %v", p)
		}
	}()
	return b.emb.Embed(ctx, texts)
}

// gate bounds how many requests use the model at once (completions and the
// heads) and how many may wait for a turn.
type gate struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
}

func newGate(concurrent, waiting int) *gate {
	return &gate{slots: make(chan struct{}, max(concurrent, 1)), maxWaiting: int64(max(waiting, 0))}
}

func (g *gate) depth() int { return int(g.waiting.Load()) }

// acquire takes a slot, waiting while ctx lasts if the waiting room has space.
func (g *gate) acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		return nil, errBusy("model")
	}
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
