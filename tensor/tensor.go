// Package tensor holds Embrace's dense row-major tensors and the numeric kernels a
// transformer needs. Compute is float32; weights may be stored as float16 or bfloat16
// and are converted on the fly inside the matmul kernels.
//
// Shape mismatches between operands are programming errors, not data errors: the
// operations panic on them, as gonum's mat package does. Loaders validate shapes
// taken from files before they reach an operation.
package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// DType is the element type of a tensor.
type DType uint8

// The element types Embrace computes with or stores weights in.
const (
	F32  DType = iota + 1 // float32, the compute type
	F16                   // IEEE 754 half precision, storage only
	BF16                  // bfloat16, storage only
	I64                   // int64, token ids
	I32                   // int32
)

// String returns the safetensors spelling of the dtype.
func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	case I64:
		return "I64"
	case I32:
		return "I32"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case I64:
		return 8
	}
	return 0
}

// Tensor is a dense row-major n-dimensional array. Exactly one of its backing
// slices is set, according to its dtype. Views (Rows, Reshape) share the backing
// data with the tensor they come from.
type Tensor struct {
	dtype DType
	shape []int
	f32   []float32
	u16   []uint16 // F16 or BF16 bit patterns
	i64   []int64
	i32   []int32
}

// numel returns the product of shape, or -1 if a dimension is negative or the
// product overflows.
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d != 0 && n > math.MaxInt32*4/d {
			return -1
		}
		n *= d
	}
	return n
}

func mustNumel(shape []int) int {
	n := numel(shape)
	if n < 0 {
		panic(fmt.Sprintf("tensor: invalid shape %v", shape))
	}
	return n
}

// New returns a zeroed tensor of the given dtype and shape.
func New(dtype DType, shape ...int) *Tensor {
	n := mustNumel(shape)
	t := &Tensor{dtype: dtype, shape: append([]int(nil), shape...)}
	switch dtype {
	case F32:
		t.f32 = makeF32(n)
	case F16, BF16:
		t.u16 = makeU16(n)
	case I64:
		t.i64 = make([]int64, n)
	case I32:
		t.i32 = make([]int32, n)
	default:
		panic(fmt.Sprintf("tensor: unknown dtype %v", dtype))
	}
	return t
}

// Zeros returns a zeroed float32 tensor.
func Zeros(shape ...int) *Tensor { return New(F32, shape...) }

// FromFloat32 wraps data (not copied) as a float32 tensor of the given shape.
func FromFloat32(data []float32, shape ...int) *Tensor {
	if mustNumel(shape) != len(data) {
		panic(fmt.Sprintf("tensor: %d values do not fill shape %v", len(data), shape))
	}
	return &Tensor{dtype: F32, shape: append([]int(nil), shape...), f32: data}
}

// FromUint16 wraps F16 or BF16 bit patterns (not copied) as a tensor.
func FromUint16(dtype DType, data []uint16, shape ...int) *Tensor {
	if dtype != F16 && dtype != BF16 {
		panic("tensor: FromUint16 needs F16 or BF16")
	}
	if mustNumel(shape) != len(data) {
		panic(fmt.Sprintf("tensor: %d values do not fill shape %v", len(data), shape))
	}
	return &Tensor{dtype: dtype, shape: append([]int(nil), shape...), u16: data}
}

// FromInt64 wraps data (not copied) as an int64 tensor.
func FromInt64(data []int64, shape ...int) *Tensor {
	if mustNumel(shape) != len(data) {
		panic(fmt.Sprintf("tensor: %d values do not fill shape %v", len(data), shape))
	}
	return &Tensor{dtype: I64, shape: append([]int(nil), shape...), i64: data}
}

