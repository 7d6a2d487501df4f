package tensor

import (
	"fmt"
	"sync"
	"unsafe"
)

// BF16 compute: matrix products whose operands are both rounded to bfloat16
// (round to nearest even) and multiplied in pairs with float32 accumulation
// (VDPBF16PS on CPUs with AVX512_BF16). The weight is rounded once, at
// packing; the activations on the fly, per product. Where the CPU lacks the
// instruction, a BF16Weight holds a float32-compute PackedWeight instead and
// products are exactly those of MatMulTPacked: BF16Compute says which.

const (
	bf16NR = 32  // columns of a sliver: two zmm registers of float32
	bf16MR = 8   // most rows of A per micro-kernel call
	bf16KC = 512 // depth of a packed block (even): a 32 KiB sliver stays in L1
)

// BF16Weight is a Linear weight [n, k] (the layout MatMulT takes) packed by
// PackBF16 for MatMulTBF16. It is immutable and safe for concurrent use.
type BF16Weight struct {
	impl *bf16Impl // nil: fallback holds the weight
	n, k int
	npad int // n rounded up to 32
	kpad int // k rounded up to even
	// Block pc (kc = min(bf16KC, kpad-pc) values of k) at pc·npad: npad/32
	// slivers of kc·32 values, pair p of column j at [2·(p·32+j)], the pair
	// (k = pc+2p, pc+2p+1) side by side as VDPBF16PS reads it.
	data     []uint16
	fallback *PackedWeight
}

// bf16Impl is one implementation of the BF16-compute micro-kernel. Tests
// loop over bf16Impls to force each in turn.
type bf16Impl struct {
	name string
	// conv rounds activations to bfloat16 as F32ToBF16 does, bit for bit.
	conv func(dst []uint16, src []float32)
	// micro computes C (+= when acc) = A·B for mr ≤ 8 rows of A (bfloat16,
	// row stride lda, kp pairs read) and one sliver of B (kp groups of 32
	// pairs): C is mr×32, row stride ldc.
	micro func(mr, kp int, a []uint16, lda int, b []uint16, c []float32, ldc int, acc bool)
}

// BF16Compute reports whether this CPU multiplies in bfloat16 (AVX512_BF16).
// When it does not, PackBF16 keeps float32 compute (a PackedWeight of the
// weight's own precision) and MatMulTBF16 gives float32 results.
func BF16Compute() bool { return bf16Default != nil }

// Dims returns the weight's shape [n, k]: n outputs, k inputs.
func (w *BF16Weight) Dims() (n, k int) { return w.n, w.k }

// BF16 reports whether products against w run in bfloat16 (false: the
// float32 fallback of a CPU without AVX512_BF16).
func (w *BF16Weight) BF16() bool { return w.impl != nil }

// PackBF16 packs w [n, k] (F32, F16 or BF16) for MatMulTBF16, rounding it to
// bfloat16 (nearest even) when the CPU computes in bfloat16, else packing
// it for float32 compute (see BF16Compute). It returns an error for a
// weight that is not 2-D floating point.
func PackBF16(w *Tensor) (*BF16Weight, error) {
	if bf16Default == nil {
		p, err := PackWeight(w)
		if err != nil {
			return nil, fmt.Errorf("tensor: PackBF16: %w", err)
		}
		n, k := p.Dims()
		return &BF16Weight{n: n, k: k, fallback: p}, nil
	}
	return packBF16(bf16Default, w)
}

func packBF16(g *bf16Impl, w *Tensor) (*BF16Weight, error) {
	if w.Rank() != 2 {
		return nil, fmt.Errorf("tensor: PackBF16: weight must be 2-D, got shape %v", w.shape)
	}
	switch w.dtype {
	case F32, F16, BF16:
	default:
		return nil, fmt.Errorf("tensor: PackBF16: unsupported weight dtype %v", w.dtype)
	}
	n, k := w.shape[0], w.shape[1]
	npad := (n + bf16NR - 1) / bf16NR * bf16NR
	kpad := (k + 1) &^ 1
	pw := &BF16Weight{impl: g, n: n, k: k, npad: npad, kpad: kpad, data: makeU16(npad * kpad)}
	parallelFor(defaultProcs(), npad/bf16NR, 1, func(lo, hi int) {
		f := make([]float32, kpad)
		h := make([]uint16, kpad)
		for s := lo; s < hi; s++ {
			for j := 0; j < bf16NR && s*bf16NR+j < n; j++ {
				i := s*bf16NR + j
				switch w.dtype {
				case F32:
					F32ToBF16(h[:k], w.f32[i*k:(i+1)*k])
				case F16:
					F16ToF32(f[:k], w.u16[i*k:(i+1)*k])
					F32ToBF16(h[:k], f[:k])
				default:
					copy(h, w.u16[i*k:(i+1)*k])
				}
				if k < kpad {
					h[k] = 0
				}
				for pc := 0; pc < kpad; pc += bf16KC {
					kc := min(bf16KC, kpad-pc)
					sl := pw.data[pc*npad+s*bf16NR*kc:][:bf16NR*kc]
					for p := 0; p < kc/2; p++ {
						sl[2*(p*bf16NR+j)] = h[pc+2*p]
						sl[2*(p*bf16NR+j)+1] = h[pc+2*p+1]
					}
				}
			}
		}
	})
	settleHuge(unsafe.Pointer(unsafe.SliceData(pw.data)), uintptr(len(pw.data))*2)
	return pw, nil
}

// bf16Buf is the per-call scratch of a BF16 product.
type bf16Buf struct {
	a    []uint16
	tile [bf16MR * bf16NR]float32
}

var bf16Bufs = sync.Pool{New: func() any { return new(bf16Buf) }}

