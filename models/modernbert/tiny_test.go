package modernbert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/internal/encodertest"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// The shape of the random checkpoints built by these tests: head size 8,
// two layer kinds, a window of 2 (local_attention 5) and room for
// sequences longer than two query blocks.
const (
	tinyVocab, tinyD, tinyHeads, tinyInter, tinyLayers, tinyPos = 40, 16, 2, 12, 4, 2048
	tinyLocal, tinyGlobalTheta, tinyLocalTheta                  = 5, 1000.0, 50.0
)

// randomView is a tensor of pseudo-random values in [-scale, scale).
func randomView(name string, seed int, scale float32, shape ...int) safetensors.TensorView {
	n := 1
	for _, s := range shape {
		n *= s
	}
	data := make([]byte, 4*n)
	x := uint32(seed*7919 + 17)
	for i := 0; i < n; i++ {
		x = x*1664525 + 1013904223
		v := (float32(x>>8)/float32(1<<24) - 0.5) * 2 * scale
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	return safetensors.TensorView{Name: name, DType: safetensors.F32, Shape: shape, Data: data}
}

// variant is one way a ModernBERT config can be written.
type variant struct {
	name string
	// biases switches attention_bias, mlp_bias, norm_bias and
	// classifier_bias together; v5 writes layer_types and rope_parameters
	// (transformers 5.x) instead of the Hub's keys.
	biases, v5 bool
}

var variants = []variant{{"hub-style, biases", true, false}, {"v5-style, no biases", false, true}}

// tinyCheckpoint writes a random ModernBERT checkpoint into a temporary
// folder; layers 0 and 2 are global, 1 and 3 sliding.
func tinyCheckpoint(t *testing.T, architecture string, v variant) string {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{
		"model_type": "modernbert", "architectures": []string{architecture},
		"vocab_size": tinyVocab, "hidden_size": tinyD, "num_attention_heads": tinyHeads,
		"intermediate_size": tinyInter, "num_hidden_layers": tinyLayers, "max_position_embeddings": tinyPos,
		"local_attention": tinyLocal, "attention_bias": v.biases, "mlp_bias": v.biases, "norm_bias": v.biases,
		"classifier_bias": v.biases, "decoder_bias": true, "classifier_pooling": "mean", "pad_token_id": 0,
	}
	if architecture != "ModernBertForQuestionAnswering" { // which has the default two labels
		cfg["id2label"] = map[string]string{"0": "a", "1": "b", "2": "c"}
	}
	if v.v5 {
		cfg["layer_types"] = []string{"full_attention", "sliding_attention", "full_attention", "sliding_attention"}
		cfg["rope_parameters"] = map[string]any{
			"full_attention":    map[string]any{"rope_type": "default", "rope_theta": tinyGlobalTheta},
			"sliding_attention": map[string]any{"rope_type": "default", "rope_theta": tinyLocalTheta},
		}
	} else {
		cfg["global_attn_every_n_layers"] = 2
		cfg["global_rope_theta"] = tinyGlobalTheta
		cfg["local_rope_theta"] = tinyLocalTheta
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	seed := 0
	var views []safetensors.TensorView
	add := func(name string, scale float32, shape ...int) {
		seed++
		views = append(views, randomView(name, seed, scale, shape...))
	}
	linear := func(name string, in, out int, bias bool) {
		add(name+".weight", 0.6, out, in)
		if bias {
			add(name+".bias", 0.2, out)
		}
	}
	norm := func(name string) {
		add(name+".weight", 1, tinyD)
		if v.biases {
			add(name+".bias", 0.2, tinyD)
		}
	}
	p := "model."
	if architecture == "ModernBertModel" {
		p = ""
	}
	add(p+"embeddings.tok_embeddings.weight", 1, tinyVocab, tinyD)
	norm(p + "embeddings.norm")
	for i := 0; i < tinyLayers; i++ {
		l := fmt.Sprintf("%slayers.%d.", p, i)
		if i > 0 {
			norm(l + "attn_norm")
		}
		linear(l+"attn.Wqkv", tinyD, 3*tinyD, v.biases)
		linear(l+"attn.Wo", tinyD, tinyD, v.biases)
		norm(l + "mlp_norm")
		linear(l+"mlp.Wi", tinyD, 2*tinyInter, v.biases)
		linear(l+"mlp.Wo", tinyInter, tinyD, v.biases)
	}
	norm(p + "final_norm")
	if architecture != "ModernBertModel" {
		linear("head.dense", tinyD, tinyD, v.biases)
		norm("head.norm")
	}
	switch architecture {
	case "ModernBertForMaskedLM":
		add("decoder.bias", 0.2, tinyVocab)
	case "ModernBertForSequenceClassification", "ModernBertForTokenClassification":
		linear("classifier", tinyD, 3, true)
	case "ModernBertForQuestionAnswering":
		linear("classifier", tinyD, 2, true)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), views, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Both config styles read into the same layer kinds and thetas.
func TestConfigStyles(t *testing.T) {
	for _, v := range variants {
		hc, err := hfdir.ReadConfig(tinyCheckpoint(t, "ModernBertModel", v))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(hc)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(c.Global) != "[true false true false]" || c.GlobalRopeTheta != tinyGlobalTheta ||
			c.LocalRopeTheta != tinyLocalTheta || c.Window() != 2 || c.NormBias != v.biases {
			t.Errorf("%s: global %v, thetas %g/%g, window %d", v.name, c.Global, c.GlobalRopeTheta, c.LocalRopeTheta, c.Window())
		}
	}
}

// A padded batch gives each sequence's real positions what it gives alone;
// a float64 forward written from modeling_modernbert.py's equations agrees
// with the model on sequences spanning several query blocks.
func TestTinyBatchAndReference(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			dir := tinyCheckpoint(t, "ModernBertForMaskedLM", v)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			lens := []int{150, 3, 65}
			seq := 150
			seqs := make([][]int, len(lens))
			for b, n := range lens {
				for i := 0; i < n; i++ {
					seqs[b] = append(seqs[b], 1+(b*13+i*7)%(tinyVocab-1))
				}
			}
			in := &arch.EncoderInput{Batch: len(lens), Seq: seq}
			for b := range lens {
				for i := 0; i < seq; i++ {
					id, mask := 0, 0
					if i < lens[b] {
						id, mask = seqs[b][i], 1
					}
					in.InputIDs = append(in.InputIDs, id)
					in.AttentionMask = append(in.AttentionMask, mask)
				}
			}
			batch, err := m.Encode(context.Background(), in, arch.EncodeOptions{HiddenStates: true})
			if err != nil {
				t.Fatal(err)
			}
			hs := batch.HiddenStates
			if len(hs) != tinyLayers+1 {
				t.Fatalf("%d hidden states, want %d", len(hs), tinyLayers+1)
			}
			for i, x := range hs[tinyLayers].Float32s() {
				if x != batch.LastHiddenState.Float32s()[i] {
					t.Fatal("the last hidden state is not the final norm's output")
				}
			}
			ref := newRef64(t, dir, v)
			for b, ids := range seqs {
				n := len(ids)
				one, err := m.Encode(context.Background(), &arch.EncoderInput{Batch: 1, Seq: n, InputIDs: ids}, arch.EncodeOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct {
					name          string
					alone, padded []float32
				}{
					{"last_hidden_state", one.LastHiddenState.Float32s(), batch.LastHiddenState.Float32s()[b*seq*tinyD:]},
					{"logits", one.Logits.Float32s(), batch.Logits.Float32s()[b*seq*tinyVocab:]},
				} {
					for i := range c.alone {
						if d := math.Abs(float64(c.alone[i] - c.padded[i])); d > 1e-5+1e-5*math.Abs(float64(c.alone[i])) {
							t.Fatalf("sequence %d %s[%d]: %v alone, %v in the padded batch", b, c.name, i, c.alone[i], c.padded[i])
						}
					}
				}
				wantH, wantL := ref.forward(ids)
				for _, c := range []struct {
					name string
					got  []float32
					want []float64
				}{{"last hidden state", one.LastHiddenState.Float32s(), wantH}, {"logits", one.Logits.Float32s(), wantL}} {
					worst := 0.0
					for i := range c.want {
						worst = max(worst, math.Abs(float64(c.got[i])-c.want[i])/(1+math.Abs(c.want[i])))
					}
					if worst > 1e-4 {
						t.Errorf("sequence %d: %s differs from the float64 reference by %.3g (relative)", b, c.name, worst)
					}
					t.Logf("sequence %d (%d tokens): %s worst relative difference from float64 %.2g", b, n, c.name, worst)
				}
			}
		})
	}
}

// ref64 is a float64 ModernBERT masked LM written directly from the
// equations, with an S×S attention.
type ref64 struct {
	v   variant
	ten map[string][]float64
}

func newRef64(t *testing.T, dir string, v variant) *ref64 {
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &ref64{v: v, ten: map[string][]float64{}}
	for _, n := range f.Names() {
		tv, _ := f.Tensor(n)
		xs, err := tv.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		ys := make([]float64, len(xs))
		for i, x := range xs {
			ys[i] = float64(x)
		}
		r.ten[n] = ys
	}
	return r
}

func (r *ref64) linear(x []float64, n, in, out int, name string) []float64 {
	w, b := r.ten[name+".weight"], r.ten[name+".bias"]
	y := make([]float64, n*out)
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			var s float64
			if b != nil {
				s = b[o]
			}
			for k := 0; k < in; k++ {
				s += x[i*in+k] * w[o*in+k]
			}
			y[i*out+o] = s
		}
	}
	return y
}

