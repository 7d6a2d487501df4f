package main

import (
	"errors"
	"testing"
	"time"
)

func TestMeasureRunsAtLeastFiveOps(t *testing.T) {
	ops := 0
	cleaned := false
	b := &benchmark{
		name: "test/ops", unit: "ops/s",
		setup: func() (func() error, func(), error) {
			return func() error { ops++; time.Sleep(time.Millisecond); return nil }, func() { cleaned = true }, nil
		},
		value: func(sec float64) float64 { return 1 / sec },
	}
	r, err := measure(b, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if ops < 6 { // one warm-up and five timed
		t.Errorf("ran %d ops, want at least 6", ops)
	}
	if !cleaned {
		t.Error("cleanup not called")
	}
	if r.MS < 1 || r.Value <= 0 || r.Value > 1000 {
		t.Errorf("median %v ms, value %v: want at least 1 ms and at most 1000 ops/s", r.MS, r.Value)
	}
}

func TestMeasureSkipAndFailure(t *testing.T) {
	skip := &benchmark{name: "test/skip", unit: "x",
		setup: func() (func() error, func(), error) { return nil, nil, skipf("no fixture at %s", "/nowhere") },
		value: func(float64) float64 { return 0 }}
	if _, err := measure(skip, time.Millisecond); !errors.Is(err, errSkipped) {
		t.Errorf("skip: got %v, want errSkipped", err)
	}
	boom := errors.New("boom")
	fail := &benchmark{name: "test/fail", unit: "x",
		setup: func() (func() error, func(), error) { return func() error { return boom }, nil, nil },
		value: func(float64) float64 { return 0 }}
	if _, err := measure(fail, time.Millisecond); !errors.Is(err, boom) {
		t.Errorf("failing op: got %v, want boom", err)
	}
}

func TestSelectBenchmarks(t *testing.T) {
	all, err := selectBenchmarks(nil)
	if err != nil || len(all) < 9 {
		t.Fatalf("all: %d benchmarks, %v", len(all), err)
	}
	got, err := selectBenchmarks([]string{"^gemv/f16", "^membw"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].name != "gemv/f16/768x3072" || got[1].name != "membw/read" {
		t.Errorf("selected %d: %v", len(got), got)
	}
	if _, err := selectBenchmarks([]string{"("}); err == nil {
		t.Error("bad pattern accepted")
	}
}
