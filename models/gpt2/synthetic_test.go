package gpt2

import (
	"errors"

	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// tiny describes a small random GPT-2 checkpoint written for a test.
type tiny struct {
	dtype     safetensors.DType
	prefix    string // "transformer." or ""
	inner     int    // 0: null (4 × n_embd)
	act       string
	untied    bool // write lm_head.weight and tie_word_embeddings false
	invLayer  bool // scale_attn_by_inverse_layer_idx
	skip      string
	badShape  string
	layers    int
	embd      int
	heads     int
	vocab     int
	positions int
}

func (c tiny) write(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if c.layers == 0 {
		c.layers, c.embd, c.heads, c.vocab, c.positions = 2, 24, 3, 97, 48
	}
	cfg := map[string]any{
		"model_type": "gpt2", "vocab_size": c.vocab, "n_positions": c.positions, "n_embd": c.embd,
		"n_layer": c.layers, "n_head": c.heads, "activation_function": c.act,
		"tie_word_embeddings": !c.untied, "scale_attn_by_inverse_layer_idx": c.invLayer,
	}
	if c.inner > 0 {
		cfg["n_inner"] = c.inner
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	inner := c.inner
	if inner == 0 {
		inner = 4 * c.embd
	}
	rng := rand.New(rand.NewPCG(99, 1))
	var views []safetensors.TensorView
	add := func(name string, std, mean float64, shape ...int) {
		if name == c.skip {
			return
		}
		if name == c.badShape {
			shape = append([]int{shape[0] + 1}, shape[1:]...)
		}
		n := 1
		for _, s := range shape {
			n *= s
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(mean + rng.NormFloat64()*std)
		}
		var buf []byte
		switch c.dtype {
		case safetensors.F16, safetensors.BF16:
			h := make([]uint16, n)
			if c.dtype == safetensors.F16 {
				tensor.F32ToF16(h, vals)
			} else {
				tensor.F32ToBF16(h, vals)
			}
			buf = make([]byte, 2*n)
			for i, v := range h {
				binary.LittleEndian.PutUint16(buf[2*i:], v)
			}
		default:
			buf = make([]byte, 4*n)
			for i, v := range vals {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
		}
		dt := c.dtype
		if dt == "" {
			dt = safetensors.F32
		}
		views = append(views, safetensors.TensorView{Name: name, DType: dt, Shape: shape, Data: buf})
	}
	p := c.prefix
	h := c.embd
	add(p+"wte.weight", 0.5, 0, c.vocab, h)
	add(p+"wpe.weight", 0.3, 0, c.positions, h)
	for l := 0; l < c.layers; l++ {
		q := fmt.Sprintf("%sh.%d.", p, l)
		add(q+"ln_1.weight", 0.2, 1, h)
		add(q+"ln_1.bias", 0.2, 0, h)
		add(q+"attn.c_attn.weight", 0.4, 0, h, 3*h)
		add(q+"attn.c_attn.bias", 0.2, 0, 3*h)
		add(q+"attn.c_proj.weight", 0.3, 0, h, h)
		add(q+"attn.c_proj.bias", 0.2, 0, h)
		add(q+"ln_2.weight", 0.2, 1, h)
		add(q+"ln_2.bias", 0.2, 0, h)
		add(q+"mlp.c_fc.weight", 0.3, 0, h, inner)
		add(q+"mlp.c_fc.bias", 0.2, 0, inner)
		add(q+"mlp.c_proj.weight", 0.3, 0, inner, h)
		add(q+"mlp.c_proj.bias", 0.2, 0, h)
	}
	add(p+"ln_f.weight", 0.2, 1, h)
	add(p+"ln_f.bias", 0.2, 0, h)
	if c.untied {
		add("lm_head.weight", 0.5, 0, c.vocab, h)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), views, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkCache compares prefill + steps with full forward passes.
func checkCache(t *testing.T, m *Model) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	v := m.VocabSize()
	ids := randomIDs(r, 4, v)
	st, err := m.NewState(1, 12)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := st.Prefill(ctx, ids, nil)
	for step := 0; step < 8 && err == nil; step++ {
		full, ferr := m.Recompute(ctx, Input{IDs: ids})
		if ferr != nil {
			t.Fatal(ferr)
		}
		want := full.Logits.Float32s()[(len(ids)-1)*v:]
		if _, at := within(logits, want, 1e-4, 1e-4); at >= 0 {
			t.Fatalf("step %d: logit %d = %v, full pass %v", step, at, logits[at], want[at])
		}
		next := r.IntN(v)
		ids = append(ids, next)
		logits, err = st.Step(ctx, []int{next})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Variants the reference fixtures do not cover: legacy names, n_inner,
// other activations, an untied head, scaling by the inverse layer index.
func TestSyntheticVariants(t *testing.T) {
	for _, c := range []tiny{
		{prefix: "transformer.", act: "gelu_new"},
		{prefix: "", act: "relu", inner: 19},
		{prefix: "transformer.", act: "gelu", untied: true},
		{prefix: "", act: "gelu_new", invLayer: true},
		{prefix: "transformer.", act: "silu", dtype: safetensors.BF16},
	} {
		t.Run(fmt.Sprintf("%s%s-inner%d-untied%v-inv%v-%s", c.prefix, c.act, c.inner, c.untied, c.invLayer, c.dtype), func(t *testing.T) {
			m := load(t, c.write(t))
			checkCache(t, m)
			if c.untied {
				// The logits must come from lm_head.weight, not from wte.
				out, err := m.Recompute(context.Background(), Input{IDs: []int{1, 2}})
				if err != nil {
					t.Fatal(err)
				}
				head := m.head.Float32s()
				if &head[0] == &m.wte.Table.Float32s()[0] {
					t.Fatal("untied model uses wte as its head")
				}
				d, v := m.cfg.NEmbd, m.cfg.VocabSize
				hs := out.LastHidden.Float32s()[d:]
				for j := 0; j < v; j++ {
					var s float64
					for k := 0; k < d; k++ {
						s += float64(hs[k]) * float64(head[j*d+k])
					}
					if got := out.Logits.Float32s()[v+j]; math.Abs(float64(got)-s) > 1e-4*(1+math.Abs(s)) {
						t.Fatalf("logit %d = %v, hidden·lm_head = %v", j, got, s)
					}
				}
			}
		})
	}
	// Scaling by the inverse layer index changes the result of a 2-layer
	// model (the second layer's scores are halved).
	a := load(t, tiny{prefix: "", act: "gelu_new"}.write(t))
	b := load(t, tiny{prefix: "", act: "gelu_new", invLayer: true}.write(t))
	oa, _ := a.Recompute(context.Background(), Input{IDs: []int{3, 4, 5}})
	ob, _ := b.Recompute(context.Background(), Input{IDs: []int{3, 4, 5}})
	if _, at := within(oa.Logits.Float32s(), ob.Logits.Float32s(), 1e-6, 0); at < 0 {
		t.Error("scale_attn_by_inverse_layer_idx has no effect")
	}
}

// Broken checkpoints fail with the tensor's name, never a panic.
func TestBrokenCheckpoints(t *testing.T) {
	for _, c := range []struct {
		ck   tiny
		want string
	}{
		{tiny{prefix: "transformer.", act: "gelu_new", skip: "transformer.h.1.mlp.c_fc.bias"}, "transformer.h.1.mlp.c_fc.bias"},
		{tiny{prefix: "", act: "gelu_new", badShape: "h.0.attn.c_attn.weight"}, "h.0.attn.c_attn.weight"},
		{tiny{prefix: "transformer.", act: "gelu_new", skip: "transformer.wte.weight"}, "wte.weight"},
		{tiny{prefix: "transformer.", act: "gelu_new", skip: "transformer.ln_f.weight"}, "ln_f.weight"},
	} {
		_, err := Load(c.ck.write(t))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to name %s", err, c.want)
		}
	}
	dir := tiny{prefix: "transformer.", act: "gelu_new", untied: true, skip: "lm_head.weight"}.write(t)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "lm_head") {
		t.Errorf("untied without lm_head: %v", err)
	}
	dir = tiny{prefix: "transformer.", act: "gelu_new"}.write(t)
	os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("garbage"), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("corrupt file: %v", err)
	}
}

// smallModel writes a tiny random GPT-2 (2 layers, width 32, 4 heads, the
// fixture's shape) so the cache, padding, allocation and concurrency tests
// run without the shared fixtures.
func smallModel(t *testing.T) string {
	t.Helper()
	return tiny{prefix: "transformer.", act: "gelu_new", layers: 2, embd: 32, heads: 4, vocab: 1500, positions: 128}.write(t)
}

// The arch.CausalLM interface: every-position logits and hidden states of a
// left-padded batch match Recompute at the real positions, and a cache then
// continues from each sequence's own length.
func TestForwardAllPositionsMatchesRecompute(t *testing.T) {
	m := load(t, smallModel(t))
	ctx := context.Background()
	ids := []int{0, 0, 5, 17, 300, 9, 8, 7, 6, 5}
	mask := []int{0, 0, 1, 1, 1, 1, 1, 1, 1, 1}
	c, err := m.NewCache(2, 8)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Forward(ctx, c, &arch.DecoderInput{IDs: ids, Mask: mask, Logits: arch.AllPositions, Hidden: true})
	if err != nil {
		t.Fatal(err)
	}
	full, err := m.Recompute(ctx, Input{IDs: ids, Mask: mask, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	v, d := m.VocabSize(), m.cfg.NEmbd
	fl, fh := full.Logits.Float32s(), full.LastHidden.Float32s()
	for i, on := range mask {
		if on == 0 {
			continue
		}
		if _, at := within(out.Logits[i*v:(i+1)*v], fl[i*v:(i+1)*v], 1e-5, 1e-5); at >= 0 {
			t.Fatalf("position %d: logit %d = %v, Recompute %v", i, at, out.Logits[i*v+at], fl[i*v+at])
		}
		if _, at := within(out.Hidden[i*d:(i+1)*d], fh[i*d:(i+1)*d], 1e-5, 1e-5); at >= 0 {
			t.Fatalf("position %d: hidden %d differs", i, at)
		}
	}
	// One more token per sequence through the same cache.
	step, err := m.Forward(ctx, c, &arch.DecoderInput{IDs: []int{11, 12}})
	if err != nil {
		t.Fatal(err)
	}
	full, err = m.Recompute(ctx, Input{IDs: []int{0, 0, 5, 17, 300, 11, 9, 8, 7, 6, 5, 12}, Mask: []int{0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	fl = full.Logits.Float32s()
	for b := 0; b < 2; b++ {
		want := fl[(b*6+5)*v : (b*6+6)*v]
		if _, at := within(step.Logits[b*v:(b+1)*v], want, 1e-4, 1e-4); at >= 0 {
			t.Fatalf("step, sequence %d: logit %d = %v, Recompute %v", b, at, step.Logits[b*v+at], want[at])
		}
	}
	if _, err := m.Forward(ctx, c, nil); err == nil {
		t.Error("nil input accepted")
	}
	other := load(t, smallModel(t))
	if _, err := other.Forward(ctx, c, &arch.DecoderInput{IDs: []int{1, 2}}); err == nil {
		t.Error("a cache of another model accepted")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward(ctx, c, &arch.DecoderInput{IDs: []int{1, 2}}); !errors.Is(err, arch.ErrClosed) {
		t.Errorf("Forward after Close: %v", err)
	}
}

// Close while calls run: the calls finish or get ErrClosed; none touches
// unmapped weights (run with -race).
func TestCloseDuringCalls(t *testing.T) {
	m := load(t, smallModel(t))
	ctx := context.Background()
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			c, err := m.NewCache(1, 64)
			if err != nil {
				done <- err
				return
			}
			for {
				c.Reset()
				if _, err := m.Forward(ctx, c, &arch.DecoderInput{IDs: []int{1, 2, 3, 4}}); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for g := 0; g < 4; g++ {
		if err := <-done; !errors.Is(err, arch.ErrClosed) {
			t.Errorf("call during Close: %v", err)
		}
	}
}
