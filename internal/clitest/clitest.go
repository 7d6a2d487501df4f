// Package clitest helps the example binaries' tests: finding the shared
// reference fixtures and running a command's run function in-process.
package clitest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fixtures returns the shared fixtures folder: $EMBRACE_SHARED_FIXTURES,
// else ../shared/fixtures beside the module root. It skips the test when
// neither exists.
func Fixtures(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("EMBRACE_SHARED_FIXTURES"); d != "" {
		if fi, err := os.Stat(filepath.Join(d, "models")); err == nil && fi.IsDir() {
			return d
		}
	}
	if root := moduleRoot(); root != "" {
		d := filepath.Join(root, "..", "shared", "fixtures")
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	t.Skip("reference fixtures not found: set $EMBRACE_SHARED_FIXTURES or put them at ../shared/fixtures beside the module root")
	return ""
}

// Model returns the folder of the named fixture model, skipping the test
// when the fixtures or that model are absent.
func Model(t testing.TB, name string) string {
	t.Helper()
	d := filepath.Join(Fixtures(t), "models", name)
	if _, err := os.Stat(filepath.Join(d, "config.json")); err != nil {
		t.Skipf("fixture model %s not found in $EMBRACE_SHARED_FIXTURES or ../shared/fixtures: %v", name, err)
	}
	return d
}

// moduleRoot walks up from the working directory to the folder with go.mod.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// RunFunc is the signature of every example's run function.
type RunFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

// Result is what one in-process run produced.
type Result struct {
	Code   int
	Stdout string
	Stderr string
}

// Run calls run with args and stdin and captures its output.
func Run(t testing.TB, run RunFunc, stdin string, args ...string) Result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// WantOneLineError fails the test unless r is a failure (non-zero exit)
// with exactly one line on stderr that starts with "name: " and contains
// each of wants.
func WantOneLineError(t testing.TB, r Result, name string, wants ...string) {
	t.Helper()
	if r.Code == 0 {
		t.Errorf("exit code 0, want non-zero; stdout %q", r.Stdout)
	}
	if strings.Count(r.Stderr, "\n") != 1 || !strings.HasSuffix(r.Stderr, "\n") || !strings.HasPrefix(r.Stderr, name+": ") {
		t.Errorf("stderr = %q; want one line starting with %q", r.Stderr, name+": ")
	}
	for _, w := range wants {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr = %q; want it to contain %q", r.Stderr, w)
		}
	}
}
