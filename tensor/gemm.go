package tensor

import (
	"sync"
	"unsafe"
)

// This file holds the blocked matrix-product driver shared by every kernel
// implementation: it packs panels of B into contiguous buffers sized for the
// caches (A, the activations, is read in place: its rows are few and stay in
// cache) and hands whole register tiles to a micro-kernel (assembly where the
// CPU allows, gemm_generic.go otherwise). M = 1 goes to a GEMV kernel that
// streams the weights once instead.

// Blocking sizes (in elements). A kc×nr sliver of packed B stays in L1 while
// it meets every row panel of the mc×kc block of A (read in place), which
// stays in L2 beside the kc×nc panel of packed B that the row blocks share.
// nc is small enough that L2 also holds the rows of an unpacked weight that
// the next pack reads, fetched during this panel (256 measured best of 256,
// 512 and 1024: bench/README.md).
const (
	gemmKC = 256
	gemmMC = 144
	gemmNC = 256
)

// packKC is the block depth of a PackedWeight: every row panel of C is read
// and written once per block, so deeper blocks save those passes; the
// slivers (96 KiB of float32 at nr = 32) outgrow L1, but the micro-kernel's
// prefetch brings them from L2 in time (768 against 256: bench/README.md,
// round 6). Unpacked products keep gemmKC: their panels
// are packed per call and must stay in L2 with the rows fetched for the
// next one.
const packKC = 768

// prefetch is what a micro-kernel call fetches ahead, kc/4 cache lines from
// addr on: with run = 0 contiguous lines into L1 (the next packed sliver);
// else into L2, run lines at a time, then skip bytes further (rows of an
// unpacked weight for the next pack).
type prefetch struct {
	addr      uintptr
	run, skip int
}

// nextRows describes the rows of an unpacked transposed B that the next
// packB call will read: rows rows of lines cache lines each, stride bytes
// apart from addr (the first line) on. Zero rows: nothing to fetch.
type nextRows struct {
	addr        uintptr
	rows, lines int
	stride      int
}

// gemmImpl is one implementation of the kernels the driver needs. Tests loop
// over gemmImpls to force each in turn.
type gemmImpl struct {
	name   string
	mr, nr int // register tile of the micro-kernel

	// micro computes the mr×nr tile C = A·Bp (C += A·Bp when acc) over kc,
	// where A is mr rows of kc values read in place (row stride lda) and Bp
	// holds kc groups of nr values of B (packed). C has row stride ldc. pf
	// says what to prefetch meanwhile, a hint only: it is never dereferenced
	// by Go code and may point anywhere.
	micro func(kc int, a []float32, lda int, bp, c []float32, ldc int, acc bool, pf prefetch)

	// gemvT* compute y[j] = Σp x[p]·B[j·ldb+p] for j < n (y[j] += … when
	// acc): M = 1 against a [n,k] weight, one streaming pass over B.
	gemvTF32  func(n, k int, x, b []float32, ldb int, y []float32, acc bool)
	gemvTF16  func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool)
	gemvTBF16 func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool)

	// gemvN* compute y[j] = Σp x[p]·B[p·ldb+j] for j < n (y[j] += … when
	// acc): M = 1 against a [k,n] weight.
	gemvNF32  func(n, k int, x, b []float32, ldb int, y []float32, acc bool)
	gemvNF16  func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool)
	gemvNBF16 func(n, k int, x []float32, b []uint16, ldb int, y []float32, acc bool)

	// packT8, when set, packs the transposed 8 rows of B starting at element
	// off (row stride b.ld): value p of row r goes to dst[p·nr+r], for p
	// below a multiple of 8 that it returns; the caller packs the rest.
	packT8 func(kc int, b bMat, off int, dst []float32, nr int) int
	// packT16 is packT8 for 16 rows (whole 64-byte lines of a 32-wide sliver).
	packT16 func(kc int, b bMat, off int, dst []float32, nr int) int

	// convF16/convBF16 widen len(src) values into dst (used by packing).
	convF16  func(dst []float32, src []uint16)
	convBF16 func(dst []float32, src []uint16)

	// gemvP computes y[j] (+)= Σp x[p]·bp[p·nr+j] for j < nr over kc = len(x)
	// values: M = 1 against one sliver of a PackedWeight.
	gemvP func(x, bp, y []float32, acc bool)
	// gemvPF16/gemvPBF16 are gemvP over a sliver of half values (IEEE half
	// or bfloat16 bits), widened in registers.
	gemvPF16  func(x []float32, bp []uint16, y []float32, acc bool)
	gemvPBF16 func(x []float32, bp []uint16, y []float32, acc bool)
}

