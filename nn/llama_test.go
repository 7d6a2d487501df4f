package nn

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/embrace-go/embrace/tensor"
)

// oddSizes are the widths and lengths the blocks are checked on.
var oddSizes = []int{1, 7, 33, 257}

func closeTo(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestRMSNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, d := range oddSizes {
		const rows = 3
		x, w := rnd(r, rows*d), rnd(r, d)
		n := &RMSNorm{Weight: tensor.FromFloat32(w, d), Eps: 1e-6}
		want := make([]float64, rows*d)
		for i := 0; i < rows; i++ {
			var ss float64
			for _, v := range x[i*d : (i+1)*d] {
				ss += float64(v) * float64(v)
			}
			inv := 1 / math.Sqrt(ss/float64(d)+1e-6)
			for j := 0; j < d; j++ {
				want[i*d+j] = float64(w[j]) * float64(x[i*d+j]) * inv
			}
		}
		got := tensor.Zeros(rows, d)
		var norm Norm = n
		norm.Forward(got, tensor.FromFloat32(x, rows, d))
		closeTo(t, "RMSNorm", got.Float32s(), want, 1e-5)
		// Per head: the same rows seen as heads of one wide row, in place.
		heads := append([]float32(nil), x...)
		n.Rows(heads, heads, d)
		closeTo(t, "RMSNorm.Rows", heads, want, 1e-5)
		str := make([]float32, rows*(d+2))
		for i := 0; i < rows; i++ {
			copy(str[i*(d+2):], x[i*d:(i+1)*d])
		}
		n.Strided(str, rows, d+2)
		for i := 0; i < rows; i++ {
			closeTo(t, "RMSNorm.Strided", str[i*(d+2):i*(d+2)+d], want[i*d:(i+1)*d], 1e-5)
		}
	}
}

// refInvFreq computes the inverse frequencies in float64 from the formulas
// of modeling_rope_utils.py.
func refInvFreq(c RopeConfig, seqLen int) ([]float64, float64) {
	dim := c.RotaryDim()
	base := c.Theta
	if c.Type == "dynamic" && seqLen > c.MaxPositions {
		base *= math.Pow(c.Factor*float64(seqLen)/float64(c.MaxPositions)-(c.Factor-1), float64(dim)/float64(dim-2))
	}
	inv := make([]float64, dim/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(base, float64(2*i)/float64(dim))
	}
	attn := 1.0
	switch c.Type {
	case "linear":
		for i := range inv {
			inv[i] /= c.Factor
		}
	case "llama3":
		old := float64(c.OriginalMaxPositions)
		for i, f := range inv {
			wave := 2 * math.Pi / f
			switch {
			case wave < old/c.HighFreqFactor:
			case wave > old/c.LowFreqFactor:
				inv[i] = f / c.Factor
			default:
				s := (old/wave - c.LowFreqFactor) / (c.HighFreqFactor - c.LowFreqFactor)
				inv[i] = (1-s)*f/c.Factor + s*f
			}
		}
	case "yarn":
		attn = 0.1*math.Log(c.Factor) + 1
		if c.AttentionFactor != 0 {
			attn = c.AttentionFactor
		}
		corr := func(rot float64) float64 {
			return float64(dim) * math.Log(float64(c.OriginalMaxPositions)/(rot*2*math.Pi)) / (2 * math.Log(c.Theta))
		}
		lo, hi := math.Max(math.Floor(corr(32)), 0), math.Min(math.Ceil(corr(1)), float64(dim-1))
		if !c.Truncate {
			lo, hi = math.Max(corr(32), 0), math.Min(corr(1), float64(dim-1))
		}
		for i, f := range inv {
			ramp := math.Min(math.Max((float64(i)-lo)/(hi-lo), 0), 1)
			inv[i] = f/c.Factor*ramp + f*(1-ramp)
		}
	}
	return inv, attn
}

func parseRope(t *testing.T, js string, headDim, maxPos int) RopeConfig {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(js), &raw); err != nil {
		t.Fatal(err)
	}
	c, err := ParseRopeConfig(raw, headDim, maxPos)
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return c
}

