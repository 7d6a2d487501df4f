package mpnet

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/embrace-go/embrace/internal/encodertest"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// tiny is the shape of the random checkpoints built by these tests.
const (
	tinyVocab, tinyD, tinyHeads, tinyInter, tinyLayers, tinyPos = 50, 16, 4, 24, 2, 80
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

// tinyCheckpoint writes a random MPNet checkpoint with the given
// architecture into a temporary folder. Weights are large enough that every
// layer and the relative bias change the outputs.
func tinyCheckpoint(t *testing.T, architecture string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{
		"model_type": "mpnet", "architectures": []string{architecture},
		"vocab_size": tinyVocab, "hidden_size": tinyD, "num_attention_heads": tinyHeads,
		"intermediate_size": tinyInter, "num_hidden_layers": tinyLayers, "max_position_embeddings": tinyPos,
		"relative_attention_num_buckets": 32, "id2label": map[string]string{"0": "a", "1": "b", "2": "c"},
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
	norm := func(name string, d int) {
		add(name+".weight", 0.5, d) // around 0 is fine: it only scales
		add(name+".bias", 0.2, d)
	}
	p := ""
	if architecture != "MPNetModel" {
		p = "mpnet."
	}
	add(p+"embeddings.word_embeddings.weight", 1, tinyVocab, tinyD)
	add(p+"embeddings.position_embeddings.weight", 1, tinyPos, tinyD)
	norm(p+"embeddings.LayerNorm", tinyD)
	add(p+"encoder.relative_attention_bias.weight", 3, 32, tinyHeads)
	for i := 0; i < tinyLayers; i++ {
		l := p + "encoder.layer." + string(rune('0'+i)) + "."
		for _, n := range []string{"q", "k", "v", "o"} {
			add(l+"attention.attn."+n+".weight", 0.6, tinyD, tinyD)
			add(l+"attention.attn."+n+".bias", 0.2, tinyD)
		}
		norm(l+"attention.LayerNorm", tinyD)
		add(l+"intermediate.dense.weight", 0.5, tinyInter, tinyD)
		add(l+"intermediate.dense.bias", 0.2, tinyInter)
		add(l+"output.dense.weight", 0.5, tinyD, tinyInter)
		add(l+"output.dense.bias", 0.2, tinyD)
		norm(l+"output.LayerNorm", tinyD)
	}
	switch architecture {
	case "MPNetModel":
		add("pooler.dense.weight", 0.5, tinyD, tinyD)
		add("pooler.dense.bias", 0.2, tinyD)
	case "MPNetForMaskedLM":
		add("lm_head.dense.weight", 0.5, tinyD, tinyD)
		add("lm_head.dense.bias", 0.2, tinyD)
		norm("lm_head.layer_norm", tinyD)
		add("lm_head.bias", 0.2, tinyVocab)
	case "MPNetForSequenceClassification":
		add("classifier.dense.weight", 0.5, tinyD, tinyD)
		add("classifier.dense.bias", 0.2, tinyD)
		add("classifier.out_proj.weight", 0.5, 3, tinyD)
		add("classifier.out_proj.bias", 0.2, 3)
	case "MPNetForTokenClassification":
		add("classifier.weight", 0.5, 3, tinyD)
		add("classifier.bias", 0.2, 3)
	case "MPNetForQuestionAnswering":
		add("qa_outputs.weight", 0.5, 2, tinyD)
		add("qa_outputs.bias", 0.2, 2)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), views, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// refBucket is relative_position_bucket written independently in float64:
// sign half, then exact buckets below 8, then log-spaced up to 15.
func refBucket(rel int) int {
	b := 0
	if rel > 0 { // key after the query
		b = 16
	}
	n := math.Abs(float64(rel))
	if n < 8 {
		return b + int(n)
	}
	v := 8 + math.Floor(math.Log(n/8)/math.Log(128.0/8)*8)
	return b + int(math.Min(v, 15))
}

// The bucket of each relative position matches a table worked out by hand
// and the float64 formula everywhere in ±5000.
func TestRelativeBucket(t *testing.T) {
	// Distances n = |rel| → bucket: 0-7 exact; then 8 + ⌊8·log(n/8)/log 16⌋:
	// 8-11 → 8, 12-15 → 9, 16-22 → 10, 23-31 → 11, 32-45 → 12, 46-63 → 13,
	// 64-90 → 14, 91 and more → 15. Keys after the query add 16.
	hand := map[int]int{
		0: 0, -1: 1, -7: 7, -8: 8, -11: 8, -12: 9, -15: 9, -16: 10, -22: 10, -23: 11, -31: 11,
		-32: 12, -45: 12, -46: 13, -63: 13, -64: 14, -90: 14, -91: 15, -128: 15, -4000: 15,
		1: 17, 7: 23, 8: 24, 11: 24, 12: 25, 16: 26, 23: 27, 32: 28, 46: 29, 63: 29, 64: 30, 90: 30, 91: 31, 500: 31,
	}
	for rel, want := range hand {
		if got := RelativeBucket(rel); got != want {
			t.Errorf("RelativeBucket(%d) = %d, want %d (by hand)", rel, got, want)
		}
	}
	for rel := -5000; rel <= 5000; rel++ {
		if got, want := RelativeBucket(rel), refBucket(rel); got != want {
			t.Fatalf("RelativeBucket(%d) = %d, float64 reference %d", rel, got, want)
		}
	}
}

// A padded batch gives each sequence's real positions what the sequence
// gives alone, unpadded; a float64 forward written from modeling_mpnet.py's
// equations agrees with the model.
func TestTinyBatchAndReference(t *testing.T) {
	dir := tinyCheckpoint(t, "MPNetForMaskedLM")
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Lengths up to 70 reach every bucket up to 14 on both sides.
	lens := []int{70, 5, 33}
	seq := 70
	seqs := make([][]int, len(lens))
	for b, n := range lens {
		for i := 0; i < n; i++ {
			seqs[b] = append(seqs[b], 2+(b*31+i*7)%(tinyVocab-2)) // never the padding id 1
		}
	}
	in := &arch.EncoderInput{Batch: len(lens), Seq: seq}
	for b := range lens {
		for i := 0; i < seq; i++ {
			id, mask := PaddingIdx, 0
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
	if len(batch.HiddenStates) != tinyLayers+1 {
		t.Fatalf("%d hidden states, want %d", len(batch.HiddenStates), tinyLayers+1)
	}
	ref := newRef64(t, dir)
	for b, ids := range seqs {
		n := len(ids)
		one, err := m.Encode(context.Background(), &arch.EncoderInput{Batch: 1, Seq: n, InputIDs: ids}, arch.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for name, pair := range map[string][2]*[]float32{
			"last_hidden_state": {ptr(one.LastHiddenState.Float32s()), ptr(batch.LastHiddenState.Float32s()[b*seq*tinyD:])},
			"logits":            {ptr(one.Logits.Float32s()), ptr(batch.Logits.Float32s()[b*seq*tinyVocab:])},
		} {
			alone, padded := *pair[0], *pair[1]
			for i := range alone {
				if d := math.Abs(float64(alone[i] - padded[i])); d > 1e-5+1e-5*math.Abs(float64(alone[i])) {
					t.Fatalf("sequence %d %s[%d]: %v alone, %v in the padded batch", b, name, i, alone[i], padded[i])
				}
			}
		}
		want := ref.forward(ids)
		got := one.LastHiddenState.Float32s()
		worst := 0.0
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i])-want[i]))
		}
		if worst > 1e-4 {
			t.Errorf("sequence %d: last hidden state differs from the float64 reference by %.3g", b, worst)
		}
		t.Logf("sequence %d (%d tokens): worst difference from float64 %.2g", b, n, worst)
	}
}

func ptr(s []float32) *[]float32 { return &s }

// ref64 is a float64 MPNet encoder written directly from the equations.
type ref64 struct {
	ten map[string][]float64
}

func newRef64(t *testing.T, dir string) *ref64 {
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &ref64{ten: map[string][]float64{}}
	for _, n := range f.Names() {
		v, _ := f.Tensor(n)
		xs, err := v.Float32s()
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
			s := b[o]
			for k := 0; k < in; k++ {
				s += x[i*in+k] * w[o*in+k]
			}
			y[i*out+o] = s
		}
	}
	return y
}

