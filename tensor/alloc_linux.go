package tensor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge marks the whole 2 MiB pages inside [p, p+size) MADV_HUGEPAGE. It
// is advice only: an error (THP disabled, old kernel) changes nothing.
func adviseHuge(p unsafe.Pointer, size uintptr) {
	const huge = 2 << 20
	lo := (uintptr(p) + huge - 1) &^ (huge - 1)
	hi := (uintptr(p) + size) &^ (huge - 1)
	if hi <= lo {
		return
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, lo-uintptr(p))), hi-lo), unix.MADV_HUGEPAGE)
}
