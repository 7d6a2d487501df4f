package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// Q8 weights: block-wise symmetric int8 along the input dimension, as
// llama.cpp's Q8_0. Each row of a weight [n, k] is cut into blocks of
// Q8Block inputs; a block keeps 32 int8 values q and one IEEE-half scale d,
// and stands for the values q·d (34 bytes per 32 weights). A k that is not
// a multiple of 32 has its last block padded with zeros, which add nothing
// to any product.
//
// Products quantize the activations the same way, per row and block
// (int8 with a float32 scale), so that every block is one integer dot
// product: y[j] = Σ_blocks d_w·d_x·Σ q_w·q_x. The integer sums are exact;
// only the float scaling and the float sum over blocks round, and all
// kernels (pure Go, AVX2, AVX-VNNI, AVX-512 VNNI) give the same integer sums.
//
// With VNNI, VPDPBUSD multiplies unsigned by signed bytes: the activations
// are stored as q_x+128 (unsigned) and each block carries the correction
// 128·Σq_w, precomputed here, which the kernel subtracts.

// Q8Block is the number of inputs that share one scale in a Q8Weight.
const Q8Block = 32

const (
	q8NR = 16 // rows of a sliver: one int32 lane each in a zmm register
	q8MR = 8  // most activation rows one kernel call handles
	// q8BlockBytes is one block of a sliver: 8 steps of 16 rows × 4 values
	// (the bytes VPDPBUSD reads per lane), then the 16 scales (F16 bits),
	// then the 16 sums Σq_w (int16), so that a sliver is one sequential
	// stream: 36 bytes per 32 weights with the sums.
	q8BlockBytes = q8NR*Q8Block + q8NR*2 + q8NR*2
	q8ScaleOff   = q8NR * Q8Block
	q8SumOff     = q8ScaleOff + q8NR*2
)

// Q8Weight is a Linear weight [n, k] (the layout MatMulT takes) quantized by
// QuantizeQ8 for MatMulTQ8. It is immutable and safe for concurrent use.
type Q8Weight struct {
	n, k int
	kb   int // blocks per row: ceil(k/32)
	// Sliver s (rows 16s…16s+15), block b at (s·kb+b)·q8BlockBytes; rows
	// past n are zero.
	data []byte
}

// Dims returns the weight's shape [n, k]: n outputs, k inputs.
func (w *Q8Weight) Dims() (n, k int) { return w.n, w.k }

// Bytes returns the memory the quantized weight occupies.
func (w *Q8Weight) Bytes() int { return len(w.data) }