func (r *ref64) norm(x []float64, n, d int, name string) {
	g, b := r.ten[name+".weight"], r.ten[name+".bias"]
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
			row[k] = (row[k]-mean)/math.Sqrt(v+1e-12)*g[k] + b[k]
		}
	}
}

// forward returns the last hidden state of one unpadded sequence.
func (r *ref64) forward(ids []int) []float64 {
	const p = "mpnet."
	n, d, dh := len(ids), tinyD, tinyD/tinyHeads
	x := make([]float64, n*d)
	for i, id := range ids {
		for k := 0; k < d; k++ {
			x[i*d+k] = r.ten[p+"embeddings.word_embeddings.weight"][id*d+k] + r.ten[p+"embeddings.position_embeddings.weight"][(i+2)*d+k]
		}
	}
	r.norm(x, n, d, p+"embeddings.LayerNorm")
	table := r.ten[p+"encoder.relative_attention_bias.weight"]
	for l := 0; l < tinyLayers; l++ {
		pre := p + "encoder.layer." + string(rune('0'+l)) + "."
		q := r.linear(x, n, d, d, pre+"attention.attn.q")
		k := r.linear(x, n, d, d, pre+"attention.attn.k")
		v := r.linear(x, n, d, d, pre+"attention.attn.v")
		ctx := make([]float64, n*d)
		for h := 0; h < tinyHeads; h++ {
			for i := 0; i < n; i++ {
				s := make([]float64, n)
				mx := math.Inf(-1)
				for j := 0; j < n; j++ {
					for c := 0; c < dh; c++ {
						s[j] += q[i*d+h*dh+c] * k[j*d+h*dh+c]
					}
					s[j] = s[j]/math.Sqrt(float64(dh)) + table[refBucket(j-i)*tinyHeads+h]
					mx = math.Max(mx, s[j])
				}
				var sum float64
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := range s {
					for c := 0; c < dh; c++ {
						ctx[i*d+h*dh+c] += s[j] / sum * v[j*d+h*dh+c]
					}
				}
			}
		}
		o := r.linear(ctx, n, d, d, pre+"attention.attn.o")
		for i := range x {
			x[i] += o[i]
		}
		r.norm(x, n, d, pre+"attention.LayerNorm")
		u := r.linear(x, n, d, tinyInter, pre+"intermediate.dense")
		for i, a := range u {
			u[i] = 0.5 * a * (1 + math.Erf(a/math.Sqrt2))
		}
		y := r.linear(u, n, tinyInter, d, pre+"output.dense")
		for i := range x {
			x[i] += y[i]
		}
		r.norm(x, n, d, pre+"output.LayerNorm")
	}
	return x
}

