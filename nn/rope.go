package nn

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// RopeConfig holds the rotary position embedding settings of a config.json,
// after reading either form that exists: transformers 5.x's
// `rope_parameters: {rope_type, rope_theta, factor, ...}` or the older
// top-level `rope_theta` with `rope_scaling: {rope_type | type, factor, ...}`.
type RopeConfig struct {
	// Type is the rope_type: "default", "linear", "dynamic", "llama3" or
	// "yarn".
	Type string
	// Theta is rope_theta, the base of the frequencies.
	Theta float64
	// HeadDim is the width of a head; PartialRotaryFactor (1 when unset) the
	// share of it that rotates (the first int(HeadDim·factor) values).
	HeadDim             int
	PartialRotaryFactor float64
	// MaxPositions is max_position_embeddings; OriginalMaxPositions the
	// pretraining length llama3 and yarn scale from (original_max_position_embeddings).
	MaxPositions, OriginalMaxPositions int
	// Factor is the scaling factor of linear, dynamic, llama3 and yarn.
	Factor float64
	// LowFreqFactor and HighFreqFactor bound llama3's interpolated band.
	LowFreqFactor, HighFreqFactor float64
	// Yarn: AttentionFactor (0: derived from Factor, MScale and
	// MScaleAllDim), BetaFast and BetaSlow (0: 32 and 1), Truncate (round the
	// correction range outward; true when unset).
	AttentionFactor      float64
	BetaFast, BetaSlow   float64
	MScale, MScaleAllDim float64
	Truncate             bool
}

// ParseRopeConfig reads the rotary settings from a config.json's top-level
// fields (raw) as transformers' standardize_rope_params does. headDim is the
// model's head width (head_dim, or hidden_size / num_attention_heads) and
// maxPositions its max_position_embeddings.
func ParseRopeConfig(raw map[string]json.RawMessage, headDim, maxPositions int) (RopeConfig, error) {
	c := RopeConfig{Type: "default", Theta: 10000, HeadDim: headDim, PartialRotaryFactor: 1,
		MaxPositions: maxPositions, Truncate: true}
	get := func(m map[string]json.RawMessage, key string, dst any) error {
		v, ok := m[key]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("rope: config field %q: %w", key, err)
		}
		return nil
	}
	if err := get(raw, "rope_theta", &c.Theta); err != nil {
		return c, err
	}
	if err := get(raw, "partial_rotary_factor", &c.PartialRotaryFactor); err != nil {
		return c, err
	}
	var params map[string]json.RawMessage
	if err := get(raw, "rope_parameters", &params); err != nil {
		return c, err
	}
	if params == nil {
		if err := get(raw, "rope_scaling", &params); err != nil {
			return c, err
		}
	}
	for _, k := range []string{"full_attention", "sliding_attention"} {
		if _, ok := params[k]; ok {
			return c, fmt.Errorf("unsupported: per-layer-type rope_parameters (%q)", k)
		}
	}
	if params != nil {
		var typ, legacy string
		if err := get(params, "rope_type", &typ); err != nil {
			return c, err
		}
		if err := get(params, "type", &legacy); err != nil {
			return c, err
		}
		if typ == "" {
			typ = legacy
		}
		if typ != "" {
			c.Type = typ
		}
		var origTop int
		if err := get(raw, "original_max_position_embeddings", &origTop); err != nil {
			return c, err
		}
		var attn, fast, slow *float64
		var trunc *bool
		for _, f := range []struct {
			key string
			dst any
		}{
			{"rope_theta", &c.Theta}, {"partial_rotary_factor", &c.PartialRotaryFactor},
			{"factor", &c.Factor}, {"low_freq_factor", &c.LowFreqFactor}, {"high_freq_factor", &c.HighFreqFactor},
			{"original_max_position_embeddings", &c.OriginalMaxPositions},
			{"attention_factor", &attn}, {"beta_fast", &fast}, {"beta_slow", &slow},
			{"mscale", &c.MScale}, {"mscale_all_dim", &c.MScaleAllDim}, {"truncate", &trunc},
		} {
			if err := get(params, f.key, f.dst); err != nil {
				return c, err
			}
		}
		// Phi-3 style configs keep the pretraining length at the top level;
		// it then wins, as in standardize_rope_params.
		if origTop > 0 {
			c.OriginalMaxPositions = origTop
		}
		if attn != nil {
			c.AttentionFactor = *attn
		}
		if fast != nil {
			c.BetaFast = *fast
		}
		if slow != nil {
			c.BetaSlow = *slow
		}
		if trunc != nil {
			c.Truncate = *trunc
		}
	}
	if c.OriginalMaxPositions == 0 {
		c.OriginalMaxPositions = maxPositions
	}
	err := c.validate() // may fill in yarn's factor
	return c, err
}

