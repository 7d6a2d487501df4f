package nn

import (
	"fmt"
	"math"

	"github.com/embrace-go/embrace/tensor"
)

// PagedKVCache holds the keys and values of every attention layer for a
// batch of sequences, each sequence with its own length, in pages of
// PageSize positions: one page list per layer and sequence.
//
// Pages rather than one buffer per sequence grown by doubling: a doubling
// buffer copies everything it holds at each growth (and briefly needs both
// copies), while a page list only appends a page, so nothing stored is ever
// moved, memory follows each sequence's own length to within a page, and
// truncating or resetting hands whole pages to a free list that later growth
// takes from first. A fresh cache allocates one page per layer every
// PageSize positions of a sequence; a reset or truncated one reuses its
// pages and allocates nothing. Attention reads a page at a time, so the
// pages need not be adjacent.
//
// Keys and values may be stored in F16 or BF16 to halve the memory; they
// are rounded once when stored and widened to float32 a page at a time when
// attended.
//
// Padding is never stored: a left-padded batch of prompts of different
// lengths keeps each prompt's own positions, and each sequence attends to
// its own keys only. A PagedKVCache belongs to one goroutine at a time.
type PagedKVCache struct {
	Layers, Batch    int
	KVHeads, HeadDim int
	Cap, PageSize    int
	DType            tensor.DType // F32, F16 or BF16
	width            int          // KVHeads·HeadDim
	pages            [][]*kvPage  // [layer·Batch + b]: the sequence's pages in order
	free             []*kvPage
	lens             []int // committed positions per sequence
}

// kvPage is PageSize positions of keys and values, [PageSize, width] each,
// in the cache's storage type.
type kvPage struct {
	k, v   []float32
	kh, vh []uint16
}

// NewPagedKVCache returns an empty cache for batch sequences of up to
// capacity positions each. pageSize 0 means 64.
func NewPagedKVCache(layers, batch, kvHeads, headDim, capacity, pageSize int, dt tensor.DType) (*PagedKVCache, error) {
	if pageSize == 0 {
		pageSize = 64
	}
	if layers <= 0 || batch <= 0 || kvHeads <= 0 || headDim <= 0 || capacity <= 0 || pageSize <= 0 {
		return nil, fmt.Errorf("kv cache: %d layers, %d sequences, %d kv heads of %d, capacity %d, pages of %d: all must be positive",
			layers, batch, kvHeads, headDim, capacity, pageSize)
	}
	if dt != tensor.F32 && dt != tensor.F16 && dt != tensor.BF16 {
		return nil, fmt.Errorf("kv cache: storage type %v (want F32, F16 or BF16)", dt)
	}
	// Bound what the full cache could come to before anything is made.
	if need := 2 * float64(layers) * float64(batch) * float64(capacity) * float64(kvHeads*headDim) * float64(dt.Size()); need > 1<<38 {
		return nil, fmt.Errorf("kv cache: %d sequences of %d positions would need %.0f GiB", batch, capacity, need/(1<<30))
	}
	c := &PagedKVCache{Layers: layers, Batch: batch, KVHeads: kvHeads, HeadDim: headDim,
		Cap: capacity, PageSize: pageSize, DType: dt, width: kvHeads * headDim,
		lens: make([]int, batch)}
	per := (capacity + pageSize - 1) / pageSize
	c.pages = make([][]*kvPage, layers*batch)
	for i := range c.pages {
		c.pages[i] = make([]*kvPage, 0, per) // never reallocated
	}
	return c, nil
}

// Width is KVHeads·HeadDim, the values per position of K (and of V).
func (c *PagedKVCache) Width() int { return c.width }

// SeqLen is the number of positions stored for sequence b.
func (c *PagedKVCache) SeqLen(b int) int { return c.lens[b] }