// MatMulTBF16 computes dst = x·wᵀ like MatMulT, with w packed by PackBF16:
// in bfloat16 with float32 accumulation where the CPU allows (x rounded to
// bfloat16 on the way), else in float32. x is [..., k], dst [..., n].
func (th Threads) MatMulTBF16(dst, x *Tensor, w *BF16Weight) {
	procs := th.Count()
	if x.dtype != F32 || dst.dtype != F32 {
		panic(fmt.Sprintf("tensor: MatMulTBF16 needs float32 input and output, got %v and %v", x.dtype, dst.dtype))
	}
	k := x.Dim(-1)
	if k != w.k {
		panic(fmt.Sprintf("tensor: MatMulTBF16: input %v does not match packed weight [%d %d]", x.shape, w.n, w.k))
	}
	m := leadingRows(x)
	if dst.Len() != m*w.n || dst.Dim(-1) != w.n {
		panic(fmt.Sprintf("tensor: MatMulTBF16: output %v, want %d rows of %d", dst.shape, m, w.n))
	}
	if w.fallback != nil {
		gemmPacked(m, x.f32, k, w.fallback, dst.f32, w.n, procs)
		return
	}
	matMulTBF16(w.impl, m, x.f32, w, dst.f32, procs)
}

// matMulTBF16 computes c [m, n] = a [m, k]·wᵀ with kernel g, over the pool
// on up to procs goroutines.
func matMulTBF16(g *bf16Impl, m int, a []float32, w *BF16Weight, c []float32, procs int) {
	n, k, kpad := w.n, w.k, w.kpad
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		return
	}
	buf := bf16Bufs.Get().(*bf16Buf)
	defer bf16Bufs.Put(buf)
	if cap(buf.a) < m*kpad {
		buf.a = make([]uint16, m*kpad)
	}
	ab := buf.a[:m*kpad]
	for i := 0; i < m; i++ {
		g.conv(ab[i*kpad:i*kpad+k], a[i*k:(i+1)*k])
		if k < kpad {
			ab[i*kpad+k] = 0
		}
	}
	slivers := w.npad / bf16NR
	if procs <= 1 || 2*m*n*k < minParallelFlops {
		bf16Slivers(g, m, ab, w, 0, slivers, c, buf)
		return
	}
	t := bf16Tasks.Get().(*bf16Task)
	*t = bf16Task{g: g, m: m, a: ab, w: w, c: c}
	parallelRun(procs, slivers, max(1, minParallelFlops/(2*m*k*bf16NR)), t)
	*t = bf16Task{}
	bf16Tasks.Put(t)
}

// bf16Task is a BF16 product split over the pool by slivers.
type bf16Task struct {
	g *bf16Impl
	m int
	a []uint16
	w *BF16Weight
	c []float32
}

var bf16Tasks = sync.Pool{New: func() any { return new(bf16Task) }}

func (t *bf16Task) run(lo, hi int) {
	buf := bf16Bufs.Get().(*bf16Buf)
	bf16Slivers(t.g, t.m, t.a, t.w, lo, hi, t.c, buf)
	bf16Bufs.Put(buf)
}

// bf16Slivers computes the columns of slivers [s0, s1) for all m rows of
// ab (bfloat16, row stride kpad), block of k by block so that each sliver
// block stays in L1 while every row tile meets it.
func bf16Slivers(g *bf16Impl, m int, ab []uint16, w *BF16Weight, s0, s1 int, c []float32, buf *bf16Buf) {
	n, kpad, npad := w.n, w.kpad, w.npad
	for pc := 0; pc < kpad; pc += bf16KC {
		kc := min(bf16KC, kpad-pc)
		acc := pc > 0
		for s := s0; s < s1; s++ {
			bs := w.data[pc*npad+s*bf16NR*kc:][:bf16NR*kc]
			j0 := s * bf16NR
			nc := min(bf16NR, n-j0)
			for i0 := 0; i0 < m; i0 += bf16MR {
				mr := min(bf16MR, m-i0)
				as := ab[i0*kpad+pc:]
				if nc == bf16NR {
					g.micro(mr, kc/2, as, kpad, bs, c[i0*n+j0:], n, acc)
					continue
				}
				g.micro(mr, kc/2, as, kpad, bs, buf.tile[:], bf16NR, false)
				for i := 0; i < mr; i++ {
					row := c[(i0+i)*n+j0 : (i0+i)*n+n]
					t := buf.tile[i*bf16NR : i*bf16NR+nc]
					if acc {
						for j := range row {
							row[j] += t[j]
						}
					} else {
						copy(row, t)
					}
				}
			}
		}
	}
}

// bf16Go is the pure-Go micro-kernel: the same products as VDPBF16PS (exact
// float32 products of bfloat16 values, float32 sums), for testing the
// packing and the driver on every machine. It is not used for compute:
// without AVX512_BF16, float32 compute is faster.
var bf16Go = &bf16Impl{name: "go", conv: F32ToBF16, micro: bf16MicroGo}

func bf16MicroGo(mr, kp int, a []uint16, lda int, b []uint16, c []float32, ldc int, acc bool) {
	for i := 0; i < mr; i++ {
		ai := a[i*lda : i*lda+2*kp]
		for j := 0; j < bf16NR; j++ {
			var s float32
			for p := 0; p < kp; p++ {
				s += bf16ToF32(ai[2*p])*bf16ToF32(b[2*(p*bf16NR+j)]) + bf16ToF32(ai[2*p+1])*bf16ToF32(b[2*(p*bf16NR+j)+1])
			}
			if acc {
				c[i*ldc+j] += s
			} else {
				c[i*ldc+j] = s
			}
		}
	}
}