func (c *RopeConfig) validate() error {
	if c.HeadDim <= 0 || c.HeadDim > 1<<16 {
		return fmt.Errorf("rope: head_dim %d out of range", c.HeadDim)
	}
	if !(c.Theta > 0) || math.IsInf(c.Theta, 0) {
		return fmt.Errorf("rope: rope_theta %v must be positive", c.Theta)
	}
	if !(c.PartialRotaryFactor > 0 && c.PartialRotaryFactor <= 1) {
		return fmt.Errorf("rope: partial_rotary_factor %v must be in (0, 1]", c.PartialRotaryFactor)
	}
	if d := c.RotaryDim(); d < 2 || d%2 != 0 {
		return fmt.Errorf("rope: rotary dimension %d (head_dim %d × %v) is not an even number of at least 2", d, c.HeadDim, c.PartialRotaryFactor)
	}
	needFactor := func() error {
		if !(c.Factor > 0) || math.IsInf(c.Factor, 0) {
			return fmt.Errorf("rope: rope_type %q needs a positive factor, got %v", c.Type, c.Factor)
		}
		return nil
	}
	switch c.Type {
	case "default":
	case "linear":
		return needFactor()
	case "dynamic":
		if c.MaxPositions <= 0 {
			return fmt.Errorf("rope: rope_type dynamic needs max_position_embeddings")
		}
		return needFactor()
	case "llama3":
		if err := needFactor(); err != nil {
			return err
		}
		if c.OriginalMaxPositions <= 0 || !(c.LowFreqFactor > 0) || !(c.HighFreqFactor > c.LowFreqFactor) {
			return fmt.Errorf("rope: rope_type llama3 needs original_max_position_embeddings > 0 and 0 < low_freq_factor < high_freq_factor (got %d, %v, %v)",
				c.OriginalMaxPositions, c.LowFreqFactor, c.HighFreqFactor)
		}
	case "yarn":
		if c.Factor == 0 && c.MaxPositions > 0 && c.OriginalMaxPositions > 0 {
			c.Factor = float64(c.MaxPositions) / float64(c.OriginalMaxPositions)
		}
		if err := needFactor(); err != nil {
			return err
		}
		if c.OriginalMaxPositions <= 0 {
			return fmt.Errorf("rope: rope_type yarn needs original_max_position_embeddings")
		}
	default:
		return fmt.Errorf("unsupported: rope_type %q (supported: default, linear, dynamic, llama3, yarn)", c.Type)
	}
	return nil
}

// RotaryDim is the number of rotated values at the start of each head.
func (c *RopeConfig) RotaryDim() int {
	return int(float64(c.HeadDim) * c.PartialRotaryFactor)
}

// baseInvFreq computes 1 / base^(2i/dim) in float32, as
// torch.arange(0, dim, 2).float() / dim does it.
func baseInvFreq(dst []float32, base float64, dim int) {
	for i := range dst {
		e := float32(2*i) / float32(dim)
		p := float32(math.Pow(float64(float32(base)), float64(e)))
		dst[i] = 1 / p
	}
}

