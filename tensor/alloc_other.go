//go:build !linux

package tensor

import "unsafe"

// adviseHuge does nothing where transparent huge pages cannot be asked for.
func adviseHuge(unsafe.Pointer, uintptr) {}

// settleHuge does nothing where transparent huge pages cannot be asked for.
func settleHuge(unsafe.Pointer, uintptr) {}
