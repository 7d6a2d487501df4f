//go:build amd64 && !purego

package tensor

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// TestQ8DispatchAMD64 checks that every Q8 kernel this CPU can run is listed
// (so that the tests force it) and that the default is the widest one.
func TestQ8DispatchAMD64(t *testing.T) {
	want := []string{"go"}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		want = append(want, "avx2")
		if cpu.X86.HasAVXVNNI {
			want = append(want, "avxvnni")
		}
	}
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VNNI {
		want = append(want, "avx512vnni")
	}
	var got []string
	for _, g := range q8Impls {
		got = append(got, g.name)
	}
	if len(got) != len(want) {
		t.Fatalf("q8Impls = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("q8Impls = %v, want %v", got, want)
		}
	}
	if q8Default.name != want[len(want)-1] {
		t.Errorf("q8Default = %s, want %s", q8Default.name, want[len(want)-1])
	}
	t.Logf("Q8 kernels on this CPU: %v (default %s)", got, q8Default.name)
}
