// Command bench measures Embrace's kernels and models on this machine.
//
//	go run ./bench [-threads N] [-json] [-time D] [REGEXP...]
//
// It runs the benchmarks whose names match any REGEXP (all by default) with N
// threads and prints a table, or one JSON object per line with -json. See
// README.md for the list and for how the figures are measured.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"time"
)

func main() {
	threads := flag.Int("threads", runtime.NumCPU(), "threads: sets GOMAXPROCS, which the library's worker pool follows")
	asJSON := flag.Bool("json", false, "print one JSON object per line")
	budget := flag.Duration("time", time.Second, "timed duration per benchmark (after warm-up)")
	list := flag.Bool("list", false, "list the benchmark names and exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the timed runs to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: bench [-threads N] [-json] [-time D] [REGEXP...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *threads < 1 {
		fmt.Fprintln(os.Stderr, "bench: -threads must be at least 1")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)
	bs, err := selectBenchmarks(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *list {
		for _, b := range bs {
			fmt.Printf("%-28s %s\n", b.name, b.unit)
		}
		return
	}
	if len(bs) == 0 {
		fmt.Fprintln(os.Stderr, "bench: no benchmark matches", flag.Args())
		os.Exit(2)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	failed := false
	if !*asJSON {
		fmt.Printf("# threads=%d GOMAXPROCS=%d %s/%s\n", *threads, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
		fmt.Printf("%-28s %12s  %-9s %10s %8s\n", "name", "value", "unit", "ms/op", "allocs")
	}
	for _, b := range bs {
		res, err := measure(b, *budget)
		switch {
		case errors.Is(err, errSkipped):
			fmt.Fprintf(os.Stderr, "%s: %v\n", b.name, err)
			continue
		case err != nil:
			fmt.Fprintf(os.Stderr, "%s: FAILED: %v\n", b.name, err)
			failed = true
			continue
		}
		res.Threads = *threads
		if *asJSON {
			writeJSON(os.Stdout, res)
		} else {
			fmt.Printf("%-28s %12.4g  %-9s %10.4g %8.4g\n", res.Name, res.Value, res.Unit, res.MS, res.AllocsPerOp)
		}
	}
	if failed {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// result is one output line.
type result struct {
	Name        string   `json:"name"`
	Threads     int      `json:"threads"`
	Value       float64  `json:"value"`
	Unit        string   `json:"unit"`
	MS          float64  `json:"ms"`
	AllocsPerOp float64  `json:"allocs_per_op"`
	BytesPerOp  float64  `json:"bytes_per_op"`
	GFlops      *float64 `json:"gflops,omitempty"`
}

func writeJSON(w io.Writer, r result) {
	b, _ := json.Marshal(r) // a flat struct of numbers and strings cannot fail
	fmt.Fprintf(w, "%s\n", b)
}

// measure runs one benchmark as BENCH.md says: warm up for at least one op
// and 10% of the budget, then time single ops until the budget has passed
// and at least 5 ran; the figure comes from the median op (best for
// ceilings).
func measure(b *benchmark, budget time.Duration) (result, error) {
	op, cleanup, err := b.setup()
	if cleanup != nil {
		defer func() {
			cleanup()
			runtime.GC()
			debug.FreeOSMemory() // give big weight copies back before the next entry
		}()
	}
	if err != nil {
		return result{}, err
	}
	warm := time.Now()
	for first := true; first || time.Since(warm) < budget/10; first = false {
		if err := op(); err != nil {
			return result{}, err
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var times []float64
	start := time.Now()
	for len(times) < 5 || time.Since(start) < budget {
		t0 := time.Now()
		if err := op(); err != nil {
			return result{}, err
		}
		times = append(times, time.Since(t0).Seconds())
	}
	runtime.ReadMemStats(&ms1)
	slices.Sort(times)
	sec := times[len(times)/2]
	if len(times)%2 == 0 {
		sec = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	valSec := sec
	if b.best {
		valSec = times[0]
	}
	n := float64(len(times))
	r := result{
		Name:        b.name,
		Value:       b.value(valSec),
		Unit:        b.unit,
		MS:          sec * 1e3,
		AllocsPerOp: float64(ms1.Mallocs-ms0.Mallocs) / n,
		BytesPerOp:  float64(ms1.TotalAlloc-ms0.TotalAlloc) / n,
	}
	if b.gflops != nil {
		g := b.gflops(valSec)
		r.GFlops = &g
	}
	return r, nil
}
