package tensor

import (
	"fmt"
	"unsafe"
)

// PackedWeight is a Linear weight [n, k] (the layout MatMulT takes) stored once,
// at model load, in the layout the matrix-product kernels read: cut into
// blocks of packKC input rows, each block into slivers of a few output
// columns, p-major. Products against it skip the per-call transposition of
// the weight (a fifth of a BERT layer's matmul time), and the M = 1 (decode)
// product reads it as one sequential stream. F16 and BF16 weights keep their
// precision and size: the M = 1 kernels widen them in registers, larger
// products a panel at a time into float32 scratch. A PackedWeight is
// immutable and safe for concurrent use.
type PackedWeight struct {
	impl  *gemmImpl // the kernels the layout was made for
	n, k  int
	npad  int   // n rounded up to impl.nr
	dtype DType // F32, F16 or BF16
	// Block pc (rows pc…pc+kc of Wᵀ) at pc·npad: npad/nr slivers of kc×nr;
	// data for F32, half for F16 and BF16 (their bits).
	data []float32
	half []uint16
}

// PackWeight packs w [n, k] (F32, F16 or BF16) for MatMulTPacked. It returns
// an error for a weight that is not 2-D floating point.
func PackWeight(w *Tensor) (*PackedWeight, error) {
	return packWeight(gemmDefault, w)
}

func packWeight(g *gemmImpl, w *Tensor) (*PackedWeight, error) {
	if w.Rank() != 2 {
		return nil, fmt.Errorf("tensor: PackWeight: weight must be 2-D, got shape %v", w.shape)
	}
	switch w.dtype {
	case F32, F16, BF16:
	default:
		return nil, fmt.Errorf("tensor: PackWeight: unsupported weight dtype %v", w.dtype)
	}
	n, k := w.shape[0], w.shape[1]
	npad := (n + g.nr - 1) / g.nr * g.nr
	pw := &PackedWeight{impl: g, n: n, k: k, npad: npad, dtype: w.dtype}
	if w.dtype == F32 {
		pw.data = makeF32(npad * k)
	} else {
		pw.half = makeU16(npad * k)
	}
	if n == 0 {
		return pw, nil
	}
	b := bMat{f32: w.f32, ld: k, trans: true}
	blocks := (k + packKC - 1) / packKC
	parallelFor(defaultProcs(), blocks, 1, func(lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			pc := blk * packKC
			kc := min(packKC, k-pc)
			if w.dtype == F32 {
				var row [packKC]float32
				packB(g, b, pc, kc, 0, n, pw.data[pc*npad:(pc+kc)*npad], row[:])
			} else {
				packHalf(w.u16, k, pc, kc, n, g.nr, pw.half[pc*npad:(pc+kc)*npad])
			}
		}
	})
	// The packed weight is read in full on every product: have it on huge
	// pages even where its memory was in use before (see settleHuge).
	if pw.data != nil {
		settleHuge(unsafe.Pointer(unsafe.SliceData(pw.data)), uintptr(len(pw.data))*4)
	} else {
		settleHuge(unsafe.Pointer(unsafe.SliceData(pw.half)), uintptr(len(pw.half))*2)
	}
	return pw, nil
}

// packHalf is packB for half values kept as they are: rows [0, n) of w
// (row stride k), values pc…pc+kc, into slivers of nr (zero-padded).
func packHalf(w []uint16, k, pc, kc, n, nr int, dst []uint16) {
	for s := 0; s < n; s += nr {
		d := dst[s*kc : (s+nr)*kc]
		for j := 0; j < nr; j++ {
			if s+j >= n {
				for p := 0; p < kc; p++ {
					d[p*nr+j] = 0
				}
				continue
			}
			src := w[(s+j)*k+pc : (s+j)*k+pc+kc]
			for p, v := range src {
				d[p*nr+j] = v
			}
		}
	}
}

// DType returns the precision the weight is stored in.
func (pw *PackedWeight) DType() DType { return pw.dtype }

// Dims returns the weight's shape [n, k]: n outputs, k inputs.
func (pw *PackedWeight) Dims() (n, k int) { return pw.n, pw.k }

// MatMulTPacked computes dst = x·wᵀ like MatMulT, with w packed by PackWeight.
// x is [..., k], dst [..., n].
func (th Threads) MatMulTPacked(dst, x *Tensor, w *PackedWeight) {
	procs := th.Count()
	if x.dtype != F32 || dst.dtype != F32 {
		panic(fmt.Sprintf("tensor: MatMulTPacked needs float32 input and output, got %v and %v", x.dtype, dst.dtype))
	}
	k := x.Dim(-1)
	if k != w.k {
		panic(fmt.Sprintf("tensor: MatMulTPacked: input %v does not match packed weight [%d %d]", x.shape, w.n, w.k))
	}
	m := 0
	if k > 0 {
		m = x.Len() / k
	}
	if dst.Len() != m*w.n || dst.Dim(-1) != w.n {
		panic(fmt.Sprintf("tensor: MatMulTPacked: output %v, want %d rows of %d", dst.shape, m, w.n))
	}
	gemmPacked(m, x.f32, k, w, dst.f32, w.n, procs)
}

