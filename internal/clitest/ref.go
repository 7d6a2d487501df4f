package clitest

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Reference decodes dir/reference.json into v, failing the test on error.
func Reference(t testing.TB, dir string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s/reference.json: %v", dir, err)
	}
}

// JSONLines decodes each line of out into a T.
func JSONLines[T any](t testing.TB, out string) []T {
	t.Helper()
	var got []T
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("output line %q is not JSON: %v", line, err)
		}
		got = append(got, v)
	}
	return got
}

// ScoreClose reports whether a pipeline score matches a reference score
// within the fixtures' tolerance for pipeline scores.
func ScoreClose(got, want float64) bool {
	return math.Abs(got-want) <= 1e-4
}