// QuantizeQ8 quantizes w [n, k] (F32, F16 or BF16) to int8 blocks of 32 with
// one half-precision scale each. Each block's scale is max|w|/127 rounded to
// half precision; values are rounded to the nearest multiple of it (halves
// away from zero). It returns an error for a weight that is not 2-D floating
// point or that holds a NaN or an infinity (naming the row).
func QuantizeQ8(w *Tensor) (*Q8Weight, error) {
	if w.Rank() != 2 {
		return nil, fmt.Errorf("tensor: QuantizeQ8: weight must be 2-D, got shape %v", w.shape)
	}
	switch w.dtype {
	case F32, F16, BF16:
	default:
		return nil, fmt.Errorf("tensor: QuantizeQ8: unsupported weight dtype %v", w.dtype)
	}
	n, k := w.shape[0], w.shape[1]
	kb := (k + Q8Block - 1) / Q8Block
	slivers := (n + q8NR - 1) / q8NR
	q := &Q8Weight{n: n, k: k, kb: kb, data: makeBytes(slivers * kb * q8BlockBytes)}
	errs := make([]error, slivers)
	parallelFor(defaultProcs(), slivers, 1, func(lo, hi int) {
		row := make([]float32, kb*Q8Block)
		for s := lo; s < hi; s++ {
			for r := 0; r < q8NR && s*q8NR+r < n; r++ {
				i := s*q8NR + r
				switch w.dtype {
				case F32:
					copy(row, w.f32[i*k:(i+1)*k])
				case F16:
					F16ToF32(row[:k], w.u16[i*k:(i+1)*k])
				default:
					BF16ToF32(row[:k], w.u16[i*k:(i+1)*k])
				}
				clear(row[k:])
				if err := q.putRow(s, r, row); err != nil {
					errs[s] = fmt.Errorf("tensor: QuantizeQ8: row %d of weight [%d %d]: %w", i, n, k, err)
					break
				}
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	// Read in full on every product: on huge pages, as PackWeight's.
	settleHuge(unsafe.Pointer(unsafe.SliceData(q.data)), uintptr(len(q.data)))
	return q, nil
}

// makeBytes is makeF32 for bytes (see alloc.go).
func makeBytes(n int) []byte {
	s := make([]byte, n)
	if n >= hugeMin {
		adviseHuge(unsafe.Pointer(unsafe.SliceData(s)), uintptr(n))
	}
	return s
}

// putRow quantizes row (kb·32 values, zero-padded) into row r of sliver s.
func (w *Q8Weight) putRow(s, r int, row []float32) error {
	for b := 0; b < w.kb; b++ {
		vals := row[b*Q8Block : (b+1)*Q8Block]
		// max |v| on the bits: for non-negative floats their order is the
		// integers' order, and an exponent of all ones is Inf or NaN.
		var amaxBits uint32
		for p, v := range vals {
			a := math.Float32bits(v) & 0x7fffffff
			if a >= 0x7f800000 {
				return fmt.Errorf("value %v at column %d", v, b*Q8Block+p)
			}
			amaxBits = max(amaxBits, a)
		}
		amax := math.Float32frombits(amaxBits)
		// Round with the stored (half) scale, so that q·d is the nearest
		// representable value to v.
		dh := f32ToF16(min(amax/127, 65504))
		d := f16ToF32(dh)
		var inv float32
		if d != 0 {
			inv = 1 / d
		}
		blk := w.data[(s*w.kb+b)*q8BlockBytes:][:q8BlockBytes]
		var sum int
		for t := 0; t < Q8Block/4; t++ {
			dst := blk[t*q8NR*4+r*4:][:4]
			for u, v := range vals[4*t : 4*t+4] {
				qv := int8(max(-127, min(127, roundHalfAway(float32(v*inv)))))
				dst[u] = byte(qv)
				sum += int(qv)
			}
		}
		binary.LittleEndian.PutUint16(blk[q8ScaleOff+2*r:], dh)
		binary.LittleEndian.PutUint16(blk[q8SumOff+2*r:], uint16(int16(sum)))
	}
	return nil
}

func roundHalfAway(v float32) int32 {
	if v < 0 {
		return int32(v - 0.5)
	}
	return int32(v + 0.5)
}

// Dequantize returns the weight the quantized values stand for, as float32
// [n, k]: each value times its block's scale.
func (w *Q8Weight) Dequantize() *Tensor {
	t := New(F32, w.n, w.k)
	out := t.f32
	for i := 0; i < w.n; i++ {
		s, r := i/q8NR, i%q8NR
		for b := 0; b < w.kb; b++ {
			blk := w.data[(s*w.kb+b)*q8BlockBytes:][:q8BlockBytes]
			d := f16ToF32(binary.LittleEndian.Uint16(blk[q8ScaleOff+2*r:]))
			for p := 0; p < Q8Block && b*Q8Block+p < w.k; p++ {
				out[i*w.k+b*Q8Block+p] = float32(int8(blk[(p/4)*q8NR*4+r*4+p%4])) * d
			}
		}
	}
	return t
}

// quantizeRowQ8 quantizes the activations x (k values) into kb blocks: xq
// gets q+128 per value (zero padded past k, i.e. 128), dx the block scales
// max|x|/127. Values are rounded to the nearest multiple (halves away from
// zero). Non-finite activations give meaningless outputs, as in any product.
func quantizeRowQ8(xq []byte, dx []float32, x []float32) {
	kb := len(dx)
	xq = xq[:kb*Q8Block]
	for b := 0; b < kb; b++ {
		lo := b * Q8Block
		vals := x[lo:min(lo+Q8Block, len(x))]
		var amax float32
		for _, v := range vals {
			amax = max(amax, math.Float32frombits(math.Float32bits(v)&0x7fffffff))
		}
		d := amax / 127
		var inv float32
		if amax > 0 {
			inv = 127 / amax
		}
		dx[b] = d
		dst := xq[lo : lo+Q8Block]
		for p, v := range vals {
			// float32(…) rounds the product on its own (no fused
			// multiply-add), as the assembly quantizer does.
			dst[p] = byte(max(-127, min(127, roundHalfAway(float32(v*inv)))) + 128)
		}
		for p := len(vals); p < Q8Block; p++ {
			dst[p] = 128
		}
	}
}

// q8Impl is one implementation of the Q8 kernel. Tests loop over q8Impls
// to force each in turn.
type q8Impl struct {
	name string
	// quant quantizes one row of activations, as quantizeRowQ8 (bit for
	// bit: the reference products are computed from its output).
	quant func(xq []byte, dx []float32, x []float32)
	// tile computes, for rows i < mr (1…8) of quantized activations (xq:
	// kb·32 bytes a row, dx: kb scales a row) against one sliver w (kb
	// blocks), y[i·ldy+j] = Σ_b d_w[j,b]·dx[i,b]·Σ q_w·q_x for j < 16.
	tile func(mr, kb int, xq []byte, dx []float32, w []byte, y []float32, ldy int)
	// tile2, when set, is tile over two adjacent slivers (w holds 2·kb
	// blocks, y gets 32 columns) for mr ≤ q8MR2 rows: products of several
	// rows use it, as it shares each activation load between the two.
	tile2 func(mr, kb int, xq []byte, dx []float32, w []byte, y []float32, ldy int)
}

// q8MR2 is the most rows of a tile2 call.
const q8MR2 = 6

// q8Go is the pure-Go kernel, the fallback everywhere.
var q8Go = &q8Impl{name: "go", quant: quantizeRowQ8, tile: q8TileGo}

func q8TileGo(mr, kb int, xq []byte, dx []float32, w []byte, y []float32, ldy int) {
	var scale [q8NR]float32
	for i := 0; i < mr; i++ {
		var acc [q8NR]float32
		for b := 0; b < kb; b++ {
			blk := w[b*q8BlockBytes : (b+1)*q8BlockBytes]
			xb := xq[(i*kb+b)*Q8Block:][:Q8Block]
			d := dx[i*kb+b]
			for r := range scale {
				scale[r] = f16ToF32(binary.LittleEndian.Uint16(blk[q8ScaleOff+2*r:]))
			}
			var sums [q8NR]int32
			for t := 0; t < Q8Block/4; t++ {
				x0, x1, x2, x3 := int32(xb[4*t])-128, int32(xb[4*t+1])-128, int32(xb[4*t+2])-128, int32(xb[4*t+3])-128
				ws := blk[t*q8NR*4 : (t+1)*q8NR*4]
				for r := range sums {
					sums[r] += x0*int32(int8(ws[4*r])) + x1*int32(int8(ws[4*r+1])) + x2*int32(int8(ws[4*r+2])) + x3*int32(int8(ws[4*r+3]))
				}
			}
			for r, s := range sums {
				acc[r] += float32(s) * scale[r] * d
			}
		}
		copy(y[i*ldy:i*ldy+q8NR], acc[:])
	}
}

// q8Buf is the per-call scratch of a Q8 product, recycled so that
// steady-state products do not allocate.
type q8Buf struct {
	xq   []byte
	dx   []float32
	tile [q8MR * q8NR]float32
}

var q8Bufs = sync.Pool{New: func() any { return new(q8Buf) }}

// MatMulTQ8 computes dst = x·wᵀ like MatMulT, with w quantized by
// QuantizeQ8; each row of x is quantized to int8 blocks on the way (see
// Q8Block). x is [..., k] float32, dst [..., n] float32.
func (th Threads) MatMulTQ8(dst, x *Tensor, w *Q8Weight) {
	procs := th.Count()
	if x.dtype != F32 || dst.dtype != F32 {
		panic(fmt.Sprintf("tensor: MatMulTQ8 needs float32 input and output, got %v and %v", x.dtype, dst.dtype))
	}
	k := x.Dim(-1)
	if k != w.k {
		panic(fmt.Sprintf("tensor: MatMulTQ8: input %v does not match quantized weight [%d %d]", x.shape, w.n, w.k))
	}
	m := leadingRows(x)
	if dst.Len() != m*w.n || dst.Dim(-1) != w.n {
		panic(fmt.Sprintf("tensor: MatMulTQ8: output %v, want %d rows of %d", dst.shape, m, w.n))
	}
	matMulTQ8(q8Default, m, x.f32, w, dst.f32, procs)
}

// matMulTQ8 computes c [m, n] = a [m, k]·wᵀ with kernel g, over the pool
// on up to procs goroutines.
func matMulTQ8(g *q8Impl, m int, a []float32, w *Q8Weight, c []float32, procs int) {
	n, k, kb := w.n, w.k, w.kb
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		return
	}
	buf := q8Bufs.Get().(*q8Buf)
	defer q8Bufs.Put(buf)
	if cap(buf.xq) < m*kb*Q8Block {
		buf.xq = make([]byte, m*kb*Q8Block)
		buf.dx = make([]float32, m*kb)
	}
	xq, dx := buf.xq[:m*kb*Q8Block], buf.dx[:m*kb]
	slivers := (n + q8NR - 1) / q8NR
	if procs <= 1 || 2*m*n*k < minParallelFlops {
		quantizeRowsQ8(g, m, k, a, xq, dx)
		q8Slivers(g, m, xq, dx, w, 0, slivers, c, buf)
		return
	}
	t := q8Tasks.Get().(*q8Task)
	*t = q8Task{g: g, m: m, k: k, a: a, xq: xq, dx: dx, w: w, c: c, quant: true}
	// The activations of a prefill are worth quantizing in parallel too
	// (a few ns a value: a tenth of a 128-row product otherwise).
	if m*k >= q8ParQuant {
		parallelRun(procs, m, max(1, q8ParQuant/k), t)
	} else {
		quantizeRowsQ8(g, m, k, a, xq, dx)
	}
	t.quant = false
	parallelRun(procs, slivers, max(1, minParallelFlops/(2*m*k*q8NR)), t)
	*t = q8Task{}
	q8Tasks.Put(t)
}

// q8ParQuant is the number of activation values from which they are
// quantized over the pool.
const q8ParQuant = 1 << 14

// quantizeRowsQ8 quantizes rows [0, m) of a (k values each) into xq and dx
// with g's quantizer.
func quantizeRowsQ8(g *q8Impl, m, k int, a []float32, xq []byte, dx []float32) {
	kb := (k + Q8Block - 1) / Q8Block
	for i := 0; i < m; i++ {
		g.quant(xq[i*kb*Q8Block:(i+1)*kb*Q8Block], dx[i*kb:(i+1)*kb], a[i*k:(i+1)*k])
	}
}

// q8Task is a Q8 product split over the pool: by rows of activations to
// quantize while quant is set, then by slivers.
type q8Task struct {
	g     *q8Impl
	m, k  int
	a     []float32
	xq    []byte
	dx    []float32
	w     *Q8Weight
	c     []float32
	quant bool
}

var q8Tasks = sync.Pool{New: func() any { return new(q8Task) }}

func (t *q8Task) run(lo, hi int) {
	if t.quant {
		kb := t.w.kb
		quantizeRowsQ8(t.g, hi-lo, t.k, t.a[lo*t.k:], t.xq[lo*kb*Q8Block:], t.dx[lo*kb:])
		return
	}
	buf := q8Bufs.Get().(*q8Buf)
	q8Slivers(t.g, t.m, t.xq, t.dx, t.w, lo, hi, t.c, buf)
	q8Bufs.Put(buf)
}

// q8Slivers computes the columns of slivers [s0, s1) for all m rows; edge
// columns past n go through buf.tile.
func q8Slivers(g *q8Impl, m int, xq []byte, dx []float32, w *Q8Weight, s0, s1 int, c []float32, buf *q8Buf) {
	n, kb := w.n, w.kb
	sz := kb * q8BlockBytes
	for s := s0; s < s1; s++ {
		if g.tile2 != nil && m > 1 && s+1 < s1 && (s+2)*q8NR <= n {
			// Two whole slivers at once.
			ws := w.data[s*sz : (s+2)*sz]
			j0 := s * q8NR
			for i0 := 0; i0 < m; i0 += q8MR2 {
				mr := min(q8MR2, m-i0)
				g.tile2(mr, kb, xq[i0*kb*Q8Block:], dx[i0*kb:], ws, c[i0*n+j0:], n)
			}
			s++
			continue
		}
		ws := w.data[s*sz : (s+1)*sz]
		j0 := s * q8NR
		nc := min(q8NR, n-j0)
		for i0 := 0; i0 < m; i0 += q8MR {
			mr := min(q8MR, m-i0)
			xs, ds := xq[i0*kb*Q8Block:], dx[i0*kb:]
			if nc == q8NR {
				g.tile(mr, kb, xs, ds, ws, c[i0*n+j0:], n)
				continue
			}
			g.tile(mr, kb, xs, ds, ws, buf.tile[:], q8NR)
			for i := 0; i < mr; i++ {
				copy(c[(i0+i)*n+j0:(i0+i)*n+n], buf.tile[i*q8NR:])
			}
		}
	}
}

// leadingRows is the number of rows of x [..., k]: the product of its
// leading dimensions (also when k is 0).
func leadingRows(x *Tensor) int {
	m := 1
	for _, d := range x.shape[:max(0, len(x.shape)-1)] {
		m *= d
	}
	return m
}
