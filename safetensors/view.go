package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// TensorView is one tensor: its name, dtype, shape (row-major) and raw
// little-endian bytes. Views returned by File.Tensor alias the file's
// memory: Data is read-only and valid until the file is closed.
type TensorView struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the product of the shape (1 for a scalar).
func (v TensorView) NumElements() int {
	n := 1
	for _, d := range v.Shape {
		n *= d
	}
	return n
}

// check verifies that Data holds exactly the elements the shape calls for,
// so conversions never index out of range on a hand-built view.
func (v TensorView) check() (int, error) {
	size := v.DType.Size()
	if size == 0 {
		return 0, fmt.Errorf("safetensors: tensor %q: %w: dtype %q", v.Name, ErrUnsupported, v.DType)
	}
	n := uint64(1)
	for _, d := range v.Shape {
		if d < 0 {
			return 0, fmt.Errorf("safetensors: tensor %q: %w: negative dimension in shape %v", v.Name, ErrInvalid, v.Shape)
		}
		if d != 0 && n > math.MaxInt/uint64(d) {
			return 0, fmt.Errorf("safetensors: tensor %q: %w: shape %v overflows", v.Name, ErrInvalid, v.Shape)
		}
		n *= uint64(d)
	}
	if n > uint64(math.MaxInt/size) || int(n)*size != len(v.Data) {
		return 0, fmt.Errorf("safetensors: tensor %q: %w: shape %v of %s needs %d elements of %d bytes, data has %d bytes",
			v.Name, ErrInvalid, v.Shape, v.DType, n, size, len(v.Data))
	}
	return int(n), nil
}

// nativeLittle is true on little-endian hosts, where the file's bytes can be
// reinterpreted in place.
var nativeLittle = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Float32View returns the data of an F32 tensor as a []float32 that aliases
// Data, without copying. It fails on big-endian hosts and when Data is not
// 4-byte aligned (a header not padded to 8 bytes); use Float32s then. The
// result is read-only for views of a mapped file.
func (v TensorView) Float32View() ([]float32, error) {
	n, err := v.check()
	if err != nil {
		return nil, err
	}
	if v.DType != F32 {
		return nil, fmt.Errorf("safetensors: tensor %q: Float32View needs F32, have %s", v.Name, v.DType)
	}
	if n == 0 {
		return []float32{}, nil
	}
	if !nativeLittle || uintptr(unsafe.Pointer(&v.Data[0]))%4 != 0 {
		return nil, fmt.Errorf("safetensors: tensor %q: %w: data cannot be viewed in place (big-endian host or unaligned)", v.Name, ErrUnsupported)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&v.Data[0])), n), nil
}

// Float32s converts a floating-point tensor (F32, F16, BF16, F64, F8_E4M3,
// F8_E5M2, F8_E8M0) to a new []float32.
func (v TensorView) Float32s() ([]float32, error) {
	n, err := v.check()
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	b := v.Data
	switch v.DType {
	case F32:
		if nativeLittle {
			copy(out, unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n))
			break
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case F16:
		for i := range out {
			out[i] = f16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case F8E5M2:
		for i := range out {
			out[i] = f16ToF32(uint16(b[i]) << 8) // E5M2 is the top byte of a half
		}
	case F8E4M3:
		for i := range out {
			out[i] = f8e4m3ToF32(b[i])
		}
	case F8E8M0:
		for i := range out {
			if b[i] == 0xff {
				out[i] = float32(math.NaN())
			} else {
				out[i] = float32(math.Ldexp(1, int(b[i])-127))
			}
		}
	default:
		return nil, fmt.Errorf("safetensors: tensor %q: %w: Float32s of dtype %s", v.Name, ErrUnsupported, v.DType)
	}
	return out, nil
}

// Float64s converts a floating-point tensor (F64, F32, F16, BF16) to a new
// []float64.
func (v TensorView) Float64s() ([]float64, error) {
	if v.DType == F64 {
		n, err := v.check()
		if err != nil {
			return nil, err
		}
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(v.Data[8*i:]))
		}
		return out, nil
	}
	f, err := v.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out, nil
}

// Int64s converts an integer or boolean tensor (I64, I32, I16, I8, U64, U32,
// U16, U8, BOOL) to a new []int64. A U64 value above MaxInt64 is an error.
func (v TensorView) Int64s() ([]int64, error) {
	n, err := v.check()
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	b := v.Data
	switch v.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case U64:
		for i := range out {
			u := binary.LittleEndian.Uint64(b[8*i:])
			if u > math.MaxInt64 {
				return nil, fmt.Errorf("safetensors: tensor %q: element %d (%d) overflows int64", v.Name, i, u)
			}
			out[i] = int64(u)
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case U8:
		for i := range out {
			out[i] = int64(b[i])
		}
	case Bool:
		for i := range out {
			if b[i] != 0 {
				out[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("safetensors: tensor %q: %w: Int64s of dtype %s", v.Name, ErrUnsupported, v.DType)
	}
	return out, nil
}

// f16ToF32 decodes an IEEE 754 half-precision value exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	}
	// Zero or subnormal: man * 2^-24, exact in float32.
	return math.Float32frombits(sign | math.Float32bits(float32(man)*(1.0/(1<<24))))
}

// f8e4m3ToF32 decodes the "fn" FP8 variant used by PyTorch's float8_e4m3fn:
// bias 7, no infinities, S.1111.111 is NaN.
func f8e4m3ToF32(b byte) float32 {
	exp := int(b>>3) & 0xf
	man := int(b & 7)
	var f float32
	switch {
	case exp == 0xf && man == 7:
		f = float32(math.NaN())
	case exp == 0:
		f = float32(math.Ldexp(float64(man)/8, -6))
	default:
		f = float32(math.Ldexp(1+float64(man)/8, exp-7))
	}
	if b&0x80 != 0 {
		f = -f
	}
	return f
}
