package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawFile builds file bytes from a header string and a data area, with the
// header length taken from the header unless n >= 0 overrides it.
func rawFile(hdr string, data []byte, n int64) []byte {
	b := make([]byte, 8, 8+len(hdr)+len(data))
	if n < 0 {
		n = int64(len(hdr))
	}
	binary.LittleEndian.PutUint64(b, uint64(n))
	b = append(b, hdr...)
	return append(b, data...)
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCorruptFiles(t *testing.T) {
	good := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	big := make([]byte, 8)
	binary.LittleEndian.PutUint64(big, 1<<63)
	cases := []struct {
		name   string
		file   []byte
		tensor string // tensor the error must name, if any
		want   string // substring of the error
		is     error
	}{
		{"empty", nil, "", "too short", ErrInvalid},
		{"truncated length", []byte{1, 2, 3}, "", "too short", ErrInvalid},
		{"truncated header", rawFile(good, make([]byte, 8), -1)[:30], "", "past the end of the file", ErrInvalid},
		{"header length past end", rawFile(good, make([]byte, 8), int64(len(good)+100)), "", "past the end of the file", ErrInvalid},
		{"header length 2^63", append(big, good...), "", "exceeds", ErrInvalid},
		{"header length max uint64", append([]byte{255, 255, 255, 255, 255, 255, 255, 255}, good...), "", "exceeds", ErrInvalid},
		{"header length zero", rawFile(good, nil, 0), "", "does not start", ErrInvalid},
		{"header over 100MB", rawFile(good, nil, 100_000_001), "", "exceeds", ErrInvalid},
		{"header not JSON", rawFile(`{"a":{"dtype":"F32",`+"\x00"+`}}`, nil, -1), "", "not valid JSON", ErrInvalid},
		{"header not object", rawFile(`[1,2,3] `, nil, -1), "", "does not start with '{'", ErrInvalid},
		{"header JSON cut", rawFile(`{"a":{"dtype":"F32"`, nil, -1), "", "JSON", ErrInvalid},
		{"header bad utf8", rawFile("{\"\xff\":{}}", nil, -1), "", "UTF-8", ErrInvalid},
		{"trailing garbage", rawFile(`{}  x    `, nil, -1), "", "trailing data", ErrInvalid},
		{"entry not object", rawFile(`{"a":3}`, nil, -1), "a", "not a JSON object", ErrInvalid},
		{"missing field", rawFile(`{"a":{"dtype":"F32","shape":[2]}}`, make([]byte, 8), -1), "a", "needs dtype, shape and data_offsets", ErrInvalid},
		{"unknown dtype", rawFile(`{"w":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8), -1), "w", `unknown dtype "F17"`, ErrInvalid},
		{"sub-byte dtype", rawFile(`{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, make([]byte, 1), -1), "w", "unsupported", ErrUnsupported},
		{"negative dim", rawFile(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, make([]byte, 8), -1), "w", "shape", ErrInvalid},
		{"fractional dim", rawFile(`{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, make([]byte, 8), -1), "w", "shape", ErrInvalid},
		{"offsets past end", rawFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, make([]byte, 8), -1), "w", "past the end of the data area", ErrInvalid},
		{"offsets reversed", rawFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, make([]byte, 8), -1), "w", "end before they start", ErrInvalid},
		{"offsets huge", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}}`, make([]byte, 8), -1), "w", "past the end", ErrInvalid},
		{"offsets not pair", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, make([]byte, 8), -1), "w", "data_offsets", ErrInvalid},
		{"shape length mismatch", rawFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8), -1), "w", "needs 12 bytes", ErrInvalid},
		{"shape overflow", rawFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, make([]byte, 8), -1), "w", "overflows", ErrInvalid},
		{"bytes overflow", rawFile(`{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}`, make([]byte, 8), -1), "w", "overflows", ErrInvalid},
		{"dim past int", rawFile(`{"w":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}}`, nil, -1), "w", "too large", ErrInvalid},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12), -1), "b", `overlap tensor "a"`, ErrInvalid},
		{"alias", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8), -1), "b", `overlap`, ErrInvalid},
		{"duplicate tensor", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8), -1), "a", "twice", ErrInvalid},
		{"metadata not strings", rawFile(`{"__metadata__":{"n":3}}`, nil, -1), "", "not a string", ErrInvalid},
		{"metadata not object", rawFile(`{"__metadata__":[1]}`, nil, -1), "", "__metadata__", ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "bad.safetensors", c.file)
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatalf("Open succeeded on a corrupt file")
			}
			msg := err.Error()
			if !strings.Contains(msg, p) {
				t.Errorf("error does not name the file: %v", err)
			}
			if c.tensor != "" && !strings.Contains(msg, `tensor "`+c.tensor+`"`) {
				t.Errorf("error does not name tensor %q: %v", c.tensor, err)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q lacks %q", msg, c.want)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
		})
	}
}

func TestOpenNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open(dir) = %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
}

// TestLenientLayout: gaps and trailing bytes are accepted (see parseHeader),
// zero-size tensors may share offsets, and the header may be unpadded.
func TestLenientLayout(t *testing.T) {
	data := make([]byte, 20)
	binary.LittleEndian.PutUint32(data[12:], math.Float32bits(1.5))
	hdr := `{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"z":{"dtype":"U8","shape":[],"data_offsets":[4,5]},"x":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},"y":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`
	p := writeTemp(t, "gaps.safetensors", rawFile(hdr, data, -1))
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, _ := f.Tensor("x")
	v, err := x.Float32s()
	if err != nil || len(v) != 1 || v[0] != 1.5 {
		t.Errorf("x = %v, %v", v, err)
	}
	if e, _ := f.Tensor("e"); e.NumElements() != 0 || len(e.Data) != 0 {
		t.Errorf("e = %+v", e)
	}
	if z, _ := f.Tensor("z"); len(z.Shape) != 0 || z.NumElements() != 1 {
		t.Errorf("scalar z = %+v", z)
	}
}

func TestMissingTensorAndClose(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(p, []TensorView{{Name: "w", DType: F32, Shape: []int{1}, Data: make([]byte, 4)}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Tensor("nope")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing tensor error = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := f.Tensor("w"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Tensor after Close = %v", err)
	}
}