// invFreq returns the inverse frequencies [dim/2] and the attention factor
// that multiplies cos and sin, for a call whose largest position is
// seqLen-1 (only dynamic depends on it), as modeling_rope_utils computes
// them.
func (c *RopeConfig) invFreq(dst []float32, seqLen int) float32 {
	dim := c.RotaryDim()
	switch c.Type {
	case "linear":
		baseInvFreq(dst, c.Theta, dim)
		for i := range dst {
			dst[i] /= float32(c.Factor)
		}
	case "dynamic":
		base := c.Theta
		if seqLen > c.MaxPositions {
			s := float64(seqLen)
			base *= math.Pow(c.Factor*s/float64(c.MaxPositions)-(c.Factor-1), float64(dim)/float64(dim-2))
		}
		baseInvFreq(dst, base, dim)
	case "llama3":
		baseInvFreq(dst, c.Theta, dim)
		old := float64(c.OriginalMaxPositions)
		lowWave, highWave := old/c.LowFreqFactor, old/c.HighFreqFactor
		f := float32(c.Factor)
		for i, inv := range dst {
			wave := float32(2*math.Pi) / inv
			scaled := inv
			if float64(wave) > lowWave {
				scaled = inv / f
			}
			if !(float64(wave) < highWave) && !(float64(wave) > lowWave) {
				smooth := (float32(old)/wave - float32(c.LowFreqFactor)) / float32(c.HighFreqFactor-c.LowFreqFactor)
				scaled = (1-smooth)*scaled/f + smooth*scaled
			}
			dst[i] = scaled
		}
	case "yarn":
		return c.yarn(dst, dim)
	default:
		baseInvFreq(dst, c.Theta, dim)
	}
	return 1
}

// yarn fills dst with YaRN's blend of interpolated and extrapolated
// frequencies and returns its attention factor.
func (c *RopeConfig) yarn(dst []float32, dim int) float32 {
	mscale := func(scale, m float64) float64 {
		if scale <= 1 {
			return 1
		}
		return 0.1*m*math.Log(scale) + 1
	}
	attn := c.AttentionFactor
	if attn == 0 {
		if c.MScale != 0 && c.MScaleAllDim != 0 {
			attn = mscale(c.Factor, c.MScale) / mscale(c.Factor, c.MScaleAllDim)
		} else {
			attn = mscale(c.Factor, 1)
		}
	}
	fast, slow := c.BetaFast, c.BetaSlow
	if fast == 0 {
		fast = 32
	}
	if slow == 0 {
		slow = 1
	}
	corr := func(rot float64) float64 {
		return float64(dim) * math.Log(float64(c.OriginalMaxPositions)/(rot*2*math.Pi)) / (2 * math.Log(c.Theta))
	}
	low, high := corr(fast), corr(slow)
	if c.Truncate {
		low, high = math.Floor(low), math.Ceil(high)
	}
	low, high = math.Max(low, 0), math.Min(high, float64(dim-1))
	if low == high {
		high += 0.001
	}
	f := float32(c.Factor)
	for i := range dst {
		e := float32(2*i) / float32(dim)
		pos := float32(math.Pow(float64(float32(c.Theta)), float64(e)))
		extra := 1 / pos
		inter := 1 / (f * pos)
		ramp := (float32(i) - float32(low)) / float32(high-low)
		ramp = min(max(ramp, 0), 1)
		ef := 1 - ramp
		dst[i] = inter*(1-ef) + extra*ef
	}
	return float32(attn)
}

// Rope applies rotary position embeddings in transformers' rotate-half
// layout (the first and second halves of the rotated part of a head are the
// pairs, not adjacent values). Its cos/sin tables are computed as
// transformers does (inverse frequencies, position × frequency and cos/sin
// all in float32), cached per position and grown on demand; a Rope is safe
// for concurrent use.
//
// Dynamic NTK scaling depends on the length of the sequence: transformers
// recomputes the frequencies in every forward call whose largest position id
// reaches past max_position_embeddings, from that call's largest position,
// while keys already in the cache keep the rotation they got. CosSin does
// the same: within max_position_embeddings the cached table serves, beyond
// it the values come from the call's seqLen.
type Rope struct {
	cfg   RopeConfig
	half  int
	inv   []float32 // the frequencies of every call but a dynamic one past the limit
	attn  float32
	mu    sync.Mutex // serializes growth
	table atomic.Pointer[ropeTable]
}

