package pipeline

import (
	"errors"

	"github.com/embrace-go/embrace/hub"
	"github.com/embrace-go/embrace/models/arch"
)

// The error classes a caller branches on, for errors.Is. Each is the same
// value as in the package that raises it.
var (
	// ErrUnsupported: the folder asks for something the library does not
	// implement (an architecture, a head, a tokenizer component). It is the
	// standard library's errors.ErrUnsupported, which the models',
	// tokenizer's and hub's unsupported errors all match.
	ErrUnsupported = errors.ErrUnsupported
	// ErrNotFound: the name is neither a folder nor a Hub repository, or
	// the repository or file does not exist.
	ErrNotFound = hub.ErrNotFound
	// ErrTooLong: an input is longer than the model's positions and
	// truncation is off, or a prompt leaves no room to generate.
	ErrTooLong = arch.ErrTooLong
	// ErrClosed: the pipeline was used after Close.
	ErrClosed = arch.ErrClosed
)
