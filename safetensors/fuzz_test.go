package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// seedFiles returns valid files: fixture files up to maxSize bytes (when the
// shared fixtures exist) and files written here covering every dtype.
func seedFiles(maxSize int) [][]byte {
	var seeds [][]byte
	for _, p := range fixtureFilesQuiet() {
		if b, err := os.ReadFile(p); err == nil && len(b) <= maxSize {
			seeds = append(seeds, b)
		}
	}
	var views []TensorView
	for d, info := range dtypeInfo {
		if info.size > 0 {
			views = append(views, TensorView{Name: string(d), DType: d, Shape: []int{2, 1}, Data: bytes.Repeat([]byte{0x3c}, 2*info.size)})
		}
	}
	for _, vs := range [][]TensorView{nil, views, views[:1]} {
		var buf bytes.Buffer
		Write(&buf, vs, map[string]string{"format": "pt"})
		seeds = append(seeds, buf.Bytes())
	}
	return seeds
}

// fixtureFilesQuiet lists fixture files, or none, without skipping: fuzz
// seeds are optional.
func fixtureFilesQuiet() []string {
	for _, d := range []string{os.Getenv("EMBRACE_SHARED_FIXTURES"), filepath.Join("..", "..", "shared", "fixtures")} {
		if d == "" {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(d, "models", "*", "*.safetensors")); len(m) > 0 {
			return m
		}
	}
	return nil
}

// Run each target with, for example,
//
//	go test -run '^$' -fuzz '^FuzzHeader$' -fuzztime 60s -fuzzminimizetime 5s ./safetensors
//
// On a busy machine the default minimisation (60 s per new input) stalls
// the run; a short -fuzzminimizetime keeps it executing.

// FuzzHeader feeds arbitrary header bytes to the parser; anything it
// accepts must describe in-range, non-overlapping, correctly sized tensors.
func FuzzHeader(f *testing.F) {
	for _, b := range seedFiles(4 << 20) {
		n := binary.LittleEndian.Uint64(b)
		f.Add(b[8:8+n], uint64(len(b))-8-n)
	}
	f.Add([]byte(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BOOL","shape":[],"data_offsets":[8,9]}}`), uint64(9))
	f.Fuzz(func(t *testing.T, hdr []byte, dataLen uint64) {
		h, err := parseHeader("fuzz", hdr, dataLen)
		if err != nil {
			return
		}
		for _, name := range h.names {
			info := h.tensors[name]
			n := uint64(1)
			for _, d := range info.shape {
				n *= uint64(d)
			}
			if info.end > dataLen || info.begin > info.end || info.end-info.begin != n*uint64(info.dtype.Size()) {
				t.Fatalf("accepted bad tensor %q: %+v (data %d)", name, info, dataLen)
			}
		}
		for i, a := range h.names {
			for _, b := range h.names[i+1:] {
				ta, tb := h.tensors[a], h.tensors[b]
				if ta.begin < tb.end && tb.begin < ta.end {
					t.Fatalf("accepted overlapping %q and %q", a, b)
				}
			}
			if i > 50 {
				break // keep the quadratic check cheap
			}
		}
	})
}

// FuzzOpen writes arbitrary bytes to a file and opens it: Open must fail
// cleanly or give tensors that read back without panicking.
func FuzzOpen(f *testing.F) {
	for _, b := range seedFiles(32 << 10) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.safetensors")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := Open(p)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		defer st.Close()
		for _, name := range st.Names() {
			v, err := st.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Float32s(); err != nil {
				if _, err2 := v.Int64s(); err2 != nil && v.DType != C64 {
					t.Fatalf("%s of %s converts neither way: %v / %v", name, v.DType, err, err2)
				}
			}
		}
		// What was read must write back and reopen identically.
		var views []TensorView
		for _, name := range st.Names() {
			v, _ := st.Tensor(name)
			views = append(views, v)
		}
		var buf bytes.Buffer
		if err := Write(&buf, views, st.Metadata()); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
	})
}