func (r *ref64) norm(x []float64, n int, name string) []float64 {
	d := tinyD
	g, b := r.ten[name+".weight"], r.ten[name+".bias"]
	y := make([]float64, len(x))
	for i := 0; i < n; i++ {
		row := x[i*d : (i+1)*d]
		var mean, v float64
		for _, a := range row {
			mean += a
		}
		mean /= float64(d)
		for _, a := range row {
			v += (a - mean) * (a - mean)
		}
		v /= float64(d)
		for k := range row {
			y[i*d+k] = (row[k] - mean) / math.Sqrt(v+1e-5) * g[k]
			if b != nil {
				y[i*d+k] += b[k]
			}
		}
	}
	return y
}

func gelu(a float64) float64 { return 0.5 * a * (1 + math.Erf(a/math.Sqrt2)) }

// forward returns the last hidden state and the logits of one unpadded
// sequence.
func (r *ref64) forward(ids []int) (hidden, logits []float64) {
	const p = "model."
	n, d, dh := len(ids), tinyD, tinyD/tinyHeads
	x := make([]float64, n*d)
	for i, id := range ids {
		copy(x[i*d:(i+1)*d], r.ten[p+"embeddings.tok_embeddings.weight"][id*d:(id+1)*d])
	}
	x = r.norm(x, n, p+"embeddings.norm")
	for l := 0; l < tinyLayers; l++ {
		pre := fmt.Sprintf("%slayers.%d.", p, l)
		global := l%2 == 0
		h := x
		if l > 0 {
			h = r.norm(x, n, pre+"attn_norm")
		}
		qkv := r.linear(h, n, d, 3*d, pre+"attn.Wqkv")
		theta := tinyLocalTheta
		if global {
			theta = tinyGlobalTheta
		}
		// Rotary: pairs (c, c + Dh/2) of each head of q and k turn by
		// pos / theta^(2c/Dh).
		for i := 0; i < n; i++ {
			for part := 0; part < 2; part++ {
				for hd := 0; hd < tinyHeads; hd++ {
					v := qkv[i*3*d+part*d+hd*dh : i*3*d+part*d+(hd+1)*dh]
					for c := 0; c < dh/2; c++ {
						a := float64(i) / math.Pow(theta, float64(2*c)/float64(dh))
						x1, x2 := v[c], v[c+dh/2]
						v[c], v[c+dh/2] = x1*math.Cos(a)-x2*math.Sin(a), x2*math.Cos(a)+x1*math.Sin(a)
					}
				}
			}
		}
		ctx := make([]float64, n*d)
		for hd := 0; hd < tinyHeads; hd++ {
			for i := 0; i < n; i++ {
				w := make([]float64, n)
				var sum float64
				for j := 0; j < n; j++ {
					if !global && (j < i-tinyLocal/2 || j > i+tinyLocal/2) {
						continue
					}
					var s float64
					for c := 0; c < dh; c++ {
						s += qkv[i*3*d+hd*dh+c] * qkv[j*3*d+d+hd*dh+c]
					}
					w[j] = math.Exp(s / math.Sqrt(float64(dh)))
					sum += w[j]
				}
				for j := 0; j < n; j++ {
					for c := 0; c < dh; c++ {
						ctx[i*d+hd*dh+c] += w[j] / sum * qkv[j*3*d+2*d+hd*dh+c]
					}
				}
			}
		}
		o := r.linear(ctx, n, d, d, pre+"attn.Wo")
		for i := range x {
			x[i] += o[i]
		}
		h = r.norm(x, n, pre+"mlp_norm")
		wi := r.linear(h, n, d, 2*tinyInter, pre+"mlp.Wi")
		g := make([]float64, n*tinyInter)
		for i := 0; i < n; i++ {
			for c := 0; c < tinyInter; c++ {
				g[i*tinyInter+c] = gelu(wi[i*2*tinyInter+c]) * wi[i*2*tinyInter+tinyInter+c]
			}
		}
		y := r.linear(g, n, tinyInter, d, pre+"mlp.Wo")
		for i := range x {
			x[i] += y[i]
		}
	}
	x = r.norm(x, n, p+"final_norm")
	h := r.linear(x, n, d, d, "head.dense")
	for i := range h {
		h[i] = gelu(h[i])
	}
	h = r.norm(h, n, "head.norm")
	tok, bias := r.ten[p+"embeddings.tok_embeddings.weight"], r.ten["decoder.bias"]
	logits = make([]float64, n*tinyVocab)
	for i := 0; i < n; i++ {
		for v := 0; v < tinyVocab; v++ {
			s := bias[v]
			for k := 0; k < d; k++ {
				s += h[i*d+k] * tok[v*d+k]
			}
			logits[i*tinyVocab+v] = s
		}
	}
	return x, logits
}

