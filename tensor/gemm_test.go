package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// gemmCase is one product to check, in any B storage type.
type gemmCase struct {
	m, n, k       int
	lda, ldb, ldc int
	transB, acc   bool
	dt            DType
	a, c0         []float32
	bF32          []float32
	bU16          []uint16
}

func randF32(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

func newGemmCase(r *rand.Rand, m, n, k, pad int, transB, acc bool, dt DType) *gemmCase {
	tc := &gemmCase{m: m, n: n, k: k, lda: k + pad, ldc: n + pad, transB: transB, acc: acc, dt: dt}
	bRows, bCols := k, n
	if transB {
		bRows, bCols = n, k
	}
	tc.ldb = bCols + pad
	tc.a = randF32(r, max(0, m*tc.lda))
	tc.c0 = randF32(r, max(0, m*tc.ldc))
	b := randF32(r, bRows*tc.ldb)
	switch dt {
	case F32:
		tc.bF32 = b
	case F16:
		tc.bU16 = make([]uint16, len(b))
		F32ToF16(tc.bU16, b)
	case BF16:
		tc.bU16 = make([]uint16, len(b))
		F32ToBF16(tc.bU16, b)
	}
	return tc
}

// want computes the reference with gemmRef* and a per-element error bound
// (k·eps·Σ|a||b|, the textbook bound for any summation order).
func (tc *gemmCase) want() (ref, bound []float32) {
	ref = append([]float32(nil), tc.c0...)
	abs := func(s []float32) []float32 {
		o := make([]float32, len(s))
		for i, v := range s {
			o[i] = float32(math.Abs(float64(v)))
		}
		return o
	}
	bound = make([]float32, len(tc.c0))
	switch tc.dt {
	case F32:
		gemmRefF32(tc.m, tc.n, tc.k, tc.a, tc.lda, tc.bF32, tc.ldb, tc.transB, ref, tc.ldc, tc.acc)
		gemmRefF32(tc.m, tc.n, tc.k, abs(tc.a), tc.lda, abs(tc.bF32), tc.ldb, tc.transB, bound, tc.ldc, false)
	default:
		conv := f16ToF32
		if tc.dt == BF16 {
			conv = bf16ToF32
		}
		gemmRefU16(tc.m, tc.n, tc.k, tc.a, tc.lda, tc.bU16, tc.ldb, tc.transB, ref, tc.ldc, tc.acc, conv)
		absU := make([]uint16, len(tc.bU16))
		for i, v := range tc.bU16 {
			absU[i] = v &^ 0x8000
		}
		gemmRefU16(tc.m, tc.n, tc.k, abs(tc.a), tc.lda, absU, tc.ldb, tc.transB, bound, tc.ldc, false, conv)
	}
	return ref, bound
}

func (tc *gemmCase) run(g *gemmImpl, par bool) []float32 {
	c := append([]float32(nil), tc.c0...)
	b := bMat{f32: tc.bF32, u16: tc.bU16, bf16: tc.dt == BF16, ld: tc.ldb, trans: tc.transB}
	gemmRun(g, tc.m, tc.n, tc.k, tc.a, tc.lda, b, c, tc.ldc, tc.acc, procsFor(par))
	return c
}

func (tc *gemmCase) String() string {
	return fmt.Sprintf("%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d transB=%v acc=%v", tc.dt, tc.m, tc.n, tc.k, tc.lda, tc.ldb, tc.ldc, tc.transB, tc.acc)
}

// check compares got with the reference; entries outside the m×n window (the
// stride padding) must be untouched.
func (tc *gemmCase) check(t *testing.T, what string, got, ref, bound []float32) {
	t.Helper()
	eps := float32(1.2e-7) * float32(tc.k+2)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.ldc && i*tc.ldc+j < len(got); j++ {
			x := i*tc.ldc + j
			if j >= tc.n {
				if got[x] != tc.c0[x] {
					t.Fatalf("%s %v: padding C[%d][%d] changed from %v to %v", what, tc, i, j, tc.c0[x], got[x])
				}
				continue
			}
			tol := eps*bound[x] + 1e-6
			if tc.acc {
				tol += eps * float32(math.Abs(float64(tc.c0[x])))
			}
			if d := float32(math.Abs(float64(got[x] - ref[x]))); !(d <= tol) {
				t.Fatalf("%s %v: C[%d][%d] = %v, want %v (|diff| %g > tol %g)", what, tc, i, j, got[x], ref[x], d, tol)
			}
		}
	}
}

