package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/embrace-go/embrace/bench/internal/ceil"
	"github.com/embrace-go/embrace/tensor"
)

// The kernel benchmarks: machine ceilings, then matrix products through the
// public tensor API.

func init() {
	registerCeilings()
	for _, s := range [][3]int{{128, 768, 3072}, {128, 3072, 768}, {128, 768, 768}, {512, 768, 768}} {
		registerSgemm(s[0], s[1], s[2])
		registerSgemmPacked(s[0], s[1], s[2])
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		registerGemv(dt, 768, 3072)
		registerGemvPacked(dt, 768, 3072)
	}
}

// onThreads runs fn(i) on GOMAXPROCS goroutines locked to their threads and
// returns the wall time from the first start to the last end.
func onThreads(fn func(i int)) time.Duration {
	n := runtime.GOMAXPROCS(0)
	var ready, wg sync.WaitGroup
	startCh := make(chan struct{})
	ready.Add(n)
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready.Done()
			<-startCh
			fn(i)
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(startCh)
	wg.Wait()
	return time.Since(t0)
}

func registerCeilings() {
	var sink float32
	var fmaIters int
	b := register("peak/fma-f32", "GFLOP/s", func() (func() error, func(), error) {
		// About 50 ms per op on one core.
		fmaIters = 1 << 16
		for {
			t0 := time.Now()
			sink += ceil.FMALoop(fmaIters)
			if time.Since(t0) > 5*time.Millisecond {
				break
			}
			fmaIters *= 2
		}
		fmaIters *= 10
		return func() error {
			onThreads(func(int) { sink += ceil.FMALoop(fmaIters) })
			return nil
		}, nil, nil
	}, func(sec float64) float64 {
		return float64(fmaIters) * ceil.FMAFlopsPerIter() * float64(runtime.GOMAXPROCS(0)) / sec / 1e9
	})
	b.best = true

	const membwBytes = 1 << 30
	var buf []float32
	b = register("membw/read", "GB/s", func() (func() error, func(), error) {
		// Allocated as the library allocates large tensors (huge pages
		// advised), as the C loop beside it does.
		buf = tensor.Zeros(membwBytes / 4).Float32s()
		for i := range buf {
			buf[i] = 1
		}
		return func() error {
				n := runtime.GOMAXPROCS(0)
				per := len(buf) / n &^ 63
				sums := make([]float32, n)
				onThreads(func(i int) { sums[i] = ceil.ReadSum(buf[i*per : (i+1)*per]) })
				for _, s := range sums {
					sink += s
				}
				return nil
			}, func() {
				buf = nil
			}, nil
	}, func(sec float64) float64 {
		n := runtime.GOMAXPROCS(0)
		per := membwBytes / 4 / n &^ 63
		return float64(per*n*4) / sec / 1e9
	})
	b.best = true
}

// randTensor returns a seeded random [rows, cols] tensor of dtype dt.
func randTensor(r *rand.Rand, dt tensor.DType, rows, cols int) *tensor.Tensor {
	f := make([]float32, rows*cols)
	for i := range f {
		f[i] = (r.Float32()*2 - 1) * 0.05
	}
	switch dt {
	case tensor.F16:
		u := make([]uint16, len(f))
		tensor.F32ToF16(u, f)
		return tensor.FromUint16(dt, u, rows, cols)
	case tensor.BF16:
		u := make([]uint16, len(f))
		tensor.F32ToBF16(u, f)
		return tensor.FromUint16(dt, u, rows, cols)
	}
	return tensor.FromFloat32(f, rows, cols)
}

// registerSgemm adds sgemm/MxKxN: C[M,N] = A[M,K]·Wᵀ with W a Linear weight
// [N,K], through tensor.MatMulT.
func registerSgemm(m, k, n int) {
	flops := 2 * float64(m) * float64(k) * float64(n)
	b := register(fmt.Sprintf("sgemm/%dx%dx%d", m, k, n), "GFLOP/s", func() (func() error, func(), error) {
		r := rand.New(rand.NewPCG(uint64(m), uint64(n*k)))
		x := randTensor(r, tensor.F32, m, k)
		w := randTensor(r, tensor.F32, n, k)
		dst := tensor.Zeros(m, n)
		return func() error { tensor.MatMulT(dst, x, w); return nil }, nil, nil
	}, func(sec float64) float64 { return flops / sec / 1e9 })
	b.gflops = b.value
}

