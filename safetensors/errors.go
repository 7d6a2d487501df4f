package safetensors

import (
	"errors"
	"strconv"
)

// Sentinel errors, matched with errors.Is against the errors this package
// returns.
var (
	// ErrInvalid marks a file or index that violates the format.
	ErrInvalid = errors.New("invalid safetensors data")
	// ErrNotFound marks a lookup of a tensor the file or checkpoint lacks.
	ErrNotFound = errors.New("tensor not found")
	// ErrUnsupported marks input that is well formed but that this package
	// does not handle (pytorch_model.bin checkpoints, sub-byte dtypes, ...).
	ErrUnsupported = errors.New("unsupported")
)

// Error describes a problem with one file and, where it applies, one tensor.
type Error struct {
	File   string // path of the file or folder concerned
	Tensor string // tensor name, empty when the problem is not about one tensor
	Msg    string // what is wrong, with byte offsets where they help
	Err    error  // ErrInvalid, ErrNotFound, ErrUnsupported or an underlying error
}

// Error formats the problem as "safetensors: FILE: tensor "NAME": MSG".
func (e *Error) Error() string {
	s := "safetensors: " + e.File
	if e.Tensor != "" {
		s += ": tensor " + strconv.Quote(e.Tensor)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil && e.Err != ErrInvalid && e.Err != ErrNotFound && e.Err != ErrUnsupported {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel or underlying error.
func (e *Error) Unwrap() error { return e.Err }

func invalidf(file, tensor, msg string) error {
	return &Error{File: file, Tensor: tensor, Msg: msg, Err: ErrInvalid}
}