// SetSeqLen sets sequence b's length to n (at most Cap): call it after
// Put has stored positions [SeqLen, n) in every layer, or with a smaller n
// to forget positions; pages past the new end go back to the free list.
func (c *PagedKVCache) SetSeqLen(b, n int) {
	if n < 0 || n > c.Cap {
		panic(fmt.Sprintf("nn: kv cache length %d outside [0, %d]", n, c.Cap))
	}
	c.lens[b] = n
	keep := (n + c.PageSize - 1) / c.PageSize
	for l := 0; l < c.Layers; l++ {
		i := l*c.Batch + b
		for _, p := range c.pages[i][min(keep, len(c.pages[i])):] {
			c.free = append(c.free, p)
		}
		c.pages[i] = c.pages[i][:min(keep, len(c.pages[i]))]
	}
}

// Reset empties every sequence, keeping the pages for reuse.
func (c *PagedKVCache) Reset() {
	for b := range c.lens {
		c.SetSeqLen(b, 0)
	}
}

func (c *PagedKVCache) newPage() *kvPage {
	if n := len(c.free); n > 0 {
		p := c.free[n-1]
		c.free = c.free[:n-1]
		return p
	}
	n := c.PageSize * c.width
	if c.DType == tensor.F32 {
		return &kvPage{k: make([]float32, n), v: make([]float32, n)}
	}
	return &kvPage{kh: make([]uint16, n), vh: make([]uint16, n)}
}

// Put stores the key and value rows (Width values each) of position pos of
// sequence b in a layer, adding a page when pos starts one. pos must be
// below Cap and at most one past the positions stored so far in that layer.
func (c *PagedKVCache) Put(layer, b, pos int, k, v []float32) {
	if pos < 0 || pos >= c.Cap {
		panic(fmt.Sprintf("nn: kv cache position %d outside [0, %d)", pos, c.Cap))
	}
	i := layer*c.Batch + b
	pi := pos / c.PageSize
	for len(c.pages[i]) <= pi {
		c.pages[i] = append(c.pages[i], c.newPage())
	}
	p := c.pages[i][pi]
	o := (pos % c.PageSize) * c.width
	switch c.DType {
	case tensor.F32:
		copy(p.k[o:o+c.width], k[:c.width])
		copy(p.v[o:o+c.width], v[:c.width])
	case tensor.F16:
		tensor.F32ToF16(p.kh[o:o+c.width], k[:c.width])
		tensor.F32ToF16(p.vh[o:o+c.width], v[:c.width])
	case tensor.BF16:
		tensor.F32ToBF16(p.kh[o:o+c.width], k[:c.width])
		tensor.F32ToBF16(p.vh[o:o+c.width], v[:c.width])
	}
}

// AttnOptions describe an attention over the cache.
type AttnOptions struct {
	// Heads is the number of query heads: a multiple of the cache's KVHeads,
	// query head h reading KV head h / (Heads/KVHeads) (grouped-query
	// attention; equal counts are plain multi-head attention).
	Heads int
	// Scale multiplies q·k; usually 1/sqrt(HeadDim).
	Scale float32
	// Window, when positive, is a sliding window (Mistral's sliding_window):
	// the query at position i sees key j iff i − Window < j ≤ i.
	Window int
	// Bias, when set, is an additive score bias by head, query position and
	// key position (relative-position buckets, ALiBi), added after Scale.
	Bias func(head, q, k int) float32
	// Threads bounds the goroutines of the products (zero: GOMAXPROCS).
	Threads tensor.Threads
}

// AttnScratch is the reusable working memory of Attend; its zero value is
// ready and it grows to the largest call. One per goroutine.
type AttnScratch struct {
	kbuf, vbuf []float32 // pages widened to float32
	m, acc     []float32
	l          []float64
	sc         []float32
	kp, vp     [][]float32 // the pages handed to tensor.AttentionPaged
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n, max(n, 2*cap(s)))
	}
	return s[:n]
}