func TestGemmImplsMatchReference(t *testing.T) {
	dims := []int{1, 3, 7, 16, 33, 257}
	if testing.Short() {
		dims = []int{1, 3, 7, 17, 33}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, g := range gemmImpls {
		t.Run(g.name, func(t *testing.T) {
			for _, dt := range []DType{F32, F16, BF16} {
				for _, m := range dims {
					for _, n := range dims {
						for _, k := range dims {
							transB := r.IntN(2) == 0
							acc := r.IntN(2) == 0
							pad := []int{0, 0, 1, 5}[r.IntN(4)]
							tc := newGemmCase(r, m, n, k, pad, transB, acc, dt)
							ref, bound := tc.want()
							tc.check(t, g.name, tc.run(g, false), ref, bound)
						}
					}
				}
			}
		})
	}
}

// TestGemmAllFlags covers every transB/acc/dtype combination on shapes that
// cross the blocking sizes (kc, mc) and the parallel split.
func TestGemmAllFlags(t *testing.T) {
	shapes := [][3]int{{1, 300, 520}, {2, 70, 300}, {130, 45, 259}, {9, 1000, 33}, {64, 64, 64}, {1, 1, 1}, {5, 3, 0}}
	r := rand.New(rand.NewPCG(3, 4))
	for _, g := range gemmImpls {
		for _, s := range shapes {
			for _, dt := range []DType{F32, F16, BF16} {
				for _, transB := range []bool{false, true} {
					for _, acc := range []bool{false, true} {
						tc := newGemmCase(r, s[0], s[1], s[2], 3, transB, acc, dt)
						ref, bound := tc.want()
						serial := tc.run(g, false)
						tc.check(t, g.name+" serial", serial, ref, bound)
						par := tc.run(g, true)
						for i := range par {
							if par[i] != serial[i] {
								t.Fatalf("%s %v: parallel result differs from serial at %d: %v vs %v", g.name, tc, i, par[i], serial[i])
							}
						}
					}
				}
			}
		}
	}
}

// TestGemmGonum checks the default kernels against gonum's Sgemm, a second
// oracle independent of gemmRef.
func TestGemmGonum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{128, 96, 300}, {1, 257, 129}, {33, 7, 515}} {
		for _, transB := range []bool{false, true} {
			m, n, k := s[0], s[1], s[2]
			tc := newGemmCase(r, m, n, k, 2, transB, false, F32)
			got := append([]float32(nil), tc.c0...)
			gemmF32(defaultProcs(), m, n, k, tc.a, tc.lda, tc.bF32, tc.ldb, transB, got, tc.ldc, false)
			want := append([]float32(nil), tc.c0...)
			bRows, bCols, tb := k, n, blas.NoTrans
			if transB {
				bRows, bCols, tb = n, k, blas.Trans
			}
			blas32.Gemm(blas.NoTrans, tb, 1,
				blas32.General{Rows: m, Cols: k, Stride: tc.lda, Data: tc.a},
				blas32.General{Rows: bRows, Cols: bCols, Stride: tc.ldb, Data: tc.bF32},
				0, blas32.General{Rows: m, Cols: n, Stride: tc.ldc, Data: want})
			_, bound := tc.want()
			tc.check(t, "vs gonum", got, want, bound)
		}
	}
}