func TestRopeConfigForms(t *testing.T) {
	for _, tc := range []struct {
		js   string
		want RopeConfig
	}{
		{`{}`, RopeConfig{Type: "default", Theta: 10000}},
		{`{"rope_theta": 500000, "rope_scaling": null}`, RopeConfig{Type: "default", Theta: 500000}},
		{`{"rope_parameters": {"rope_type": "default", "rope_theta": 1e6}}`, RopeConfig{Type: "default", Theta: 1e6}},
		{`{"rope_theta": 10000, "rope_scaling": {"type": "linear", "factor": 2}}`, RopeConfig{Type: "linear", Theta: 10000, Factor: 2}},
		{`{"rope_theta": 5e5, "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}}`,
			RopeConfig{Type: "llama3", Theta: 5e5, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}},
		{`{"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4, "original_max_position_embeddings": 32768, "truncate": false, "beta_fast": 16}}`,
			RopeConfig{Type: "yarn", Theta: 1e6, Factor: 4, OriginalMaxPositions: 32768, BetaFast: 16}},
	} {
		c := parseRope(t, tc.js, 64, 4096)
		w := tc.want
		if w.OriginalMaxPositions == 0 {
			w.OriginalMaxPositions = 4096
		}
		if c.Type != w.Type || c.Theta != w.Theta || c.Factor != w.Factor || c.OriginalMaxPositions != w.OriginalMaxPositions ||
			c.LowFreqFactor != w.LowFreqFactor || c.HighFreqFactor != w.HighFreqFactor || c.BetaFast != w.BetaFast {
			t.Errorf("%s: got %+v", tc.js, c)
		}
	}
	var raw map[string]json.RawMessage
	for _, bad := range []string{
		`{"rope_scaling": {"type": "longrope", "factor": 2}}`,
		`{"rope_scaling": {"type": "linear"}}`,
		`{"rope_theta": -1}`,
		`{"rope_theta": "x"}`,
		`{"rope_parameters": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1}}`,
	} {
		_ = json.Unmarshal([]byte(bad), &raw)
		if _, err := ParseRopeConfig(raw, 64, 4096); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestRope checks the frequencies of every type, the cached tables and
// the rotate-half rotation against float64 references.
func TestRope(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	configs := []string{
		`{"rope_theta": 10000}`,
		`{"rope_theta": 10000, "partial_rotary_factor": 0.5}`,
		`{"rope_scaling": {"type": "linear", "factor": 4}}`,
		`{"rope_parameters": {"rope_type": "dynamic", "rope_theta": 10000, "factor": 2}}`,
		`{"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000, "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 64}}`,
		`{"rope_parameters": {"rope_type": "yarn", "rope_theta": 10000, "factor": 4, "original_max_position_embeddings": 64}}`,
		`{"rope_parameters": {"rope_type": "yarn", "rope_theta": 10000, "factor": 4, "original_max_position_embeddings": 64, "truncate": false}}`,
	}
	for _, js := range configs {
		for _, hd := range []int{2, 8, 36, 128} {
			if hd == 2 && js == configs[1] {
				continue // one rotated value: refused, not a rotation
			}
			cfg := parseRope(t, js, hd, 100)
			rope, err := NewRope(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, seqLen := range []int{7, 257} { // 257: past max_position_embeddings
				inv, attn := refInvFreq(cfg, seqLen)
				buf := make([]float32, 3*rope.Half())
				for _, p := range []int{0, 1, 6, 32, 256} {
					if p >= seqLen {
						continue
					}
					cos, sin := rope.CosSin(p, seqLen, buf)
					wc, ws := make([]float64, len(inv)), make([]float64, len(inv))
					for i, f := range inv {
						wc[i] = math.Cos(float64(p)*f) * attn
						ws[i] = math.Sin(float64(p)*f) * attn
					}
					// float32 frequencies and products give a phase error
					// of a few ulps of p·f.
					tol := 2e-7 * float64(p+1) * 4
					closeTo(t, js+" cos", cos, wc, tol)
					closeTo(t, js+" sin", sin, ws, tol)
					const heads = 3
					x := rnd(r, heads*hd)
					want := make([]float64, len(x))
					for i := range x {
						want[i] = float64(x[i])
					}
					h := len(inv)
					for o := 0; o < heads*hd; o += hd {
						for i := 0; i < h; i++ {
							a, b := float64(x[o+i]), float64(x[o+i+h])
							want[o+i] = a*wc[i] - b*ws[i]
							want[o+i+h] = b*wc[i] + a*ws[i]
						}
					}
					rope.Apply(x, heads, hd, cos, sin)
					closeTo(t, js+" apply", x, want, tol+1e-6)
				}
			}
		}
	}
}

// refAttention is GQA attention with window and bias in float64 over
// keys 0..pos[i].
func refAttention(q, k, v []float32, pos []int, heads, kvHeads, hd int, opt AttnOptions) []float64 {
	w := kvHeads * hd
	out := make([]float64, len(pos)*heads*hd)
	for i, p := range pos {
		if p < 0 {
			continue
		}
		for h := 0; h < heads; h++ {
			kh := h / (heads / kvHeads)
			lo := 0
			if opt.Window > 0 {
				lo = max(0, p-opt.Window+1)
			}
			sc := make([]float64, p+1-lo)
			mx := math.Inf(-1)
			for j := lo; j <= p; j++ {
				var s float64
				for d := 0; d < hd; d++ {
					s += float64(q[(i*heads+h)*hd+d]) * float64(k[j*w+kh*hd+d])
				}
				s *= float64(opt.Scale)
				if opt.Bias != nil {
					s += float64(opt.Bias(h, p, j))
				}
				sc[j-lo] = s
				mx = math.Max(mx, s)
			}
			var sum float64
			for j := range sc {
				sc[j] = math.Exp(sc[j] - mx)
				sum += sc[j]
			}
			for j := lo; j <= p; j++ {
				for d := 0; d < hd; d++ {
					out[(i*heads+h)*hd+d] += sc[j-lo] / sum * float64(v[j*w+kh*hd+d])
				}
			}
		}
	}
	return out
}

func TestPagedAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	const heads, kvHeads, hd = 4, 2, 5
	w := kvHeads * hd
	for _, n := range oddSizes {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
			for _, opt := range []AttnOptions{
				{Heads: heads, Scale: 0.4},
				{Heads: heads, Scale: 0.4, Window: 4},
				{Heads: heads, Scale: 0.4, Bias: func(h, q, k int) float32 { return -0.1 * float32(h+1) * float32(q-k) }}, // ALiBi-like
			} {
				k, v := rnd(r, n*w), rnd(r, n*w)
				c, err := NewPagedKVCache(2, 2, kvHeads, hd, n+1, 3, dt)
				if err != nil {
					t.Fatal(err)
				}
				kk, vv := append([]float32(nil), k...), append([]float32(nil), v...)
				if dt != tensor.F32 { // the reference reads what half storage keeps
					h := make([]uint16, len(k))
					for _, s := range [][]float32{kk, vv} {
						if dt == tensor.F16 {
							tensor.F32ToF16(h, s)
							tensor.F16ToF32(s, h)
						} else {
							tensor.F32ToBF16(h, s)
							tensor.BF16ToF32(s, h)
						}
					}
				}
				for p := 0; p < n; p++ { // layer 1, sequence 1; the others stay empty
					c.Put(1, 1, p, k[p*w:], v[p*w:])
				}
				c.SetSeqLen(1, n)
				// Queries: the last min(n, 5) positions and one padding row.
				var pos []int
				for p := max(0, n-5); p < n; p++ {
					pos = append(pos, p)
				}
				pos = append(pos, -1)
				q := rnd(r, len(pos)*heads*hd)
				out := make([]float32, len(q))
				var ws AttnScratch
				c.Attend(out, heads*hd, q, heads*hd, 1, 1, pos, opt, &ws)
				want := refAttention(q, kk, vv, pos, heads, kvHeads, hd, opt)
				closeTo(t, "paged attention", out, want, 2e-5)
			}
		}
	}
}

func TestPagedKVCachePages(t *testing.T) {
	c, err := NewPagedKVCache(1, 2, 1, 2, 10, 4, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	for p := 0; p < 10; p++ {
		c.Put(0, 0, p, []float32{float32(p), 0}, []float32{0, float32(p)})
	}
	c.SetSeqLen(0, 10)
	if len(c.pages[0]) != 3 {
		t.Fatalf("%d pages for 10 positions of 4", len(c.pages[0]))
	}
	first := c.pages[0][0]
	c.SetSeqLen(0, 5)
	if len(c.pages[0]) != 2 || len(c.free) != 1 {
		t.Fatalf("truncate to 5: %d pages, %d free", len(c.pages[0]), len(c.free))
	}
	if c.pages[0][0] != first {
		t.Fatal("truncation moved a kept page")
	}
	c.Reset()
	if len(c.free) != 3 || c.SeqLen(0) != 0 {
		t.Fatalf("reset: %d free pages", len(c.free))
	}
	for _, bad := range [][]int{{0, 1, 1, 1, 1}, {1, 1, 1, 1, -1}} {
		if _, err := NewPagedKVCache(bad[0], bad[1], bad[2], bad[3], bad[4], 0, tensor.F32); err == nil {
			t.Errorf("NewPagedKVCache%v succeeded", bad)
		}
	}
	if _, err := NewPagedKVCache(1, 1, 1, 1, 1, 0, tensor.I64); err == nil {
		t.Error("an I64 cache was made")
	}
}

func TestGatedMLP(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	gelu := func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
	for _, inner := range oddSizes {
		const d, rows = 9, 3
		for _, tc := range []struct {
			act tensor.Activation
			f   func(float64) float64
		}{{tensor.SiLU, silu}, {tensor.GELU, gelu}} {
			for _, dt := range []tensor.DType{tensor.F32, tensor.BF16} {
				mk := func(out, in int, bias bool) *Linear {
					w := rnd(r, out*in)
					l := &Linear{W: tensor.FromFloat32(w, out, in)}
					if dt == tensor.BF16 {
						h := make([]uint16, len(w))
						tensor.F32ToBF16(h, w)
						l.W = tensor.FromUint16(tensor.BF16, h, out, in)
					}
					if bias {
						l.B = tensor.FromFloat32(rnd(r, out), out)
					}
					return l
				}
				gate, up, down := mk(inner, d, true), mk(inner, d, false), mk(d, inner, true)
				wf := func(l *Linear) []float32 { return l.W.ToFloat32().Float32s() }
				gw, uw, dw := wf(gate), wf(up), wf(down)
				m, err := NewGatedMLP(gate, up, down, tc.act)
				if err != nil {
					t.Fatal(err)
				}
				x := rnd(r, rows*d)
				want := make([]float64, rows*d)
				for i := 0; i < rows; i++ {
					mid := make([]float64, inner)
					for j := 0; j < inner; j++ {
						g, u := float64(gate.B.Float32s()[j]), 0.0
						for k := 0; k < d; k++ {
							g += float64(x[i*d+k]) * float64(gw[j*d+k])
							u += float64(x[i*d+k]) * float64(uw[j*d+k])
						}
						mid[j] = tc.f(g) * u
					}
					for o := 0; o < d; o++ {
						s := float64(down.B.Float32s()[o])
						for j := 0; j < inner; j++ {
							s += mid[j] * float64(dw[o*inner+j])
						}
						want[i*d+o] = s
					}
				}
				dst := tensor.Zeros(rows, d)
				m.ForwardInto(dst, tensor.FromFloat32(x, rows, d), tensor.Zeros(rows, 2*inner), tensor.Zeros(rows, inner), false)
				closeTo(t, "gated mlp", dst.Float32s(), want, 2e-4)
			}
		}
	}
	a := &Linear{W: tensor.Zeros(2, 3)}
	if _, err := StackLinear(a, &Linear{W: tensor.Zeros(2, 4)}); err == nil {
		t.Error("stacked layers of different input widths")
	}
	if _, err := StackLinear(a, &Linear{W: tensor.New(tensor.F16, 2, 3)}); err == nil {
		t.Error("stacked layers of different storage types")
	}
}