// bMat is the B operand in any of its storage types.
type bMat struct {
	f32   []float32
	u16   []uint16
	bf16  bool // u16 holds bfloat16 (else IEEE half)
	ld    int
	trans bool // B is n×k (else k×n)
}

// gemmF32 computes C = A·op(B), or C += A·op(B) when acc. A is m×k, row stride
// lda. If transB, B is n×k with row stride ldb (a PyTorch Linear weight
// [out,in]) and op(B) = Bᵀ; else B is k×n with row stride ldb. C is m×n, row
// stride ldc. Uses the worker pool when the work is large enough.
func gemmF32(procs, m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, acc bool) {
	gemmRun(gemmDefault, m, n, k, a, lda, bMat{f32: b, ld: ldb, trans: transB}, c, ldc, acc, procs)
}

// gemmF32Serial is gemmF32 without the worker pool (for callers that already
// run inside a parallelFor body). Results are identical to gemmF32.
func gemmF32Serial(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, acc bool) {
	gemmRun(gemmDefault, m, n, k, a, lda, bMat{f32: b, ld: ldb, trans: transB}, c, ldc, acc, 1)
}

// gemmF16 is gemmF32 with B stored as IEEE half bits, widened panel by panel.
func gemmF16(procs, m, n, k int, a []float32, lda int, b []uint16, ldb int, transB bool, c []float32, ldc int, acc bool) {
	gemmRun(gemmDefault, m, n, k, a, lda, bMat{u16: b, ld: ldb, trans: transB}, c, ldc, acc, procs)
}

// gemmBF16 is gemmF32 with B stored as bfloat16 bits, widened panel by panel.
func gemmBF16(procs, m, n, k int, a []float32, lda int, b []uint16, ldb int, transB bool, c []float32, ldc int, acc bool) {
	gemmRun(gemmDefault, m, n, k, a, lda, bMat{u16: b, bf16: true, ld: ldb, trans: transB}, c, ldc, acc, procs)
}

// minParallelFlops is the work below which splitting over threads costs more
// than it saves (a wake-up is a few microseconds).
const minParallelFlops = 1 << 18

