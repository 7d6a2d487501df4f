package safetensors

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
)

// File is an open safetensors file. Its methods are safe for concurrent use.
type File struct {
	path     string
	data     []byte // the whole file: a read-only mapping, or a heap copy
	release  func() error
	start    uint64 // offset of the data area in data
	hdr      *header
	mu       sync.RWMutex // guards closed against Tensor racing Close
	closed   bool
	closeErr error
}

// Open opens the safetensors file at path and validates its header. On
// Linux and other Unix systems the file is memory-mapped, so opening costs
// the header only; elsewhere it is read into memory.
//
// The file must not be modified or truncated while it is open: views alias
// its bytes.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "open", Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{File: path, Msg: "stat", Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, invalidf(path, "", "not a regular file")
	}
	size := st.Size()
	if size < headerPrefix {
		return nil, invalidf(path, "", fmt.Sprintf("file is %d bytes, too short for the 8-byte header length", size))
	}
	if uint64(size) > math.MaxInt {
		return nil, &Error{File: path, Msg: fmt.Sprintf("unsupported: file of %d bytes is too large for this platform", size), Err: ErrUnsupported}
	}
	var prefix [headerPrefix]byte
	if _, err := f.ReadAt(prefix[:], 0); err != nil {
		return nil, &Error{File: path, Msg: "reading header length", Err: err}
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > maxHeaderSize {
		return nil, invalidf(path, "", fmt.Sprintf("header length %d exceeds the %d byte limit", n, maxHeaderSize))
	}
	if n > uint64(size)-headerPrefix {
		return nil, invalidf(path, "", fmt.Sprintf("header length %d runs past the end of the file (%d bytes)", n, size))
	}
	data, release, err := mapFile(f, int(size))
	if err != nil {
		return nil, &Error{File: path, Msg: "mapping file", Err: err}
	}
	start := headerPrefix + n
	hdr, err := parseHeader(path, data[headerPrefix:start], uint64(size)-start)
	if err != nil {
		release()
		return nil, err
	}
	return &File{path: path, data: data, release: release, start: start, hdr: hdr}, nil
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Close releases the file's memory. Views returned by Tensor must not be
// used afterwards. Close is idempotent.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		f.closeErr = f.release()
		f.data = nil
	}
	return f.closeErr
}

// Names returns the tensor names, sorted. The slice is the caller's.
func (f *File) Names() []string { return slices.Clone(f.hdr.names) }

// Len returns the number of tensors in the file.
func (f *File) Len() int { return len(f.hdr.names) }

// Has reports whether the file holds a tensor called name.
func (f *File) Has(name string) bool {
	_, ok := f.hdr.tensors[name]
	return ok
}

// Metadata returns a copy of the header's __metadata__ (nil when absent).
func (f *File) Metadata() map[string]string { return maps.Clone(f.hdr.metadata) }

// Info returns the dtype and shape of a tensor without touching its data.
func (f *File) Info(name string) (DType, []int, error) {
	t, ok := f.hdr.tensors[name]
	if !ok {
		return "", nil, &Error{File: f.path, Tensor: name, Msg: "not in file", Err: ErrNotFound}
	}
	return t.dtype, slices.Clone(t.shape), nil
}

// Tensor returns the named tensor. Its Data aliases the file's memory: it is
// read-only (writing to a mapped file faults) and valid until Close.
func (f *File) Tensor(name string) (TensorView, error) {
	t, ok := f.hdr.tensors[name]
	if !ok {
		return TensorView{}, &Error{File: f.path, Tensor: name, Msg: "not in file", Err: ErrNotFound}
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return TensorView{}, &Error{File: f.path, Tensor: name, Msg: "file is closed", Err: os.ErrClosed}
	}
	lo, hi := f.start+t.begin, f.start+t.end
	return TensorView{
		Name:  name,
		DType: t.dtype,
		Shape: slices.Clone(t.shape),
		Data:  f.data[lo:hi:hi], // capped so an append cannot write past the tensor
	}, nil
}
