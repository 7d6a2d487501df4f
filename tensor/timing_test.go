package tensor

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTiming is a measuring aid for a shared, noisy machine, run only with
// EMBRACE_TIMING=1: for each case it prints the fastest wall time and the
// fastest thread CPU time of one op over many (time slices lost to other
// processes inflate wall time but not thread CPU time). Single-threaded.
func TestTiming(t *testing.T) {
	if os.Getenv("EMBRACE_TIMING") == "" {
		t.Skip("set EMBRACE_TIMING=1 to print kernel timings")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := rand.New(rand.NewPCG(1, 1))
	cpuNow := func() time.Duration {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
		return time.Duration(ts.Nano())
	}
	measure := func(name string, flops float64, op func()) {
		op()
		bestW, bestC := time.Hour, time.Hour
		for i := 0; i < 40; i++ {
			w0, c0 := time.Now(), cpuNow()
			op()
			bestW = min(bestW, time.Since(w0))
			bestC = min(bestC, cpuNow()-c0)
		}
		fmt.Printf("%-36s wall %9.3f ms  cpu %9.3f ms", name, bestW.Seconds()*1e3, bestC.Seconds()*1e3)
		if flops > 0 {
			fmt.Printf("  %6.1f GFLOP/s (cpu)", flops/bestC.Seconds()/1e9)
		}
		fmt.Println()
	}
	for _, s := range [][3]int{{128, 768, 3072}, {128, 3072, 768}, {128, 768, 768}, {512, 768, 768}} {
		m, k, n := s[0], s[1], s[2]
		tc := newGemmCase(r, m, n, k, 0, true, false, F32)
		bm := bMat{f32: tc.bF32, ld: k, trans: true}
		c := make([]float32, m*n)
		measure(fmt.Sprintf("sgemm %s %dx%dx%d", gemmDefault.name, m, k, n), 2*float64(m*n*k), func() {
			gemmRun(gemmDefault, m, n, k, tc.a, k, bm, c, n, false, 1)
		})
		pw, _ := PackWeight(FromFloat32(tc.bF32, n, k))
		measure(fmt.Sprintf("sgemm packed %dx%dx%d", m, k, n), 2*float64(m*n*k), func() {
			gemmPacked(m, tc.a, k, pw, c, n, 1)
		})
	}
	x := randSlice(r, 128*3072)
	d := make([]float32, len(x))
	for act := GELU; act <= Tanh; act++ {
		measure(fmt.Sprintf("act %d 128x3072", act), 0, func() {
			copy(d, x)
			opsDefault.act(act, d)
		})
	}
}