// Every head loads from the names transformers saves and gives outputs of
// the documented shapes; mean pooling averages only the real tokens.
func TestHeads(t *testing.T) {
	in := &arch.EncoderInput{Batch: 2, Seq: 7, InputIDs: []int{1, 5, 6, 7, 8, 9, 2, 1, 10, 11, 2, 0, 0, 0},
		AttentionMask: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}}
	for _, c := range []struct {
		arch  string
		task  arch.Task
		check func(*arch.EncoderOutput) bool
	}{
		{"ModernBertModel", arch.TaskBase, func(o *arch.EncoderOutput) bool { return o.Logits == nil && o.LastHiddenState.Len() == 2*7*tinyD }},
		{"ModernBertForMaskedLM", arch.TaskMaskedLM, func(o *arch.EncoderOutput) bool { return o.Logits.Len() == 2*7*tinyVocab }},
		{"ModernBertForSequenceClassification", arch.TaskSequenceClassification, func(o *arch.EncoderOutput) bool { return o.Logits.Len() == 2*3 }},
		{"ModernBertForTokenClassification", arch.TaskTokenClassification, func(o *arch.EncoderOutput) bool { return o.Logits.Len() == 2*7*3 }},
		{"ModernBertForQuestionAnswering", arch.TaskQuestionAnswering, func(o *arch.EncoderOutput) bool {
			return o.Logits == nil && o.StartLogits.Len() == 2*7 && o.EndLogits.Len() == 2*7
		}},
	} {
		t.Run(c.arch, func(t *testing.T) {
			m, err := Load(tinyCheckpoint(t, c.arch, variants[0]))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if info := m.Info(); info.Task != c.task || info.MaxPositions != tinyPos || info.Arch != "modernbert" {
				t.Errorf("Info() = %+v", info)
			}
			out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(out) {
				t.Errorf("outputs of unexpected shapes: %v", out.Named())
			}
			if c.task != arch.TaskSequenceClassification {
				return
			}
			// The second sequence alone, unpadded, classifies the same.
			alone, err := m.Encode(context.Background(), &arch.EncoderInput{Batch: 1, Seq: 4, InputIDs: in.InputIDs[7:11]}, arch.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range alone.Logits.Float32s() {
				if w := out.Logits.Float32s()[3+i]; math.Abs(float64(v-w)) > 1e-5 {
					t.Errorf("logit %d: %v alone, %v padded", i, v, w)
				}
			}
		})
	}
}