// hostLittleEndian reports whether the host stores numbers little-endian, as
// safetensors files do; only then can file bytes be used in place.
var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// FromBytes builds a tensor over little-endian bytes, as stored in a safetensors
// file. On little-endian hosts with suitably aligned data the tensor aliases b
// (zero copy; b must then stay alive and unmodified); otherwise the values are
// copied. It returns an error when len(b) does not match the shape.
func FromBytes(dtype DType, b []byte, shape ...int) (*Tensor, error) {
	n := numel(shape)
	if n < 0 {
		return nil, fmt.Errorf("tensor: invalid shape %v", shape)
	}
	es := dtype.Size()
	if es == 0 {
		return nil, fmt.Errorf("tensor: unknown dtype %v", dtype)
	}
	if len(b) != n*es {
		return nil, fmt.Errorf("tensor: %d bytes for shape %v of %v, want %d", len(b), shape, dtype, n*es)
	}
	t := &Tensor{dtype: dtype, shape: append([]int(nil), shape...)}
	var p unsafe.Pointer
	if n > 0 {
		p = unsafe.Pointer(unsafe.SliceData(b))
	}
	inPlace := hostLittleEndian && (n == 0 || uintptr(p)%uintptr(es) == 0)
	switch dtype {
	case F32:
		if inPlace && n > 0 {
			t.f32 = unsafe.Slice((*float32)(p), n)
		} else {
			t.f32 = make([]float32, n)
			for i := range t.f32 {
				t.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
	case F16, BF16:
		if inPlace && n > 0 {
			t.u16 = unsafe.Slice((*uint16)(p), n)
		} else {
			t.u16 = make([]uint16, n)
			for i := range t.u16 {
				t.u16[i] = binary.LittleEndian.Uint16(b[2*i:])
			}
		}
	case I64:
		if inPlace && n > 0 {
			t.i64 = unsafe.Slice((*int64)(p), n)
		} else {
			t.i64 = make([]int64, n)
			for i := range t.i64 {
				t.i64[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
			}
		}
	case I32:
		if inPlace && n > 0 {
			t.i32 = unsafe.Slice((*int32)(p), n)
		} else {
			t.i32 = make([]int32, n)
			for i := range t.i32 {
				t.i32[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
	}
	return t, nil
}

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Shape returns the dimensions. The caller must not modify the slice.
func (t *Tensor) Shape() []int { return t.shape }

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Len is the number of elements.
func (t *Tensor) Len() int { return mustNumel(t.shape) }

// Float32s returns the backing data of a float32 tensor (not a copy).
func (t *Tensor) Float32s() []float32 {
	if t.dtype != F32 {
		panic(fmt.Sprintf("tensor: Float32s on %v tensor", t.dtype))
	}
	return t.f32
}

// Uint16s returns the backing bit patterns of an F16 or BF16 tensor (not a copy).
func (t *Tensor) Uint16s() []uint16 {
	if t.dtype != F16 && t.dtype != BF16 {
		panic(fmt.Sprintf("tensor: Uint16s on %v tensor", t.dtype))
	}
	return t.u16
}

// Int64s returns the backing data of an int64 tensor (not a copy).
func (t *Tensor) Int64s() []int64 {
	if t.dtype != I64 {
		panic(fmt.Sprintf("tensor: Int64s on %v tensor", t.dtype))
	}
	return t.i64
}

// Int32s returns the backing data of an int32 tensor (not a copy).
func (t *Tensor) Int32s() []int32 {
	if t.dtype != I32 {
		panic(fmt.Sprintf("tensor: Int32s on %v tensor", t.dtype))
	}
	return t.i32
}

// Reshape returns a view with a new shape of the same number of elements. One
// dimension may be -1 and is then inferred.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	total := t.Len()
	shape = append([]int(nil), shape...)
	infer := -1
	known := 1
	for i, d := range shape {
		if d == -1 {
			if infer >= 0 {
				panic("tensor: Reshape with two -1 dimensions")
			}
			infer = i
			continue
		}
		known *= d
	}
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			panic(fmt.Sprintf("tensor: cannot reshape %v to %v", t.shape, shape))
		}
		shape[infer] = total / known
	}
	if mustNumel(shape) != total {
		panic(fmt.Sprintf("tensor: cannot reshape %v to %v", t.shape, shape))
	}
	v := *t
	v.shape = shape
	return &v
}

// Rows returns a view of rows [lo, hi) along the first dimension.
func (t *Tensor) Rows(lo, hi int) *Tensor {
	if len(t.shape) == 0 || lo < 0 || hi < lo || hi > t.shape[0] {
		panic(fmt.Sprintf("tensor: Rows(%d, %d) of shape %v", lo, hi, t.shape))
	}
	inner := 1
	for _, d := range t.shape[1:] {
		inner *= d
	}
	v := *t
	v.shape = append([]int{hi - lo}, t.shape[1:]...)
	a, b := lo*inner, hi*inner
	switch t.dtype {
	case F32:
		v.f32 = t.f32[a:b:b]
	case F16, BF16:
		v.u16 = t.u16[a:b:b]
	case I64:
		v.i64 = t.i64[a:b:b]
	case I32:
		v.i32 = t.i32[a:b:b]
	}
	return &v
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := *t
	c.shape = append([]int(nil), t.shape...)
	c.f32, c.u16 = nil, nil
	if t.f32 != nil {
		c.f32 = makeF32(len(t.f32))
		copy(c.f32, t.f32)
	}
	if t.u16 != nil {
		c.u16 = makeU16(len(t.u16))
		copy(c.u16, t.u16)
	}
	c.i64 = append([]int64(nil), t.i64...)
	c.i32 = append([]int32(nil), t.i32...)
	return &c
}

// ToFloat32 returns the values as a new float32 tensor (upcasting F16/BF16 and
// converting integers); a float32 tensor is copied.
func (t *Tensor) ToFloat32() *Tensor {
	out := New(F32, t.shape...)
	switch t.dtype {
	case F32:
		copy(out.f32, t.f32)
	case F16:
		F16ToF32(out.f32, t.u16)
	case BF16:
		BF16ToF32(out.f32, t.u16)
	case I64:
		for i, v := range t.i64 {
			out.f32[i] = float32(v)
		}
	case I32:
		for i, v := range t.i32 {
			out.f32[i] = float32(v)
		}
	}
	return out
}

// String describes the tensor's dtype and shape.
func (t *Tensor) String() string {
	parts := make([]string, len(t.shape))
	for i, d := range t.shape {
		parts[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%v[%s]", t.dtype, strings.Join(parts, ","))
}