// Every head loads from the names transformers saves and gives outputs of
// the documented shapes.
func TestHeads(t *testing.T) {
	for _, c := range []struct {
		arch  string
		task  arch.Task
		check func(*arch.EncoderOutput) bool
	}{
		{"MPNetModel", arch.TaskBase, func(o *arch.EncoderOutput) bool { return o.PoolerOutput != nil && o.PoolerOutput.Len() == 2*tinyD }},
		{"MPNetForMaskedLM", arch.TaskMaskedLM, func(o *arch.EncoderOutput) bool { return o.Logits.Len() == 2*7*tinyVocab }},
		{"MPNetForSequenceClassification", arch.TaskSequenceClassification, func(o *arch.EncoderOutput) bool { return o.Logits.Len() == 2*3 }},
		{"MPNetForTokenClassification", arch.TaskTokenClassification, func(o *arch.EncoderOutput) bool { return o.Logits.Len() == 2*7*3 }},
		{"MPNetForQuestionAnswering", arch.TaskQuestionAnswering, func(o *arch.EncoderOutput) bool {
			return o.StartLogits.Len() == 2*7 && o.EndLogits.Len() == 2*7
		}},
	} {
		t.Run(c.arch, func(t *testing.T) {
			m, err := Load(tinyCheckpoint(t, c.arch))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if info := m.Info(); info.Task != c.task || info.MaxPositions != tinyPos-2 || info.Arch != "mpnet" {
				t.Errorf("Info() = %+v", info)
			}
			in := &arch.EncoderInput{Batch: 2, Seq: 7, InputIDs: []int{0, 5, 6, 7, 8, 9, 2, 0, 10, 11, 2, 1, 1, 1},
				AttentionMask: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}}
			out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(out) {
				t.Errorf("outputs of unexpected shapes: %v", out.Named())
			}
		})
	}
}

// Bad inputs, unsupported configs and calls after Close are errors, never
// panics.
func TestErrors(t *testing.T) {
	dir := tinyCheckpoint(t, "MPNetModel")
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
		"too long":   {Batch: 1, Seq: tinyPos - 1, InputIDs: make([]int, tinyPos-1)},
	} {
		if _, err := m.Encode(ctx, in, arch.EncodeOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := m.Encode(ctx, &arch.EncoderInput{Batch: 1, Seq: tinyPos - 1, InputIDs: make([]int, tinyPos-1)}, arch.EncodeOptions{}); !errors.Is(err, arch.ErrTooLong) {
		t.Errorf("too long: %v, want ErrTooLong", err)
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
	// Unsupported configs wrap arch.ErrUnsupported.
	for name, edit := range map[string]func(map[string]any){
		"architecture": func(c map[string]any) { c["architectures"] = []string{"MPNetForMultipleChoice"} },
		"activation":   func(c map[string]any) { c["hidden_act"] = "mish" },
		"buckets":      func(c map[string]any) { c["relative_attention_num_buckets"] = 16 },
	} {
		data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		var c map[string]any
		json.Unmarshal(data, &c)
		edit(c)
		data, _ = json.Marshal(c)
		os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
		if _, err := Load(dir); !errors.Is(err, arch.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
}

// Concurrent calls of different sizes give each the result it gets alone.
func TestConcurrentEncode(t *testing.T) {
	m, err := Load(tinyCheckpoint(t, "MPNetModel"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	encodertest.CheckConcurrent(t, m, tinyVocab, 48)
}
