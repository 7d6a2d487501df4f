package arch

import (
	"fmt"
	"sync"
)

// Guard makes Close safe for a model whose weights alias memory that Close
// unmaps: calls hold the guard while they run, Close waits for them, and
// calls after Close get ErrClosed instead of touching unmapped memory. The
// zero value is ready to use.
type Guard struct {
	mu     sync.RWMutex
	closed bool
}

// Acquire enters a call; it fails with an error wrapping ErrClosed after
// Close. Every successful Acquire must be followed by Release. A call must
// not Acquire twice (a Close waiting in between would deadlock it).
func (g *Guard) Acquire(who string) error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return fmt.Errorf("%s: %w", who, ErrClosed)
	}
	return nil
}

// Release leaves a call.
func (g *Guard) Release() { g.mu.RUnlock() }

// Close waits for the calls in flight, marks the guard closed and runs
// release once; later Closes return nil.
func (g *Guard) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	if release == nil {
		return nil
	}
	return release()
}
