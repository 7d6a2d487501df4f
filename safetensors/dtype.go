package safetensors

// DType names an element type as written in a safetensors header.
type DType string

// The element types of the safetensors format.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	Bool   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
	F8E8M0 DType = "F8_E8M0"
	C64    DType = "C64"
	F4     DType = "F4"
	F6E2M3 DType = "F6_E2M3"
	F6E3M2 DType = "F6_E3M2"
)

// dtypeInfo gives the byte size and the rank in the Python library's
// ordering (used by the writer: larger alignment first). Size 0 marks the
// sub-byte types, which are recognised but not supported.
var dtypeInfo = map[DType]struct{ size, rank int }{
	Bool: {1, 0}, F4: {0, 1}, F6E2M3: {0, 2}, F6E3M2: {0, 3},
	U8: {1, 4}, I8: {1, 5}, F8E5M2: {1, 6}, F8E4M3: {1, 7}, F8E8M0: {1, 8},
	I16: {2, 9}, U16: {2, 10}, F16: {2, 11}, BF16: {2, 12},
	I32: {4, 13}, U32: {4, 14}, F32: {4, 15}, C64: {8, 16},
	F64: {8, 17}, I64: {8, 18}, U64: {8, 19},
}

// Size returns the size of one element in bytes, or 0 for an unknown dtype
// or a sub-byte one (F4, F6_*), which this package does not support.
func (d DType) Size() int { return dtypeInfo[d].size }

// Known reports whether d is a dtype of the safetensors format.
func (d DType) Known() bool {
	_, ok := dtypeInfo[d]
	return ok
}

// String returns the dtype's name as written in headers.
func (d DType) String() string { return string(d) }