// A sequence of thousands of tokens runs in memory linear in its length:
// the attention never holds an S×S score matrix.
func TestLongSequenceMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("long sequence")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers, so allocation totals mean nothing")
	}
	m, err := Load(tinyCheckpoint(t, "ModernBertModel", variants[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := tinyPos
	in := &arch.EncoderInput{Batch: 1, Seq: s, InputIDs: make([]int, s)}
	for i := range in.InputIDs {
		in.InputIDs[i] = 1 + i%(tinyVocab-1)
	}
	// Two workers, so the bound below does not depend on the machine.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	// Activations (a few N×3D and N×2I buffers), the rotary tables and one
	// queryBlock×S score block per worker; an S×S matrix alone is 64 MiB.
	limit := uint64(4*s*(8*tinyD+4*tinyInter) + 4*s*tinyD + 2*4*queryBlock*s + 4<<20)
	if alloc > limit || limit > uint64(4*s*s) {
		t.Errorf("a %d-token sequence allocated %d bytes (limit %d, S×S floats %d)", s, alloc, limit, 4*s*s)
	}
	t.Logf("%d tokens: %.1f MiB allocated", s, float64(alloc)/(1<<20))
	if out.LastHiddenState.Len() != s*tinyD {
		t.Errorf("last hidden state of %d values", out.LastHiddenState.Len())
	}
	if _, err := m.Encode(context.Background(), &arch.EncoderInput{Batch: 1, Seq: s + 1, InputIDs: make([]int, s+1)}, arch.EncodeOptions{}); !errors.Is(err, arch.ErrTooLong) {
		t.Errorf("a sequence longer than max_position_embeddings: %v, want ErrTooLong", err)
	}
}

// Bad inputs, unsupported configs and calls after Close are errors, never
// panics.
func TestErrors(t *testing.T) {
	dir := tinyCheckpoint(t, "ModernBertModel", variants[0])
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, in := range map[string]*arch.EncoderInput{
		"nil":        nil,
		"empty":      {Batch: 0, Seq: 3},
		"short ids":  {Batch: 1, Seq: 3, InputIDs: []int{4, 5}},
		"bad id":     {Batch: 1, Seq: 2, InputIDs: []int{4, tinyVocab}},
		"negative":   {Batch: 1, Seq: 2, InputIDs: []int{4, -1}},
		"mask len":   {Batch: 1, Seq: 2, InputIDs: []int{4, 5}, AttentionMask: []int{1}},
		"mask value": {Batch: 1, Seq: 2, InputIDs: []int{4, 5}, AttentionMask: []int{1, 2}},
	} {
		if _, err := m.Encode(ctx, in, arch.EncodeOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A sequence of padding only gives finite outputs, not NaN.
	if _, err := m.Encode(ctx, &arch.EncoderInput{Batch: 1, Seq: 3, InputIDs: []int{0, 0, 0}, AttentionMask: []int{0, 0, 0}}, arch.EncodeOptions{}); err != nil {
		t.Errorf("all padding: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Encode(cancelled, &arch.EncoderInput{Batch: 1, Seq: 2, InputIDs: []int{4, 5}}, arch.EncodeOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Encode(ctx, &arch.EncoderInput{Batch: 1, Seq: 2, InputIDs: []int{4, 5}}, arch.EncodeOptions{}); !errors.Is(err, arch.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	for name, edit := range map[string]func(map[string]any){
		"architecture": func(c map[string]any) { c["architectures"] = []string{"ModernBertForMultipleChoice"} },
		"activation":   func(c map[string]any) { c["hidden_activation"] = "mish" },
		"pooling":      func(c map[string]any) { c["classifier_pooling"] = "max" },
		"rope type": func(c map[string]any) {
			c["rope_parameters"] = map[string]any{"full_attention": map[string]any{"rope_type": "yarn", "rope_theta": 1e4}}
		},
		"layer type": func(c map[string]any) {
			c["layer_types"] = []string{"full_attention", "chunked_attention", "full_attention", "sliding_attention"}
		},
	} {
		data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		var c map[string]any
		json.Unmarshal(data, &c)
		edit(c)
		sub := t.TempDir()
		data, _ = json.Marshal(c)
		os.WriteFile(filepath.Join(sub, "config.json"), data, 0o644)
		if _, err := Load(sub); !errors.Is(err, arch.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
}

// Concurrent calls of different sizes give each the result it gets alone.
func TestConcurrentEncode(t *testing.T) {
	m, err := Load(tinyCheckpoint(t, "ModernBertModel", variants[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	encodertest.CheckConcurrent(t, m, tinyVocab, 148)
}
