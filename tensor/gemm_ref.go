package tensor

import "math"

// gemmRefF32 is the plain triple loop that every fast kernel is tested against.
func gemmRefF32(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, acc bool) {
	for i := 0; i < m; i++ {
		ai := a[i*lda : i*lda+k]
		for j := 0; j < n; j++ {
			var s float32
			if transB {
				bj := b[j*ldb : j*ldb+k]
				for p, av := range ai {
					s += av * bj[p]
				}
			} else {
				for p, av := range ai {
					s += av * b[p*ldb+j]
				}
			}
			if acc {
				c[i*ldc+j] += s
			} else {
				c[i*ldc+j] = s
			}
		}
	}
}

// gemmRefU16 is gemmRefF32 with B decoded from 16-bit patterns by conv.
func gemmRefU16(m, n, k int, a []float32, lda int, b []uint16, ldb int, transB bool, c []float32, ldc int, acc bool, conv func(uint16) float32) {
	for i := 0; i < m; i++ {
		ai := a[i*lda : i*lda+k]
		for j := 0; j < n; j++ {
			var s float32
			for p, av := range ai {
				var bv uint16
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * conv(bv)
			}
			if acc {
				c[i*ldc+j] += s
			} else {
				c[i*ldc+j] = s
			}
		}
	}
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