// ropeTable holds cos and sin for positions [0, n), half values each.
type ropeTable struct {
	n        int
	cos, sin []float32
}

// NewRope builds a Rope from a validated configuration.
func NewRope(cfg RopeConfig) (*Rope, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Rope{cfg: cfg, half: cfg.RotaryDim() / 2}
	r.inv = make([]float32, r.half)
	r.attn = cfg.invFreq(r.inv, 0)
	r.table.Store(&ropeTable{})
	return r, nil
}

// Config returns the settings the Rope was made with.
func (r *Rope) Config() RopeConfig { return r.cfg }

// Half is half the rotary dimension: the length of the cos and sin rows.
func (r *Rope) Half() int { return r.half }

// InvFreq returns a copy of the inverse frequencies used within
// max_position_embeddings, and the attention factor.
func (r *Rope) InvFreq() ([]float32, float32) { return append([]float32(nil), r.inv...), r.attn }

// fill writes cos and sin of position p for frequencies inv.
func fillCosSin(cos, sin, inv []float32, p int, attn float32) {
	fp := float32(p)
	for i, f := range inv {
		a := float64(fp * f)
		cos[i] = float32(math.Cos(a)) * attn
		sin[i] = float32(math.Sin(a)) * attn
	}
}

// table returns a table covering position p, growing the shared one.
func (r *Rope) tableFor(p int) *ropeTable {
	t := r.table.Load()
	if p < t.n {
		return t
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t = r.table.Load(); p < t.n {
		return t
	}
	n := max(2*t.n, p+1, 64)
	nt := &ropeTable{n: n, cos: make([]float32, n*r.half), sin: make([]float32, n*r.half)}
	copy(nt.cos, t.cos)
	copy(nt.sin, t.sin)
	for q := t.n; q < n; q++ {
		fillCosSin(nt.cos[q*r.half:(q+1)*r.half], nt.sin[q*r.half:(q+1)*r.half], r.inv, q, r.attn)
	}
	r.table.Store(nt)
	return nt
}

// CosSin returns the cos and sin rows [Half] of position p in a call whose
// largest position is seqLen-1. buf (at least 3·Half long) is used only
// when dynamic scaling is in force; otherwise the rows are the shared table's
// and must not be written.
func (r *Rope) CosSin(p, seqLen int, buf []float32) (cos, sin []float32) {
	if !r.Shared(seqLen) {
		h := r.half
		inv, cos, sin := buf[:h], buf[h:2*h], buf[2*h:3*h]
		attn := r.cfg.invFreq(inv, seqLen)
		fillCosSin(cos, sin, inv, p, attn)
		return cos, sin
	}
	t := r.tableFor(p)
	return t.cos[p*r.half : (p+1)*r.half], t.sin[p*r.half : (p+1)*r.half]
}

// Shared reports whether CosSin, in a call whose largest position is
// seqLen-1, returns rows of the shared table (safe to request from several
// goroutines at once) rather than computing them into its buffer: always but
// for dynamic scaling past max_position_embeddings.
func (r *Rope) Shared(seqLen int) bool {
	return !(r.cfg.Type == "dynamic" && seqLen > r.cfg.MaxPositions)
}

// Apply rotates each of heads heads of headDim values in x (one row, heads
// side by side) by cos and sin: for i < Half, with a = x[i] and
// b = x[i+Half], x[i] = a·cos − b·sin and x[i+Half] = b·cos + a·sin
// (q·cos + rotate_half(q)·sin). Values past the rotary dimension are left
// as they are (partial rotary).
func (r *Rope) Apply(x []float32, heads, headDim int, cos, sin []float32) {
	h := r.half
	for o := 0; o < heads*headDim; o += headDim {
		a, b := x[o:o+h], x[o+h:o+2*h]
		for i := range a {
			x1, x2 := a[i], b[i]
			a[i] = float32(x1*cos[i]) - float32(x2*sin[i])
			b[i] = float32(x2*cos[i]) + float32(x1*sin[i])
		}
	}
}