// TestGemmConcurrent runs products from several goroutines at once (the pool
// is shared); run with -race.
func TestGemmConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cases := []*gemmCase{
		newGemmCase(r, 40, 200, 100, 1, true, false, F32),
		newGemmCase(r, 1, 500, 300, 0, true, true, F16),
		newGemmCase(r, 70, 30, 90, 2, false, false, BF16),
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for w := 0; w < 6; w++ {
		tc := cases[w%len(cases)]
		ref, bound := tc.want()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 5; it++ {
				got := tc.run(gemmDefault, true)
				for i := range got {
					if d := math.Abs(float64(got[i] - ref[i])); d > 1e-4*float64(bound[i])+1e-5 {
						errs <- fmt.Sprintf("%v: element %d = %v, want %v", tc, i, got[i], ref[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestParallelFor(t *testing.T) {
	for _, procs := range []int{1, 2, 3, 8} {
		old := runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 2, 7, 100, 1001} {
			for _, grain := range []int{0, 1, 3, 50, 2000} {
				hits := make([]atomic.Int32, n)
				parallelFor(defaultProcs(), n, grain, func(lo, hi int) {
					if hi-lo < min(max(grain, 1), n) && hi != n {
						t.Errorf("chunk [%d,%d) smaller than grain %d", lo, hi, grain)
					}
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
				})
				for i := range hits {
					if h := hits[i].Load(); h != 1 {
						t.Fatalf("procs=%d n=%d grain=%d: index %d ran %d times", procs, n, grain, i, h)
					}
				}
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

// TestParallelForNested checks that calls from inside a body finish (run
// inline when the pool is busy) and cover everything.
func TestParallelForNested(t *testing.T) {
	old := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(old)
	var total atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parallelFor(defaultProcs(), 16, 1, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					parallelFor(defaultProcs(), 10, 1, func(lo, hi int) {
						parallelFor(defaultProcs(), hi-lo, 1, func(lo, hi int) { total.Add(int64(hi - lo)) })
					})
				}
			})
		}()
	}
	wg.Wait()
	if got := total.Load(); got != 3*16*10 {
		t.Fatalf("nested parallelFor covered %d items, want %d", got, 3*16*10)
	}
}

// TestNextPanel: the prefetch hint of gemmBlock names the rows the next
// packB call reads, in gemmBlock's loop order (column panels outside, depth
// blocks inside), and nothing after the last panel or for an untransposed B.
func TestNextPanel(t *testing.T) {
	const n, k, ld, j0 = 600, 700, 710, 5
	w := make([]float32, (j0+n)*ld)
	b := bMat{f32: w, ld: ld, trans: true}
	addr := func(row, col int) uintptr { return uintptr(unsafe.Pointer(&w[row*ld+col])) }
	var got []nextRows
	for jc := 0; jc < n; jc += gemmNC {
		for pc := 0; pc < k; pc += gemmKC {
			got = append(got, nextPanel(b, j0, n, k, jc, pc))
		}
	}
	var want []nextRows
	first := true
	for jc := 0; jc < n; jc += gemmNC {
		for pc := 0; pc < k; pc += gemmKC {
			if first {
				first = false
				continue
			}
			a := addr(j0+jc, pc)
			kc := min(gemmKC, k-pc)
			want = append(want, nextRows{addr: a &^ 63, rows: min(gemmNC, n-jc),
				lines: (int(a&63) + kc*4 + 63) / 64, stride: ld * 4})
		}
	}
	want = append(want, nextRows{})
	if len(got) != len(want) {
		t.Fatalf("%d panels, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("after panel %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if r := nextPanel(bMat{f32: w, ld: ld}, 0, n, k, 0, 0); r != (nextRows{}) {
		t.Errorf("untransposed B: %+v, want nothing", r)
	}
	u := make([]uint16, (j0+n)*ld)
	r := nextPanel(bMat{u16: u, ld: ld, trans: true}, j0, n, k, 0, 0)
	if a := uintptr(unsafe.Pointer(&u[j0*ld+gemmKC])); r.addr != a&^63 || r.stride != 2*ld || r.lines != (int(a&63)+2*gemmKC+63)/64 {
		t.Errorf("half B: %+v", r)
	}
}

// procsFor is the goroutine bound of a test's serial (false) or parallel
// (true) variant.
func procsFor(par bool) int {
	if par {
		return defaultProcs()
	}
	return 1
}
