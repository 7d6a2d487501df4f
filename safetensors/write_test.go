package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func f32Bytes(xs ...float32) []byte {
	b := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// TestWriteGolden pins the exact bytes the Python library produces for the
// same inputs (header JSON, space padding to 8 bytes, data order).
func TestWriteGolden(t *testing.T) {
	cases := []struct {
		name    string
		tensors []TensorView
		meta    map[string]string
		header  string
	}{
		{"empty", nil, nil, `{}      `},
		{"metadata only", nil, map[string]string{"framework": "pt"}, `{"__metadata__":{"framework":"pt"}}     `},
		{"one tensor", []TensorView{{Name: "attn.0", DType: F32, Shape: []int{1, 2, 3}, Data: f32Bytes(0, 1, 2, 3, 4, 5)}}, nil,
			`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`},
		{"padded", []TensorView{{Name: "attn0", DType: F32, Shape: []int{1, 1, 2, 3}, Data: f32Bytes(0, 1, 2, 3, 4, 5)}}, nil,
			`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `},
		{"order by alignment then name", []TensorView{
			{Name: "a", DType: U8, Shape: []int{1}, Data: []byte{7}},
			{Name: "c", DType: I64, Shape: []int{}, Data: make([]byte, 8)},
			{Name: "b", DType: F16, Shape: []int{1}, Data: []byte{0, 0x3c}},
			{Name: "<&>", DType: I64, Shape: []int{1}, Data: make([]byte, 8)},
		}, map[string]string{"z": "1", "a": "2"},
			`{"__metadata__":{"a":"2","z":"1"},"<&>":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"c":{"dtype":"I64","shape":[],"data_offsets":[8,16]},"b":{"dtype":"F16","shape":[1],"data_offsets":[16,18]},"a":{"dtype":"U8","shape":[1],"data_offsets":[18,19]}}     `},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		if err := Write(&buf, c.tensors, c.meta); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := buf.Bytes()
		if n := binary.LittleEndian.Uint64(got); n != uint64(len(c.header)) || string(got[8:8+n]) != c.header {
			t.Errorf("%s: header %q (len %d), want %q (len %d)", c.name, got[8:], n, c.header, len(c.header))
			continue
		}
		if len(c.header)%8 != 0 {
			t.Fatalf("%s: golden header not aligned", c.name)
		}
		// Data follows in header order.
		var data []byte
		order := slices.Clone(c.tensors)
		slices.SortStableFunc(order, func(a, b TensorView) int {
			return strings.Index(c.header, `"`+a.Name+`":{"dtype"`) - strings.Index(c.header, `"`+b.Name+`":{"dtype"`)
		})
		for _, v := range order {
			data = append(data, v.Data...)
		}
		if !bytes.Equal(got[8+len(c.header):], data) {
			t.Errorf("%s: data %v, want %v", c.name, got[8+len(c.header):], data)
		}
	}
}

func TestWriteRoundTripAllDTypes(t *testing.T) {
	var views []TensorView
	for d, info := range dtypeInfo {
		if info.size == 0 {
			continue
		}
		data := make([]byte, 6*info.size)
		for i := range data {
			data[i] = byte(i*7 + info.rank)
		}
		views = append(views, TensorView{Name: "t." + string(d), DType: d, Shape: []int{2, 3}, Data: data})
	}
	p := filepath.Join(t.TempDir(), "all.safetensors")
	meta := map[string]string{"format": "pt", "note": "ünïcode \"quoted\""}
	if err := WriteFile(p, views, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Len() != len(views) || !maps2Equal(f.Metadata(), meta) {
		t.Errorf("got %d tensors, metadata %v", f.Len(), f.Metadata())
	}
	for _, v := range views {
		got, err := f.Tensor(v.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != v.DType || !slices.Equal(got.Shape, v.Shape) || !bytes.Equal(got.Data, v.Data) {
			t.Errorf("%s: round trip gave %+v", v.Name, got)
		}
		// Python aligns each tensor to its element size; so must we.
		if off := f.start + f.hdr.tensors[v.Name].begin; off%uint64(v.DType.Size()) != 0 {
			t.Errorf("%s at file offset %d is not aligned", v.Name, off)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 {
		t.Errorf("WriteFile left %d entries behind", len(entries))
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestWriteRejects(t *testing.T) {
	cases := map[string][]TensorView{
		"duplicate":     {{Name: "a", DType: U8, Shape: []int{1}, Data: []byte{1}}, {Name: "a", DType: U8, Shape: []int{1}, Data: []byte{1}}},
		"reserved name": {{Name: "__metadata__", DType: U8, Shape: []int{1}, Data: []byte{1}}},
		"unknown dtype": {{Name: "a", DType: "Q4", Shape: []int{1}, Data: []byte{1}}},
		"length":        {{Name: "a", DType: F32, Shape: []int{2}, Data: []byte{1}}},
		"negative":      {{Name: "a", DType: F32, Shape: []int{-1}, Data: nil}},
		"overflow":      {{Name: "a", DType: F32, Shape: []int{math.MaxInt, 4}, Data: nil}},
	}
	for name, views := range cases {
		var buf bytes.Buffer
		if err := Write(&buf, views, nil); err == nil || !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: Write = %v", name, err)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: wrote %d bytes before failing", name, buf.Len())
		}
	}
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "dir", "x.safetensors"), nil, nil); err == nil {
		t.Error("WriteFile into a missing folder succeeded")
	}
}
