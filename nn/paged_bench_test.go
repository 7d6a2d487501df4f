package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/embrace-go/embrace/tensor"
)

// BenchmarkPagedAttend times one decoding step's attention of one layer of
// SmolLM2-135M (9 heads over 3 KV heads of 64) at 128 positions.
//
//	flock /tmp/bench.lock go test -run '^$' -bench PagedAttend -cpu 1 ./nn
func BenchmarkPagedAttend(b *testing.B) {
	const heads, kvHeads, hd, ctx = 9, 3, 64, 128
	r := rand.New(rand.NewPCG(1, 2))
	c, err := NewPagedKVCache(1, 1, kvHeads, hd, ctx+1, 0, tensor.F32)
	if err != nil {
		b.Fatal(err)
	}
	w := kvHeads * hd
	for p := 0; p <= ctx; p++ {
		c.Put(0, 0, p, rnd(r, w), rnd(r, w))
	}
	c.SetSeqLen(0, ctx+1)
	q, out := rnd(r, heads*hd), make([]float32, heads*hd)
	pos := []int{ctx}
	var ws AttnScratch
	opt := AttnOptions{Heads: heads, Scale: 0.125}
	b.ReportAllocs()
	for b.Loop() {
		c.Attend(out, heads*hd, q, heads*hd, 0, 0, pos, opt, &ws)
	}
}
