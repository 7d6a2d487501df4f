//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || solaris || illumos || aix)

package safetensors

import (
	"io"
	"os"
)

// mapFile reads the first size bytes of f into memory, for platforms where
// this package does not memory-map.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, int64(size)), data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// mapped reports whether Open maps files instead of reading them.
const mapped = false
