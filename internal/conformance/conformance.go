// Package conformance holds Embrace to the reference fixtures (see
// CONFORMANCE.md in the shared folder): it finds every fixture folder under
// the given paths and checks the project's public API against it. It is the
// body of examples/conformance and of "embrace conformance":
//
//	go run ./examples/conformance [-v] PATH...
//	embrace conformance [-v] PATH...
//
// A folder holding cases.jsonl is a tokenizer fixture (checkTokenizer in
// tokenizer.go); one holding reference.json is a model fixture, loaded as a
// user loads it (models.Load picks the architecture) and checked through the
// capabilities the model has: a causal LM by checkDecoder in decoder.go, an
// encoder by checkEncoder in encoder.go. A check function records
// what it verified with r.Pass / r.Compare and what went wrong with r.Fail; it
// may return early after a Fail. It never needs to recover from panics: run
// does that per fixture.
//
// One line is printed per fixture (PASS or FAIL with the reason and the worst
// numeric error), then "N passed, M failed". The exit status is 0 only when
// nothing failed.
package conformance

import (
	"flag"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
)

// Options choose how fixtures are run.
type Options struct {
	// Verbose prints one line per check.
	Verbose bool
	// Load are the model load options. With reduced precision (Quantize or
	// Compute set) the run is an accuracy report: each model fixture's line
	// gives the largest errors and the smallest cosine against the
	// reference instead of PASS or FAIL on the float32 tolerances.
	Load arch.LoadOptions
}

// accuracy reports whether the run measures a reduced precision.
func (o Options) accuracy() bool { return o.Load != arch.LoadOptions{} }

// Flags registers -v, -quantize and -compute on fs; the returned function
// gives the options after parsing.
func Flags(fs *flag.FlagSet) func() (Options, error) {
	verbose := fs.Bool("v", false, "print one line per check")
	quantize := fs.String("quantize", "", "load models with q8 weights and report the accuracy of each fixture instead of pass/fail")
	compute := fs.String("compute", "", "load models with bf16 compute and report the accuracy of each fixture instead of pass/fail")
	return func() (Options, error) {
		o := Options{Verbose: *verbose, Load: arch.LoadOptions{Quantize: arch.Quantization(*quantize), Compute: arch.Compute(*compute)}}
		return o, o.Load.Validate()
	}
}

// Main is the conformance command: args are "[-v] [-quantize q8] [-compute
// bf16] PATH...". It returns the exit status: 0 when nothing failed, 1 when
// a fixture failed, 2 for a bad command line.
func Main(args []string) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	opts := Flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: conformance [-v] [-quantize q8] [-compute bf16] PATH...\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	o, err := opts()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 2
	}
	if _, failed := RunPaths(fs.Args(), o); failed > 0 {
		return 1
	}
	return 0
}

// RunPaths checks every fixture folder at or under the paths, printing one
// line per fixture (PASS or FAIL) and then "N passed, M failed" to standard
// output; verbose adds one line per check. A path without any fixture
// counts as a failure.
func RunPaths(paths []string, o Options) (passed, failed int) {
	for _, root := range paths {
		dirs, err := findFixtures(root)
		if err == nil && len(dirs) == 0 {
			err = fmt.Errorf("no fixture (cases.jsonl or reference.json) found")
		}
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", root, err)
			failed++
			continue
		}
		for _, d := range dirs {
			r := run(d, o)
			fmt.Println(r.Line())
			if r.Failed() {
				failed++
			} else {
				passed++
			}
		}
	}
	if o.accuracy() {
		fmt.Printf("%d fixtures reported (quantize %q, compute %q), %d failed to run\n", passed, o.Load.Quantize, o.Load.Compute, failed)
	} else {
		fmt.Printf("%d passed, %d failed\n", passed, failed)
	}
	return passed, failed
}