// gemmRun is the entry of every product: it picks GEMV or the blocked path
// and splits the work over up to procs goroutines of the pool.
func gemmRun(g *gemmImpl, m, n, k int, a []float32, lda int, b bMat, c []float32, ldc int, acc bool, procs int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !acc {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	flops := 2 * m * n * k
	if procs <= 1 || flops < minParallelFlops {
		// Also the one-thread case: no closure for parallelFor, no allocation.
		gemmBlock(g, m, n, k, a, lda, b, 0, c, ldc, acc)
		return
	}
	t := gemmTasks.Get().(*gemmTask)
	*t = gemmTask{g: g, m: m, n: n, k: k, a: a, lda: lda, b: b, c: c, ldc: ldc, acc: acc, procs: procs}
	switch {
	case m == 1:
		// Columns in units of 64 keep each thread's slice of B rows (or of
		// a [k,n] row) whole cache lines.
		t.unit = 64
		t.do((n+t.unit-1)/t.unit, max(1, minParallelFlops/(2*k*t.unit)))
	case n >= m:
		t.unit = g.nr * 2
		t.do((n+t.unit-1)/t.unit, max(1, minParallelFlops/(2*m*k*t.unit)))
	default:
		t.unit, t.byRows = g.mr*2, true
		t.do((m+t.unit-1)/t.unit, max(1, minParallelFlops/(2*n*k*t.unit)))
	}
}

// gemmTask is one product split over the worker pool, in units of unit
// columns of C (or rows, when byRows). Against a PackedWeight w is set and g,
// b and acc are unused. Tasks are recycled through gemmTasks, so that split
// products allocate nothing.
type gemmTask struct {
	g       *gemmImpl
	m, n, k int
	a       []float32
	lda     int
	b       bMat
	w       *PackedWeight
	c       []float32
	ldc     int
	acc     bool
	unit    int
	byRows  bool
	procs   int
}

var gemmTasks = sync.Pool{New: func() any { return new(gemmTask) }}

// do runs units items of the task over the pool, then recycles it.
func (t *gemmTask) do(units, grain int) {
	parallelRun(t.procs, units, grain, t)
	*t = gemmTask{}
	gemmTasks.Put(t)
}

func (t *gemmTask) run(lo, hi int) {
	if t.byRows {
		i0, i1 := lo*t.unit, min(hi*t.unit, t.m)
		if t.w != nil {
			gemmPackedBlock(i1-i0, t.a[i0*t.lda:], t.lda, t.w, 0, t.n, t.c[i0*t.ldc:], t.ldc)
			return
		}
		gemmBlock(t.g, i1-i0, t.n, t.k, t.a[i0*t.lda:], t.lda, t.b, 0, t.c[i0*t.ldc:], t.ldc, t.acc)
		return
	}
	j0, j1 := lo*t.unit, min(hi*t.unit, t.n)
	if t.w != nil {
		gemmPackedBlock(t.m, t.a, t.lda, t.w, j0, j1, t.c, t.ldc)
		return
	}
	gemmBlock(t.g, t.m, j1-j0, t.k, t.a, t.lda, t.b, j0, t.c[j0:], t.ldc, t.acc)
}

// gemmBuf is the per-goroutine scratch of the blocked path, recycled through
// a sync.Pool so that steady-state products do not allocate.
type gemmBuf struct {
	a, b, tile []float32 // a: the zero-padded last row panel of A
	row        [gemmKC]float32
}

var gemmBufs = sync.Pool{New: func() any { return new(gemmBuf) }}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// gemmBlock computes columns [j0, j0+n) of op(B) into c (which starts at
// column j0) on the calling goroutine.
func gemmBlock(g *gemmImpl, m, n, k int, a []float32, lda int, b bMat, j0 int, c []float32, ldc int, acc bool) {
	if m == 1 {
		gemv(g, n, k, a[:k], b, j0, c[:n], acc)
		return
	}
	mr, nr := g.mr, g.nr
	buf := gemmBufs.Get().(*gemmBuf)
	defer gemmBufs.Put(buf)
	// Even out the row blocks: 128 rows become 2×64, not 120+8.
	mc := (m + (m+gemmMC-1)/gemmMC - 1) / ((m + gemmMC - 1) / gemmMC)
	mc = (mc + mr - 1) / mr * mr
	kcMax := min(k, gemmKC)
	ncMax := min((n+nr-1)/nr*nr, gemmNC)
	buf.b = grow(buf.b, ncMax*kcMax)
	buf.tile = grow(buf.tile, mr*nr)
	nIC := (m + mc - 1) / mc
	for jc := 0; jc < n; jc += gemmNC {
		nc := min(gemmNC, n-jc)
		for pc := 0; pc < k; pc += gemmKC {
			kc := min(gemmKC, k-pc)
			accBlk := acc || pc > 0
			packB(g, b, pc, kc, j0+jc, nc, buf.b, buf.row[:])
			// While computing this panel, fetch the rows the next pack
			// transposes into L2: from L3 or memory the 16-row strided
			// reads of the pack wait on every line. The row panels share
			// the rows out.
			next := nextPanel(b, j0, n, k, jc, pc)
			per := (next.rows + nIC - 1) / nIC
			for ic := 0; ic < m; ic += mc {
				mcc := min(mc, m-ic)
				part := next
				part.addr += uintptr(ic / mc * per * next.stride)
				part.rows = max(0, min(per, next.rows-ic/mc*per))
				macroKernel(g, mcc, nc, kc, a[ic*lda+pc:], lda, buf.b, c[ic*ldc+jc:], ldc, accBlk, buf, part)
			}
		}
	}
}

// nextPanel returns the rows of B that gemmBlock packs after panel (jc, pc)
// of columns [j0, j0+n), when B is an unpacked transposed weight.
func nextPanel(b bMat, j0, n, k, jc, pc int) nextRows {
	if !b.trans {
		return nextRows{}
	}
	pc += gemmKC
	if pc >= k {
		pc, jc = 0, jc+gemmNC
	}
	if jc >= n {
		return nextRows{}
	}
	es, first := 4, unsafe.Pointer(nil)
	off := (j0+jc)*b.ld + pc
	if b.f32 != nil {
		first = unsafe.Pointer(&b.f32[off])
	} else {
		es, first = 2, unsafe.Pointer(&b.u16[off])
	}
	addr := uintptr(first)
	lines := (int(addr&63) + min(gemmKC, k-pc)*es + 63) / 64
	return nextRows{addr: addr &^ 63, rows: min(gemmNC, n-jc), lines: lines, stride: b.ld * es}
}

// macroKernel computes the mc×nc block C (+)= A·Bp from A in place (row
// stride lda, starting at the block's first row and column) and packed B
// (slivers of kc×nr, one after another), tile by tile. The rows of a last,
// partial micro-panel are copied into zero-padded scratch so the kernel never
// reads past A; edge tiles of C go through buf.tile (mr×nr scratch).
func macroKernel(g *gemmImpl, mc, nc, kc int, a []float32, lda int, bp, c []float32, ldc int, acc bool, buf *gemmBuf, next nextRows) {
	mr, nr := g.mr, g.nr
	full := mc / mr * mr
	if full < mc {
		buf.a = grow(buf.a, mr*kc)
		for i := 0; i < mr; i++ {
			row := buf.a[i*kc : (i+1)*kc]
			if full+i < mc {
				copy(row, a[(full+i)*lda:(full+i)*lda+kc])
			} else {
				clear(row)
			}
		}
	}
	tile := buf.tile
	// Each micro call prefetches kc/4 cache lines; consecutive row panels
	// cover consecutive parts of the memory after the current sliver, which
	// is the next sliver (or, for a PackedWeight, the next block's first).
	// With next rows to fetch, call i fetches rows from i·per on instead
	// (kc/4 lines: per rows or more, the excess overlapping the next call's).
	sliver := uintptr(nr * kc * 4)
	step := uintptr(kc / 4 * 64)
	calls := (mc + mr - 1) / mr * ((nc + nr - 1) / nr)
	per := (next.rows + calls - 1) / calls
	rowStep := uintptr(per * next.stride)
	rowEnd := next.addr + uintptr(next.rows*next.stride)
	rowPf := prefetch{addr: next.addr, run: next.lines, skip: next.stride - 64*next.lines}
	for jr := 0; jr < nc; jr += nr {
		bs := bp[jr*kc : (jr+nr)*kc]
		nrr := min(nr, nc-jr)
		sliverPf := uintptr(unsafe.Pointer(&bs[0])) + sliver
		for ir := 0; ir < mc; ir += mr {
			pf := prefetch{addr: sliverPf}
			sliverPf += step
			if rowPf.addr < rowEnd {
				pf = rowPf
				rowPf.addr += rowStep
			}
			ai, ldai := a[ir*lda:], lda
			if ir >= full {
				ai, ldai = buf.a, kc
			}
			mrr := min(mr, mc-ir)
			ci := ir*ldc + jr
			if mrr == mr && nrr == nr {
				g.micro(kc, ai, ldai, bs, c[ci:ci+(mr-1)*ldc+nr], ldc, acc, pf)
				continue
			}
			// Edge tile: compute into scratch, then copy the valid part.
			g.micro(kc, ai, ldai, bs, tile, nr, false, pf)
			for i := 0; i < mrr; i++ {
				row := c[ci+i*ldc : ci+i*ldc+nrr]
				t := tile[i*nr : i*nr+nrr]
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

// packB copies op(B)[pc:pc+kc, j0:j0+nc] into slivers of nr columns: sliver s
// holds, for each p, the nr values op(B)[pc+p][j0+s·nr+j]. Missing columns are
// zero. Half-precision B is widened here, one panel at a time. row is
// scratch of at least kc values.
func packB(g *gemmImpl, b bMat, pc, kc, j0, nc int, dst, row []float32) {
	nr := g.nr
	row = row[:kc] // scratch: one widened row of B (trans) or chunk (non-trans)
	for s := 0; s < nc; s += nr {
		d := dst[s*kc : (s+nr)*kc]
		cols := min(nr, nc-s)
		if b.trans {
			j := 0
			for _, k := range []struct {
				rows int
				pack func(kc int, b bMat, off int, dst []float32, nr int) int
			}{{16, g.packT16}, {8, g.packT8}} {
				if k.pack == nil {
					continue
				}
				for ; j+k.rows <= cols; j += k.rows {
					off := (j0+s+j)*b.ld + pc
					done := k.pack(kc, b, off, d[j:], nr)
					if done < kc {
						packTGo(g, b, off+done, kc-done, k.rows, d[done*nr+j:], nr, row[:])
					}
				}
			}
			packTGo(g, b, (j0+s+j)*b.ld+pc, kc, cols-j, d[j:], nr, row[:])
			for j := cols; j < nr; j++ {
				for p := 0; p < kc; p++ {
					d[p*nr+j] = 0
				}
			}
			continue
		}
		for p := 0; p < kc; p++ {
			off := (pc+p)*b.ld + j0 + s
			dp := d[p*nr : p*nr+nr]
			switch {
			case b.f32 != nil:
				copy(dp, b.f32[off:off+cols])
			case b.bf16:
				g.convBF16(dp[:cols], b.u16[off:off+cols])
			default:
				g.convF16(dp[:cols], b.u16[off:off+cols])
			}
			clear(dp[cols:])
		}
	}
}

// packTGo packs rows columns of op(B) (rows of B from element off on, kc
// values each) into dst: value p of row j goes to dst[p·nr+j].
func packTGo(g *gemmImpl, b bMat, off, kc, rows int, dst []float32, nr int, row []float32) {
	if kc == 0 {
		return
	}
	for j := 0; j < rows; j++ {
		o := off + j*b.ld
		var src []float32
		switch {
		case b.f32 != nil:
			src = b.f32[o : o+kc]
		case b.bf16:
			src = row[:kc]
			g.convBF16(src, b.u16[o:o+kc])
		default:
			src = row[:kc]
			g.convF16(src, b.u16[o:o+kc])
		}
		d := dst[j : j+(kc-1)*nr+1]
		for p, v := range src {
			d[p*nr] = v
		}
	}
}

// gemv computes y[j] (+)= Σp x[p]·op(B)[p][j0+j] for j < len(y).
func gemv(g *gemmImpl, n, k int, x []float32, b bMat, j0 int, y []float32, acc bool) {
	switch {
	case b.trans && b.f32 != nil:
		g.gemvTF32(n, k, x, b.f32[j0*b.ld:], b.ld, y, acc)
	case b.trans && b.bf16:
		g.gemvTBF16(n, k, x, b.u16[j0*b.ld:], b.ld, y, acc)
	case b.trans:
		g.gemvTF16(n, k, x, b.u16[j0*b.ld:], b.ld, y, acc)
	case b.f32 != nil:
		g.gemvNF32(n, k, x, b.f32[j0:], b.ld, y, acc)
	case b.bf16:
		g.gemvNBF16(n, k, x, b.u16[j0:], b.ld, y, acc)
	default:
		g.gemvNF16(n, k, x, b.u16[j0:], b.ld, y, acc)
	}
}