// Attend computes causal attention for len(pos) query rows of sequence b
// against the keys and values of layer stored for it: row i (q[i·qStride:],
// Heads·HeadDim values) sits at position pos[i] and sees the keys at
// positions 0..pos[i] (within the window), which must be stored already
// (Put). A negative pos[i] marks a padding row, whose output is zeros. The
// output rows go to out[i·outStride:].
//
// Without a Bias, tensor.AttentionPaged does the work, split over the
// worker pool by head: the scores of every visible key, one softmax per row
// and the product with V, a page at a time (F16 and BF16 pages widened
// first). With a Bias the softmax is computed online over the pages (running
// maximum and sum), one head at a time.
func (c *PagedKVCache) Attend(out []float32, outStride int, q []float32, qStride int,
	layer, b int, pos []int, opt AttnOptions, ws *AttnScratch) {
	heads, hd, nq := opt.Heads, c.HeadDim, len(pos)
	if heads <= 0 || heads%c.KVHeads != 0 {
		panic(fmt.Sprintf("nn: attention with %d query heads over %d kv heads", heads, c.KVHeads))
	}
	if opt.Bias == nil {
		c.attendPaged(out, outStride, q, qStride, layer, b, pos, opt, ws)
		return
	}
	group := heads / c.KVHeads
	maxPos, minKey := -1, math.MaxInt // the keys some row sees: [minKey, maxPos]
	for _, p := range pos {
		if p >= 0 {
			maxPos = max(maxPos, p)
			lo := 0
			if opt.Window > 0 {
				lo = max(0, p-opt.Window+1)
			}
			minKey = min(minKey, lo)
		}
	}
	ws.m = grow(ws.m, heads*nq)
	ws.acc = grow(ws.acc, heads*nq*hd)
	if cap(ws.l) < heads*nq {
		ws.l = make([]float64, heads*nq)
	}
	ws.l = ws.l[:heads*nq]
	for i := range ws.m {
		ws.m[i] = float32(math.Inf(-1))
		ws.l[i] = 0
	}
	clear(ws.acc)
	ws.sc = grow(ws.sc, nq*c.PageSize)
	pages := c.pages[layer*c.Batch+b]
	w, ps := c.width, c.PageSize
	for pi := max(minKey, 0) / ps; pi*ps <= maxPos; pi++ { // pages wholly outside a window are skipped
		pg := pages[pi]
		k0 := pi * ps
		cnt := min(ps, maxPos+1-k0) // keys of this page some row sees
		kk, vv := pg.k, pg.v
		if c.DType != tensor.F32 {
			n := cnt * w
			ws.kbuf, ws.vbuf = grow(ws.kbuf, ps*w), grow(ws.vbuf, ps*w)
			if c.DType == tensor.F16 {
				tensor.F16ToF32(ws.kbuf[:n], pg.kh[:n])
				tensor.F16ToF32(ws.vbuf[:n], pg.vh[:n])
			} else {
				tensor.BF16ToF32(ws.kbuf[:n], pg.kh[:n])
				tensor.BF16ToF32(ws.vbuf[:n], pg.vh[:n])
			}
			kk, vv = ws.kbuf, ws.vbuf
		}
		for h := 0; h < heads; h++ {
			ko := (h / group) * hd
			sc := ws.sc[:nq*ps]
			// Raw scores of every query row against the page's keys.
			opt.Threads.Gemm(nq, cnt, hd, q[h*hd:], qStride, kk[ko:], w, true, sc, ps, false)
			for i, p := range pos {
				row := sc[i*ps : i*ps+cnt]
				lo, hi := k0, min(k0+cnt, p+1) // keys [lo, hi) visible to row i
				if opt.Window > 0 {
					lo = max(lo, p-opt.Window+1)
				}
				if p < 0 || lo >= hi {
					clear(row)
					continue
				}
				mx := float32(math.Inf(-1))
				for j := lo; j < hi; j++ {
					x := row[j-k0] * opt.Scale
					if opt.Bias != nil {
						x += opt.Bias(h, p, j)
					}
					row[j-k0] = x
					mx = max(mx, x)
				}
				st := h*nq + i
				if math.IsInf(float64(mx), -1) {
					clear(row)
					continue
				}
				m := ws.m[st]
				if mx > m {
					// A new maximum: rescale what the earlier pages added.
					corr := float32(math.Exp(float64(m - mx)))
					ws.l[st] *= float64(corr)
					for d := range ws.acc[st*hd : (st+1)*hd] {
						ws.acc[st*hd+d] *= corr
					}
					m = mx
					ws.m[st] = m
				}
				var sum float64
				for j := k0; j < k0+cnt; j++ {
					if j < lo || j >= hi {
						row[j-k0] = 0
						continue
					}
					e := float32(math.Exp(float64(row[j-k0] - m)))
					row[j-k0] = e
					sum += float64(e)
				}
				ws.l[st] += sum
			}
			// acc_h[nq, hd] += P[nq, cnt] · V_page[cnt, hd]
			opt.Threads.Gemm(nq, hd, cnt, sc, ps, vv[ko:], w, false, ws.acc[h*nq*hd:], hd, true)
		}
	}
	for i, p := range pos {
		for h := 0; h < heads; h++ {
			o := out[i*outStride+h*hd : i*outStride+(h+1)*hd]
			st := h*nq + i
			if p < 0 || ws.l[st] == 0 {
				clear(o)
				continue
			}
			inv := float32(1 / ws.l[st])
			for d, x := range ws.acc[st*hd : (st+1)*hd] {
				o[d] = x * inv
			}
		}
	}
}

