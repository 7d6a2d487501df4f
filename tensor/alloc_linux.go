package tensor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge marks the 2 MiB pages that [p, p+size) touches MADV_HUGEPAGE,
// the partial ones at either end included. It is advice only: an error (THP
// disabled, old kernel) changes nothing. The ends matter for buffers of a few
// MiB, such as the packed weights of a small model: the interior alone would
// leave a third of them on 4 KiB pages. Marking a neighbour's part of a page
// is harmless: the kernel only uses a huge page where none of it has been
// touched yet, which, as large buffers come fresh from the OS and are
// written in order, is the common case for the page at the end.
func adviseHuge(p unsafe.Pointer, size uintptr) {
	const huge = 2 << 20
	lo := uintptr(p) &^ (huge - 1)
	hi := (uintptr(p) + size + huge - 1) &^ (huge - 1)
	madvise(lo, hi-lo, unix.MADV_HUGEPAGE)
}

// settleHuge asks the kernel to move [p, p+size), once written, onto huge
// pages now (MADV_COLLAPSE, Linux 6.1 on), for long-lived buffers that are
// streamed often: adviseHuge only helps memory that nothing has touched
// yet, while a model's weights are usually packed into memory the heap has
// used before. Advice only: errors change nothing.
func settleHuge(p unsafe.Pointer, size uintptr) {
	if size < hugeMin {
		return
	}
	const huge = 2 << 20
	lo := uintptr(p) &^ (huge - 1)
	hi := (uintptr(p) + size + huge - 1) &^ (huge - 1)
	madvise(lo, hi-lo, unix.MADV_COLLAPSE)
}

// madvise is the raw system call: the range starts before the Go object it
// covers, which an unsafe.Pointer must not (checkptr).
func madvise(addr, size uintptr, advice int) {
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, size, uintptr(advice))
}
