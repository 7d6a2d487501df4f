package tensor

import "unsafe"

// Large buffers (weights, activations of long sequences) are read in long
// streams, where 4 KiB pages cost a TLB miss every 4 KiB. makeF32 and makeU16
// ask the OS for transparent huge pages over the 2 MiB pages the buffer
// spans before anything touches it (on Linux with THP in "madvise" mode,
// the common default, nothing else gets them), which reads long streams
// faster (bench/README.md). Smaller buffers are plain makes.

// hugeMin is the size from which a buffer is worth advising.
const hugeMin = 1 << 20

func makeF32(n int) []float32 {
	s := make([]float32, n)
	if n*4 >= hugeMin {
		adviseHuge(unsafe.Pointer(unsafe.SliceData(s)), uintptr(n)*4)
	}
	return s
}

func makeU16(n int) []uint16 {
	s := make([]uint16, n)
	if n*2 >= hugeMin {
		adviseHuge(unsafe.Pointer(unsafe.SliceData(s)), uintptr(n)*2)
	}
	return s
}