// findFixtures returns every folder at or under root that holds cases.jsonl
// or reference.json, sorted.
func findFixtures(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch d.Name() {
		case "cases.jsonl", "reference.json":
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	sort.Strings(dirs)
	// A folder holding both files appears twice.
	out := dirs[:0]
	for i, d := range dirs {
		if i == 0 || dirs[i-1] != d {
			out = append(out, d)
		}
	}
	return out, err
}

// run checks one fixture folder, turning a panic into a FAIL.
func run(dir string, o Options) (r *Report) {
	r = &Report{Dir: dir, Verbose: o.Verbose, opts: o}
	defer func() {
		if p := recover(); p != nil {
			r.Fail("panic: %v\n%s", p, debug.Stack())
		}
	}()
	switch {
	case exists(filepath.Join(dir, "cases.jsonl")):
		r.opts.Load = arch.LoadOptions{} // tokenizers have no precision
		checkTokenizer(dir, r)
	case exists(filepath.Join(dir, "reference.json")):
		checkModel(dir, r)
	}
	return r
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Report collects the outcome of one fixture's checks.
type Report struct {
	Dir     string
	Verbose bool

	checks   []string // what passed
	failures []string // what failed
	worst    string   // the numeric comparison closest to (or furthest over) its tolerance
	worstR   float64  // that comparison's error / tolerance

	opts      Options
	minCos    float64 // accuracy mode: the smallest cosine of a compared tensor
	minCosOf  string
	maxAbs    float64 // accuracy mode: the largest |got - ref|
	maxAbsOf  string
	outside   []string // accuracy mode: checks outside the float32 tolerances
	loadError bool
}

// loadOptions are the model load options of the run.
func (r *Report) loadOptions() *arch.LoadOptions { return &r.opts.Load }

// options are the pipeline options of the run.
func (r *Report) options() *pipeline.Options { return &pipeline.Options{Load: r.opts.Load} }

// Pass records a check that succeeded.
func (r *Report) Pass(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.checks = append(r.checks, msg)
	if r.Verbose {
		fmt.Printf("  ok   %s: %s\n", r.Dir, msg)
	}
}

// Fail records a check that failed.
func (r *Report) Fail(format string, args ...any) {
	if r.opts.accuracy() && !r.loadError {
		r.outside = append(r.outside, fmt.Sprintf(format, args...))
		if r.Verbose {
			fmt.Printf("  outside %s: %s\n", r.Dir, fmt.Sprintf(format, args...))
		}
		return
	}
	msg := fmt.Sprintf(format, args...)
	r.failures = append(r.failures, msg)
	if r.Verbose {
		fmt.Printf("  FAIL %s: %s\n", r.Dir, msg)
	}
}

// Check records a Pass when err is nil and a Fail otherwise; it reports
// whether err was nil.
func (r *Report) Check(what string, err error) bool {
	if err != nil {
		r.Fail("%s: %v", what, err)
		return false
	}
	r.Pass("%s", what)
	return true
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return len(r.failures) > 0 }

// Line is the one-line summary of the fixture.
func (r *Report) Line() string {
	if r.opts.accuracy() && !r.loadError && len(r.checks)+len(r.outside) > 0 {
		msg := fmt.Sprintf("%d checks within the float32 tolerances, %d outside", len(r.checks), len(r.outside))
		if r.maxAbsOf != "" {
			msg += fmt.Sprintf("; max|err| %.3g (%s); min cosine %.6f (%s)", r.maxAbs, r.maxAbsOf, r.minCos, r.minCosOf)
		}
		if len(r.outside) > 0 {
			msg += "; first outside: " + r.outside[0]
		}
		return fmt.Sprintf("ACCURACY %s: %s", r.Dir, msg)
	}
	if r.Failed() {
		msg := r.failures[0]
		if n := len(r.failures); n > 1 {
			msg += fmt.Sprintf(" (and %d more failures)", n-1)
		}
		if r.worst != "" {
			msg += "; worst " + r.worst
		}
		return fmt.Sprintf("FAIL %s: %s", r.Dir, msg)
	}
	msg := fmt.Sprintf("%d checks", len(r.checks))
	if len(r.checks) == 0 {
		return fmt.Sprintf("FAIL %s: nothing was checked", r.Dir)
	}
	if len(r.checks) <= 4 {
		msg = strings.Join(r.checks, "; ")
	}
	if r.worst != "" && !strings.Contains(msg, r.worst) {
		msg += "; worst " + r.worst
	}
	return fmt.Sprintf("PASS %s: %s", r.Dir, msg)
}

// Tolerances of CONFORMANCE.md.
const (
	absTol   = 1e-4
	relTol   = 1e-4
	scoreTol = 1e-4
)

// Compare checks got against ref elementwise with |got-ref| <= 1e-4 +
// 1e-4·|ref| where use(i) is true (use nil means everywhere). ref64, when
// not nil, is the float64 run of the same model; its error is reported
// alongside for judging numerical error.
func (r *Report) Compare(name string, got, ref []float32, ref64 []float64, use func(i int) bool) bool {
	if len(got) != len(ref) {
		r.Fail("%s: got %d values, reference has %d", name, len(got), len(ref))
		return false
	}
	worst, worstAt, worstAbs := 0.0, -1, 0.0
	max64 := 0.0
	n := 0
	for i := range ref {
		if use != nil && !use(i) {
			continue
		}
		n++
		g, w := float64(got[i]), float64(ref[i])
		d := math.Abs(g - w)
		tol := absTol + relTol*math.Abs(w)
		ratio := d / tol
		if math.IsNaN(g) || math.IsInf(g, 0) {
			ratio = math.Inf(1)
		}
		if ratio > worst || worstAt < 0 {
			worst, worstAt, worstAbs = ratio, i, d
		}
		if ref64 != nil {
			max64 = max(max64, math.Abs(g-ref64[i]))
		}
	}
	if n == 0 {
		r.Fail("%s: no real positions to compare", name)
		return false
	}
	desc := fmt.Sprintf("%s max|err| %.3g at %d (%.2f of tolerance)", name, worstAbs, worstAt, worst)
	if ref64 != nil {
		desc += fmt.Sprintf(", vs float64 %.3g", max64)
	}
	if worst > r.worstR || r.worst == "" {
		r.worstR, r.worst = worst, desc
	}
	if r.opts.accuracy() {
		var dot, na, nb float64
		for i := range ref {
			if use == nil || use(i) {
				dot += float64(got[i]) * float64(ref[i])
				na += float64(got[i]) * float64(got[i])
				nb += float64(ref[i]) * float64(ref[i])
			}
		}
		cos := dot / math.Sqrt(na*nb)
		if r.minCosOf == "" || cos < r.minCos {
			r.minCos, r.minCosOf = cos, name
		}
		if r.maxAbsOf == "" || worstAbs > r.maxAbs {
			r.maxAbs, r.maxAbsOf = worstAbs, name
		}
	}
	if worst > 1 {
		r.Fail("%s: got %v, want %v", desc, got[worstAt], ref[worstAt])
		return false
	}
	r.Pass("%s", desc)
	return true
}

// CompareScore checks a pipeline score within the score tolerance.
func (r *Report) CompareScore(name string, got, want float64) bool {
	if math.Abs(got-want) > scoreTol || math.IsNaN(got) {
		r.Fail("%s: score %.6g, want %.6g", name, got, want)
		return false
	}
	return true
}
