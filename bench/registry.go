package main

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
)

// benchmark is one entry of the bench command. Files of this package add
// theirs from init with register.
type benchmark struct {
	// name is the fixed benchmark name, e.g. "sgemm/128x768x3072".
	name string
	// unit is the unit of value, e.g. "GFLOP/s", "GB/s", "ms", "seq/s".
	unit string
	// setup builds everything one op needs (weights, inputs, a loaded
	// model) outside the timing and returns the op to time and an optional
	// cleanup that frees what setup built. An error wrapping errSkipped is
	// printed as a skip and the run continues; any other error is a failure.
	setup func() (op func() error, cleanup func(), err error)
	// value turns the seconds of one op into the reported figure.
	value func(sec float64) float64
	// gflops, when set, turns the seconds of one op into the arithmetic rate
	// it implies (reported as the optional "gflops" field).
	gflops func(sec float64) float64
	// best reports the fastest repetition instead of the median (the
	// machine ceilings peak/* and membw/*, as the reference C loops do).
	best bool
}

// errSkipped marks a benchmark that cannot run here (missing fixture, CPU
// feature); wrap it with skipf.
var errSkipped = errors.New("skipped")

// skipf returns an error that makes the harness print a skip and go on.
func skipf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSkipped, fmt.Sprintf(format, args...))
}

// registry holds every benchmark by name; it is filled during package
// initialisation only and read afterwards.
var registry = map[string]*benchmark{}

// register adds a benchmark. name and unit are required, as are setup and
// value; a duplicate name is a programming error and panics at start-up.
func register(name, unit string, setup func() (op func() error, cleanup func(), err error), value func(sec float64) float64) *benchmark {
	if name == "" || unit == "" || setup == nil || value == nil {
		panic(fmt.Sprintf("bench: incomplete registration of %q", name))
	}
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("bench: %q registered twice", name))
	}
	b := &benchmark{name: name, unit: unit, setup: setup, value: value}
	registry[name] = b
	return b
}

// selectBenchmarks returns the benchmarks whose names match any of the
// patterns (all of them when there are none), in a stable order: the
// registration order groups by name prefix, so sort by name.
func selectBenchmarks(patterns []string) ([]*benchmark, error) {
	var res []*regexp.Regexp
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("bad pattern %q: %w", p, err)
		}
		res = append(res, re)
	}
	var out []*benchmark
	for name, b := range registry {
		match := len(res) == 0
		for _, re := range res {
			match = match || re.MatchString(name)
		}
		if match {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}
