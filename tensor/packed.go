package tensor

import (
	"fmt"
	"runtime"
)

// PackedWeight is a Linear weight [n, k] (the layout MatMulT takes) stored once,
// at model load, in the layout the matrix-product kernels read: float32, cut
// into blocks of gemmKC input rows, each block into slivers of a few output
// columns, p-major. Products against it skip the per-call transposition of
// the weight (a fifth of a BERT layer's matmul time), and the M = 1 (decode)
// product reads it as one sequential stream. A PackedWeight is immutable and
// safe for concurrent use. F16 and BF16 weights are widened to float32 when
// packed, so they take twice their stored size.
type PackedWeight struct {
	impl *gemmImpl // the kernels the layout was made for
	n, k int
	npad int       // n rounded up to impl.nr
	data []float32 // block pc (rows pc…pc+kc of Wᵀ) at pc·npad: npad/nr slivers of kc×nr
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
	b := bMat{ld: w.shape[1], trans: true}
	switch w.dtype {
	case F32:
		b.f32 = w.f32
	case F16:
		b.u16 = w.u16
	case BF16:
		b.u16, b.bf16 = w.u16, true
	default:
		return nil, fmt.Errorf("tensor: PackWeight: unsupported weight dtype %v", w.dtype)
	}
	n, k := w.shape[0], w.shape[1]
	npad := (n + g.nr - 1) / g.nr * g.nr
	pw := &PackedWeight{impl: g, n: n, k: k, npad: npad, data: makeF32(npad * k)}
	if n == 0 {
		return pw, nil
	}
	blocks := (k + gemmKC - 1) / gemmKC
	parallelFor(blocks, 1, func(lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			pc := blk * gemmKC
			kc := min(gemmKC, k-pc)
			packB(g, b, pc, kc, 0, n, pw.data[pc*npad:(pc+kc)*npad])
		}
	})
	return pw, nil
}

// Dims returns the weight's shape [n, k]: n outputs, k inputs.
func (pw *PackedWeight) Dims() (n, k int) { return pw.n, pw.k }

// MatMulTPacked computes dst = x·wᵀ like MatMulT, with w packed by PackWeight.
// x is [..., k], dst [..., n].
func MatMulTPacked(dst, x *Tensor, w *PackedWeight) {
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
	gemmPacked(m, x.f32, k, w, dst.f32, w.n, true)
}

// gemmPacked computes C = A·Wᵀ for A m×k (row stride lda) and C m×n (row
// stride ldc), splitting over the pool when par is set.
func gemmPacked(m int, a []float32, lda int, w *PackedWeight, c []float32, ldc int, par bool) {
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
	if !par || flops < minParallelFlops || runtime.GOMAXPROCS(0) == 1 {
		// Also the one-thread case: no closure for parallelFor, no allocation.
		gemmPackedBlock(m, a, lda, w, 0, n, c, ldc)
		return
	}
	if m == 1 || n >= m {
		// Column ranges in whole slivers (several when m > 1, for the
		// edge-free full tiles).
		unit := g.nr
		if m > 1 {
			unit *= 2
		}
		units := (n + unit - 1) / unit
		grain := max(1, minParallelFlops/(2*m*k*unit))
		parallelFor(units, grain, func(lo, hi int) {
			j0, j1 := lo*unit, min(hi*unit, n)
			gemmPackedBlock(m, a, lda, w, j0, j1, c, ldc)
		})
		return
	}
	unit := g.mr * 2
	units := (m + unit - 1) / unit
	grain := max(1, minParallelFlops/(2*n*k*unit))
	parallelFor(units, grain, func(lo, hi int) {
		i0, i1 := lo*unit, min(hi*unit, m)
		gemmPackedBlock(i1-i0, a[i0*lda:], lda, w, 0, n, c[i0*ldc:], ldc)
	})
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
		tile := buf.tile
		x := a[:k]
		for pc := 0; pc < k; pc += gemmKC {
			kc := min(gemmKC, k-pc)
			blk := w.data[pc*w.npad : (pc+kc)*w.npad]
			for jr := j0; jr < j1; jr += nr {
				bs := blk[jr*kc : (jr+nr)*kc]
				if jr+nr <= j1 {
					g.gemvP(x[pc:pc+kc], bs, c[jr:jr+nr], pc > 0)
					continue
				}
				g.gemvP(x[pc:pc+kc], bs, tile[:nr], false)
				row := c[jr:j1]
				if pc > 0 {
					for j := range row {
						row[j] += tile[j]
					}
				} else {
					copy(row, tile[:len(row)])
				}
			}
		}
		return
	}
	mc := (m + (m+gemmMC-1)/gemmMC - 1) / ((m + gemmMC - 1) / gemmMC)
	mc = (mc + mr - 1) / mr * mr
	// With several row blocks, columns go in panels of gemmNC so that the
	// part of B they share stays in L2 from one row block to the next.
	ncb := nc
	if m > mc {
		ncb = gemmNC
	}
	for pc := 0; pc < k; pc += gemmKC {
		kc := min(gemmKC, k-pc)
		for jc := j0; jc < j1; jc += ncb {
			ncc := min(ncb, j1-jc)
			bp := w.data[pc*w.npad+jc*kc : (pc+kc)*w.npad]
			for ic := 0; ic < m; ic += mc {
				mcc := min(mc, m-ic)
				macroKernel(g, mcc, ncc, kc, a[ic*lda+pc:], lda, bp, c[ic*ldc+jc:], ldc, pc > 0, buf)
			}
		}
	}
}
