package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// sparseFile writes a file of one F32 tensor of the given byte size without
// writing its data: the file is extended by Truncate, so it is sparse.
func sparseFile(tb testing.TB, dataSize int64) string {
	tb.Helper()
	hdr := fmt.Sprintf(`{"__metadata__":{"format":"pt"},"big":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}`, dataSize/4, dataSize)
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	p := filepath.Join(tb.TempDir(), "big.safetensors")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(hdr)))
	f.Write(prefix[:])
	f.WriteString(hdr)
	if err := f.Truncate(8 + int64(len(hdr)) + dataSize); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestOpenLargeCostsHeader opens a 1 GiB file and checks that Open and
// Tensor allocate memory for the header only.
func TestOpenLargeCostsHeader(t *testing.T) {
	if !mapped {
		t.Skip("files are read, not mapped, on this platform")
	}
	const size = 1 << 30
	p := sparseFile(t, size)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Tensor("big")
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if len(v.Data) != size || v.Data[size-1] != 0 {
		t.Fatalf("tensor has %d bytes", len(v.Data))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("opening a 1 GiB file allocated %d bytes", alloc)
	}
	f.Close()
}

// BenchmarkOpen1GiB measures Open+Tensor+Close of a 1 GiB file; with memory
// mapping it costs the header, not the data.
func BenchmarkOpen1GiB(b *testing.B) {
	p := sparseFile(b, 1<<30)
	b.ReportAllocs()
	for b.Loop() {
		f, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Tensor("big"); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