// attendPaged is Attend without a score bias: the pages some row sees go to
// tensor.AttentionPaged, widened to float32 first when stored in half
// precision.
func (c *PagedKVCache) attendPaged(out []float32, outStride int, q []float32, qStride int,
	layer, b int, pos []int, opt AttnOptions, ws *AttnScratch) {
	maxPos, minKey := -1, math.MaxInt
	for _, p := range pos {
		if p >= 0 {
			maxPos = max(maxPos, p)
			lo := 0
			if opt.Window > 0 {
				lo = max(0, p-opt.Window+1)
			}
			minKey = min(minKey, lo)
		}
	}
	pages := c.pages[layer*c.Batch+b]
	w, ps := c.width, c.PageSize
	np := (maxPos + ps) / ps // pages up to maxPos's
	if cap(ws.kp) < np {
		ws.kp, ws.vp = make([][]float32, np, max(np, 2*cap(ws.kp))), make([][]float32, np, max(np, 2*cap(ws.kp)))
	}
	kp, vp := ws.kp[:np], ws.vp[:np]
	first := 0
	if maxPos >= 0 {
		first = minKey / ps
	}
	clear(kp[:first]) // pages wholly outside every window are not read
	clear(vp[:first])
	if c.DType != tensor.F32 {
		n := (np - first) * ps * w
		ws.kbuf, ws.vbuf = grow(ws.kbuf, n), grow(ws.vbuf, n)
	}
	for pi := first; pi < np; pi++ {
		pg := pages[pi]
		if c.DType == tensor.F32 {
			kp[pi], vp[pi] = pg.k, pg.v
			continue
		}
		cnt := min(ps, maxPos+1-pi*ps) * w // the rows stored so far
		kb := ws.kbuf[(pi-first)*ps*w:][:ps*w]
		vb := ws.vbuf[(pi-first)*ps*w:][:ps*w]
		if c.DType == tensor.F16 {
			tensor.F16ToF32(kb[:cnt], pg.kh[:cnt])
			tensor.F16ToF32(vb[:cnt], pg.vh[:cnt])
		} else {
			tensor.BF16ToF32(kb[:cnt], pg.kh[:cnt])
			tensor.BF16ToF32(vb[:cnt], pg.vh[:cnt])
		}
		kp[pi], vp[pi] = kb, vb
	}
	opt.Threads.AttentionPaged(out, q, kp, vp, tensor.PagedAttentionParams{
		Heads: opt.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, PageSize: ps,
		KRowStride: w, VRowStride: w, QRowStride: qStride, OutRowStride: outStride,
		Pos: pos, Window: opt.Window, Scale: opt.Scale,
	})
}
