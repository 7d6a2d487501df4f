package testmodel

import (
	"runtime"
	"testing"

	"github.com/embrace-go/embrace/tensor"
)

// CheckThreads checks that a model honours arch.LoadOptions.Threads. run
// loads the model with the given thread count and makes its calls (with
// inputs big enough to split: several heads, tens of positions). On two
// processors, a model loaded with Threads 1 must not split any call over
// tensor's worker pool, while one loaded with Threads 0 must (so that a
// layer that ignores the option is caught, and the check can fail).
func CheckThreads(t *testing.T, run func(t *testing.T, threads int)) {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	before := tensor.ParallelCalls()
	run(t, 1)
	if n := tensor.ParallelCalls() - before; n != 0 {
		t.Errorf("loaded with Threads 1: %d tensor calls split their work over the pool, want 0", n)
	}
	before = tensor.ParallelCalls()
	run(t, 0)
	if tensor.ParallelCalls() == before {
		t.Errorf("loaded with Threads 0 on 2 processors: no tensor call split its work, so the Threads 1 check proves nothing (make the inputs larger)")
	}
}
