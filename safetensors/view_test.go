package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

func u16Bytes(xs ...uint16) []byte {
	b := make([]byte, 2*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func TestFloat32s(t *testing.T) {
	inf := float32(math.Inf(1))
	cases := []struct {
		v    TensorView
		want []float32
	}{
		{TensorView{DType: F32, Shape: []int{3}, Data: f32Bytes(1, -2.5, 3e-40)}, []float32{1, -2.5, 3e-40}},
		{TensorView{DType: F16, Shape: []int{8}, Data: u16Bytes(0x3c00, 0xc000, 0x0001, 0x8000, 0x7c00, 0x7bff, 0x3555, 0x0400)},
			[]float32{1, -2, 1.0 / (1 << 24), float32(math.Copysign(0, -1)), inf, 65504, 0.33325195, 1.0 / (1 << 14)}},
		{TensorView{DType: BF16, Shape: []int{3}, Data: u16Bytes(0x3f80, 0xc040, 0x7f80)}, []float32{1, -3, inf}},
		{TensorView{DType: F64, Shape: []int{2}, Data: binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.1)), math.Float64bits(-4))}, []float32{0.1, -4}},
		{TensorView{DType: F8E4M3, Shape: []int{5}, Data: []byte{0x38, 0xb8, 0x7e, 0x01, 0x08}}, []float32{1, -1, 448, 1.0 / 512, 1.0 / 64}},
		{TensorView{DType: F8E5M2, Shape: []int{4}, Data: []byte{0x3c, 0xc0, 0x7b, 0x7c}}, []float32{1, -2, 57344, inf}},
		{TensorView{DType: F8E8M0, Shape: []int{2}, Data: []byte{127, 130}}, []float32{1, 8}},
	}
	for _, c := range cases {
		got, err := c.v.Float32s()
		if err != nil {
			t.Fatalf("%s: %v", c.v.DType, err)
		}
		for i := range got {
			if got[i] != c.want[i] || math.Signbit(float64(got[i])) != math.Signbit(float64(c.want[i])) {
				t.Errorf("%s: got %v, want %v", c.v.DType, got, c.want)
				break
			}
		}
		g64, err := c.v.Float64s()
		if err != nil || len(g64) != len(c.want) {
			t.Errorf("%s Float64s: %v %v", c.v.DType, g64, err)
		}
	}
	nan, _ := TensorView{DType: F8E4M3, Shape: []int{1}, Data: []byte{0x7f}}.Float32s()
	if !math.IsNaN(float64(nan[0])) {
		t.Errorf("F8_E4M3 0x7f = %v, want NaN", nan[0])
	}
	if _, err := (TensorView{DType: I32, Shape: []int{1}, Data: make([]byte, 4)}).Float32s(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Float32s of I32 = %v", err)
	}
	if _, err := (TensorView{DType: F32, Shape: []int{2}, Data: make([]byte, 4)}).Float32s(); !errors.Is(err, ErrInvalid) {
		t.Errorf("short data = %v", err)
	}
}

func TestInt64s(t *testing.T) {
	cases := []struct {
		v    TensorView
		want []int64
	}{
		{TensorView{DType: I64, Shape: []int{2}, Data: binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 5), math.MaxUint64)}, []int64{5, -1}},
		{TensorView{DType: I32, Shape: []int{2}, Data: []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}}, []int64{1, -1}},
		{TensorView{DType: U32, Shape: []int{1}, Data: []byte{0xff, 0xff, 0xff, 0xff}}, []int64{math.MaxUint32}},
		{TensorView{DType: I16, Shape: []int{1}, Data: []byte{0xfe, 0xff}}, []int64{-2}},
		{TensorView{DType: U16, Shape: []int{1}, Data: []byte{0xfe, 0xff}}, []int64{65534}},
		{TensorView{DType: I8, Shape: []int{2}, Data: []byte{0x80, 3}}, []int64{-128, 3}},
		{TensorView{DType: U8, Shape: []int{2}, Data: []byte{0x80, 3}}, []int64{128, 3}},
		{TensorView{DType: Bool, Shape: []int{3}, Data: []byte{0, 1, 2}}, []int64{0, 1, 1}},
		{TensorView{DType: U64, Shape: []int{1}, Data: binary.LittleEndian.AppendUint64(nil, 1<<40)}, []int64{1 << 40}},
	}
	for _, c := range cases {
		got, err := c.v.Int64s()
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.v.DType, got, err, c.want)
		}
	}
	if _, err := (TensorView{DType: U64, Shape: []int{1}, Data: binary.LittleEndian.AppendUint64(nil, math.MaxUint64)}).Int64s(); err == nil {
		t.Error("U64 overflow not reported")
	}
	if _, err := (TensorView{DType: F32, Shape: []int{1}, Data: make([]byte, 4)}).Int64s(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Int64s of F32 = %v", err)
	}
}

func TestFloat32View(t *testing.T) {
	buf := make([]byte, 20)
	copy(buf[4:], f32Bytes(1, 2, 3))
	v := TensorView{Name: "x", DType: F32, Shape: []int{3}, Data: buf[4:16]}
	got, err := v.Float32View()
	if !nativeLittle {
		if err == nil {
			t.Error("Float32View on big-endian host succeeded")
		}
		return
	}
	if err != nil || !slices.Equal(got, []float32{1, 2, 3}) {
		t.Fatalf("Float32View = %v, %v", got, err)
	}
	if &got[0] != (*float32)(unsafePointer(&buf[4])) {
		t.Error("Float32View copied")
	}
	if _, err := (TensorView{DType: F32, Shape: []int{1}, Data: buf[1:5]}).Float32View(); err == nil {
		t.Error("unaligned Float32View succeeded")
	}
	if _, err := (TensorView{DType: F16, Shape: []int{2}, Data: buf[:4]}).Float32View(); err == nil {
		t.Error("Float32View of F16 succeeded")
	}
}