// registerGemv adds gemv/DT/KxN: y[1,N] = x[1,K]·Wᵀ with W [N,K] of dtype dt.
// The weight rotates over copies filling at least 512 MiB, so every op reads
// it from memory, not from cache.
func registerGemv(dt tensor.DType, k, n int) {
	wBytes := k * n * dt.Size()
	name := map[tensor.DType]string{tensor.F32: "f32", tensor.F16: "f16", tensor.BF16: "bf16"}[dt]
	b := register(fmt.Sprintf("gemv/%s/%dx%d", name, k, n), "GB/s", func() (func() error, func(), error) {
		r := rand.New(rand.NewPCG(uint64(k), uint64(n)))
		copies := (512<<20 + wBytes - 1) / wBytes
		ws := make([]*tensor.Tensor, copies)
		ws[0] = randTensor(r, dt, n, k)
		for i := 1; i < copies; i++ {
			ws[i] = ws[0].Clone()
		}
		x := randTensor(r, tensor.F32, 1, k)
		y := tensor.Zeros(1, n)
		next := 0
		return func() error {
			tensor.MatMulT(y, x, ws[next])
			next = (next + 1) % len(ws)
			return nil
		}, func() { clear(ws) }, nil
	}, func(sec float64) float64 { return float64(wBytes) / sec / 1e9 })
	b.gflops = func(sec float64) float64 { return 2 * float64(k) * float64(n) / sec / 1e9 }
}

// registerSgemmPacked adds sgemm-packed/MxKxN: sgemm with the weight packed
// once by tensor.PackWeight (outside the timing), through tensor.MatMulTPacked.
func registerSgemmPacked(m, k, n int) {
	flops := 2 * float64(m) * float64(k) * float64(n)
	b := register(fmt.Sprintf("sgemm-packed/%dx%dx%d", m, k, n), "GFLOP/s", func() (func() error, func(), error) {
		r := rand.New(rand.NewPCG(uint64(m), uint64(n*k)))
		x := randTensor(r, tensor.F32, m, k)
		pw, err := tensor.PackWeight(randTensor(r, tensor.F32, n, k))
		if err != nil {
			return nil, nil, err
		}
		dst := tensor.Zeros(m, n)
		return func() error { tensor.MatMulTPacked(dst, x, pw); return nil }, nil, nil
	}, func(sec float64) float64 { return flops / sec / 1e9 })
	b.gflops = b.value
}

// registerGemvPacked adds gemv-packed/DT/KxN: gemv/DT against weights packed
// by tensor.PackWeight (kept in DT), rotating over ≥ 512 MiB of packed copies.
// This is the decode path of the models, which pack their weights at load.
func registerGemvPacked(dt tensor.DType, k, n int) {
	wBytes := k * n * dt.Size()
	name := map[tensor.DType]string{tensor.F32: "f32", tensor.F16: "f16", tensor.BF16: "bf16"}[dt]
	b := register(fmt.Sprintf("gemv-packed/%s/%dx%d", name, k, n), "GB/s", func() (func() error, func(), error) {
		r := rand.New(rand.NewPCG(uint64(k), uint64(n)))
		copies := (512<<20 + wBytes - 1) / wBytes
		w := randTensor(r, dt, n, k)
		ws := make([]*tensor.PackedWeight, copies)
		for i := range ws {
			pw, err := tensor.PackWeight(w)
			if err != nil {
				return nil, nil, err
			}
			ws[i] = pw
		}
		x := randTensor(r, tensor.F32, 1, k)
		y := tensor.Zeros(1, n)
		next := 0
		return func() error {
			tensor.MatMulTPacked(y, x, ws[next])
			next = (next + 1) % len(ws)
			return nil
		}, func() { clear(ws) }, nil
	}, func(sec float64) float64 { return float64(wBytes) / sec / 1e9 })
	b.gflops = func(sec float64) float64 { return 2 * float64(k) * float64(n) / sec / 1e9 }
}