// gemmPacked computes C = A·Wᵀ for A m×k (row stride lda) and C m×n (row
// stride ldc), splitting over up to procs goroutines of the pool.
func gemmPacked(m int, a []float32, lda int, w *PackedWeight, c []float32, ldc int, procs int) {
	n, k, g := w.n, w.k, w.impl
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	flops := 2 * m * n * k
	if procs <= 1 || flops < minParallelFlops {
		// Also the one-thread case: no closure for parallelFor, no allocation.
		gemmPackedBlock(m, a, lda, w, 0, n, c, ldc)
		return
	}
	t := gemmTasks.Get().(*gemmTask)
	*t = gemmTask{m: m, n: n, k: k, a: a, lda: lda, w: w, c: c, ldc: ldc, procs: procs}
	if m == 1 || n >= m {
		// Column ranges in whole slivers (several when m > 1, for the
		// edge-free full tiles).
		t.unit = g.nr
		if m > 1 {
			t.unit *= 2
		}
		t.do((n+t.unit-1)/t.unit, max(1, minParallelFlops/(2*m*k*t.unit)))
		return
	}
	t.unit, t.byRows = g.mr*2, true
	t.do((m+t.unit-1)/t.unit, max(1, minParallelFlops/(2*n*k*t.unit)))
}

// gemmPackedBlock computes columns [j0, j1) of C (j0 a multiple of nr) on the
// calling goroutine.
func gemmPackedBlock(m int, a []float32, lda int, w *PackedWeight, j0, j1 int, c []float32, ldc int) {
	g, k := w.impl, w.k
	mr, nr := g.mr, g.nr
	nc := j1 - j0
	buf := gemmBufs.Get().(*gemmBuf)
	defer gemmBufs.Put(buf)
	buf.tile = grow(buf.tile, mr*nr)
	if m == 1 {
		gemvPacked(g, a[:k], w, j0, j1, c, buf.tile)
		return
	}
	mc := (m + (m+gemmMC-1)/gemmMC - 1) / ((m + gemmMC - 1) / gemmMC)
	mc = (mc + mr - 1) / mr * mr
	// With several row blocks, columns go in panels of gemmNC so that the
	// part of B they share stays in L2 from one row block to the next.
	// Half weights are widened a panel at a time into scratch (one pass per
	// weight value, shared by all m rows), panels kept to L2 size too.
	ncb := nc
	if m > mc || w.dtype != F32 {
		ncb = gemmNC
	}
	for pc := 0; pc < k; pc += packKC {
		kc := min(packKC, k-pc)
		for jc := j0; jc < j1; jc += ncb {
			ncc := min(ncb, j1-jc)
			var bp []float32
			if w.dtype == F32 {
				bp = w.data[pc*w.npad+jc*kc : (pc+kc)*w.npad]
			} else {
				ncp := (ncc + nr - 1) / nr * nr
				src := w.half[pc*w.npad+jc*kc : pc*w.npad+(jc+ncp)*kc]
				buf.b = grow(buf.b, len(src))
				if w.dtype == BF16 {
					g.convBF16(buf.b, src)
				} else {
					g.convF16(buf.b, src)
				}
				bp = buf.b
			}
			for ic := 0; ic < m; ic += mc {
				mcc := min(mc, m-ic)
				macroKernel(g, mcc, ncc, kc, a[ic*lda+pc:], lda, bp, c[ic*ldc+jc:], ldc, pc > 0, buf, nextRows{})
			}
		}
	}
}

// gemvPacked computes columns [j0, j1) of y = x·Wᵀ (j0 a multiple of nr),
// sliver by sliver in the order the packed weight lies in memory.
func gemvPacked(g *gemmImpl, x []float32, w *PackedWeight, j0, j1 int, y, tile []float32) {
	nr := g.nr
	for pc := 0; pc < w.k; pc += packKC {
		kc := min(packKC, w.k-pc)
		xs := x[pc : pc+kc]
		for jr := j0; jr < j1; jr += nr {
			full := jr+nr <= j1
			out := tile[:nr]
			if full {
				out = y[jr : jr+nr : jr+nr]
			}
			acc := pc > 0 && full
			off := pc*w.npad + jr*kc
			switch w.dtype {
			case F32:
				g.gemvP(xs, w.data[off:off+nr*kc], out, acc)
			case F16:
				g.gemvPF16(xs, w.half[off:off+nr*kc], out, acc)
			default:
				g.gemvPBF16(xs, w.half[off:off+nr*kc], out, acc)
			}
			if full {
				continue
			}
			row := y[jr:j1]
			if pc > 0 {
				for j := range row {
					row[j] += tile[j]
				}
			} else {
				copy(row, tile[:len(row)])
			}
		}
	}
}
