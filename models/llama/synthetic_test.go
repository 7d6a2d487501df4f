package llama

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// tiny describes a small random checkpoint written for a test.
type tiny struct {
	modelType string
	arch      string // architectures[0]; "" = <Type>ForCausalLM
	dtype     safetensors.DType
	noPrefix  bool // names without "model." (base model classes)
	tied      bool
	attnBias  bool // attention_bias (llama, qwen3)
	mlpBias   bool
	headDim   int // explicit head_dim (0: hidden/heads)
	heads     int
	kvHeads   int
	window    int            // sliding_window
	rope      map[string]any // rope_parameters (nil: default)
	skip      string         // a tensor name to leave out
	// Sizes; 0 means the tiny defaults below.
	hidden, inner, vocab, layers int
}

const (
	tinyHidden = 24
	tinyInner  = 29
	tinyVocab  = 61
	tinyLayers = 2
)

func (c tiny) write(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if c.heads == 0 {
		c.heads, c.kvHeads = 4, 2
	}
	if c.hidden == 0 {
		c.hidden, c.inner, c.vocab, c.layers = tinyHidden, tinyInner, tinyVocab, tinyLayers
	}
	hd := c.headDim
	if hd == 0 {
		hd = c.hidden / c.heads
	}
	architecture := c.arch
	if architecture == "" {
		architecture = map[string]string{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
			"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[c.modelType]
	}
	cfg := map[string]any{
		"model_type": c.modelType, "architectures": []string{architecture},
		"vocab_size": c.vocab, "hidden_size": c.hidden, "intermediate_size": c.inner,
		"num_hidden_layers": c.layers, "num_attention_heads": c.heads, "num_key_value_heads": c.kvHeads,
		"rms_norm_eps": 1e-5, "hidden_act": "silu", "max_position_embeddings": 128,
		"tie_word_embeddings": c.tied, "attention_bias": c.attnBias, "mlp_bias": c.mlpBias,
	}
	if c.headDim != 0 {
		cfg["head_dim"] = c.headDim
	}
	if c.window != 0 {
		cfg["sliding_window"] = c.window
	}
	if c.rope != nil {
		cfg["rope_parameters"] = c.rope
	} else {
		cfg["rope_theta"] = 10000.0
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, uint64(len(c.modelType))))
	var views []safetensors.TensorView
	add := func(name string, std, mean float64, shape ...int) {
		if name == c.skip {
			return
		}
		n := 1
		for _, s := range shape {
			n *= s
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(mean + rng.NormFloat64()*std)
		}
		dt := c.dtype
		if dt == "" {
			dt = safetensors.F32
		}
		var buf []byte
		switch dt {
		case safetensors.F16, safetensors.BF16:
			h := make([]uint16, n)
			if dt == safetensors.F16 {
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
		views = append(views, safetensors.TensorView{Name: name, DType: dt, Shape: shape, Data: buf})
	}
	p := "model."
	if c.noPrefix {
		p = ""
	}
	d, q, kv, inner := c.hidden, c.heads*hd, c.kvHeads*hd, c.inner
	qkvBias := c.attnBias || c.modelType == "qwen2"
	oBias := c.attnBias && c.modelType != "qwen2"
	add(p+"embed_tokens.weight", 0.7, 0, c.vocab, d)
	for l := 0; l < c.layers; l++ {
		s := fmt.Sprintf("%slayers.%d.", p, l)
		add(s+"input_layernorm.weight", 0.2, 1, d)
		add(s+"post_attention_layernorm.weight", 0.2, 1, d)
		add(s+"self_attn.q_proj.weight", 0.4, 0, q, d)
		add(s+"self_attn.k_proj.weight", 0.4, 0, kv, d)
		add(s+"self_attn.v_proj.weight", 0.4, 0, kv, d)
		add(s+"self_attn.o_proj.weight", 0.3, 0, d, q)
		if qkvBias {
			add(s+"self_attn.q_proj.bias", 0.3, 0, q)
			add(s+"self_attn.k_proj.bias", 0.3, 0, kv)
			add(s+"self_attn.v_proj.bias", 0.3, 0, kv)
		}
		if oBias {
			add(s+"self_attn.o_proj.bias", 0.3, 0, d)
		}
		if c.modelType == "qwen3" {
			add(s+"self_attn.q_norm.weight", 0.2, 1, hd)
			add(s+"self_attn.k_norm.weight", 0.2, 1, hd)
		}
		add(s+"mlp.gate_proj.weight", 0.3, 0, inner, d)
		add(s+"mlp.up_proj.weight", 0.3, 0, inner, d)
		add(s+"mlp.down_proj.weight", 0.3, 0, d, inner)
		if c.mlpBias {
			add(s+"mlp.gate_proj.bias", 0.2, 0, inner)
			add(s+"mlp.up_proj.bias", 0.2, 0, inner)
			add(s+"mlp.down_proj.bias", 0.2, 0, d)
		}
	}
	add(p+"norm.weight", 0.2, 1, d)
	if !c.tied {
		add("lm_head.weight", 0.5, 0, c.vocab, d)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), views, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadTiny(t testing.TB, c tiny) *CausalLM {
	t.Helper()
	return loadCausal(t, c.write(t))
}

// variants are the shapes the cache tests cover.
var variants = map[string]tiny{
	"llama-gqa-untied":  {modelType: "llama", heads: 4, kvHeads: 2},
	"llama-mha-tied":    {modelType: "llama", heads: 3, kvHeads: 3, tied: true, attnBias: true, mlpBias: true},
	"llama3-rope":       {modelType: "llama", heads: 4, kvHeads: 1, rope: map[string]any{"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}},
	"qwen2-bias-tied":   {modelType: "qwen2", heads: 4, kvHeads: 2, tied: true},
	"qwen3-qknorm":      {modelType: "qwen3", heads: 4, kvHeads: 2, headDim: 10},
	"qwen3-tied-bias":   {modelType: "qwen3", heads: 2, kvHeads: 1, headDim: 16, tied: true, attnBias: true},
	"mistral-window":    {modelType: "mistral", heads: 4, kvHeads: 2, window: 5},
	"llama-bf16":        {modelType: "llama", heads: 4, kvHeads: 2, dtype: safetensors.BF16},
	"llama-yarn-f16":    {modelType: "llama", heads: 4, kvHeads: 2, dtype: safetensors.F16, rope: map[string]any{"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 32}},
	"llama-dynamic-ntk": {modelType: "llama", heads: 4, kvHeads: 2, rope: map[string]any{"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}},
}

// recompute runs the whole sequence of each row (its real tokens only, no
// cache kept) and returns the last position's logits.
func recompute(t testing.TB, m *CausalLM, seq []int) []float32 {
	t.Helper()
	c, err := m.NewCache(1, len(seq))
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Forward(context.Background(), c, &arch.DecoderInput{IDs: seq})
	if err != nil {
		t.Fatal(err)
	}
	return out.Logits
}

func maxDiff(a, b []float32) float64 {
	var w float64
	for i := range a {
		w = max(w, math.Abs(float64(a[i]-b[i]))/(1+math.Abs(float64(b[i]))))
	}
	return w
}

// TestCacheMatchesRecompute decodes 30 steps through the KV cache, for one
// sequence and for a left-padded batch of unequal lengths, and compares
// every step's logits with a fresh pass over the whole sequence.
func TestCacheMatchesRecompute(t *testing.T) {
	for name, v := range variants {
		t.Run(name, func(t *testing.T) {
			m := loadTiny(t, v)
			tol := 2e-5
			if v.dtype != "" {
				tol = 1e-4 // half weights are widened exactly; only sums reorder
			}
			r := rand.New(rand.NewPCG(11, 12))
			for _, lens := range [][]int{{6}, {3, 7, 1}} {
				batch, s := len(lens), 0
				for _, n := range lens {
					s = max(s, n)
				}
				ids := make([]int, batch*s)
				mask := make([]int, batch*s)
				seqs := make([][]int, batch)
				for b, n := range lens {
					for i := s - n; i < s; i++ {
						ids[b*s+i] = r.IntN(tinyVocab)
						mask[b*s+i] = 1
						seqs[b] = append(seqs[b], ids[b*s+i])
					}
				}
				c, err := m.NewCache(batch, s+30)
				if err != nil {
					t.Fatal(err)
				}
				in := &arch.DecoderInput{IDs: ids, Mask: mask}
				for step := 0; step < 30; step++ {
					out, err := m.Forward(context.Background(), c, in)
					if err != nil {
						t.Fatal(err)
					}
					next := make([]int, batch)
					for b := range lens {
						got := out.Logits[b*tinyVocab : (b+1)*tinyVocab]
						want := recompute(t, m, seqs[b])
						if d := maxDiff(got, want); d > tol {
							t.Fatalf("lens %v step %d row %d: cached logits differ from recomputed by %.3g", lens, step, b, d)
						}
						next[b] = r.IntN(tinyVocab)
						seqs[b] = append(seqs[b], next[b])
					}
					in = &arch.DecoderInput{IDs: next}
				}
			}
		})
	}
}

// TestAllPositionsMatchesSteps checks AllPositions and Hidden against the
// same tokens fed one at a time, and the batch rows against each alone.
func TestAllPositionsMatchesSteps(t *testing.T) {
	m := loadTiny(t, variants["qwen3-qknorm"])
	ids := []int{5, 9, 2, 44, 17, 3, 60, 8}
	c, _ := m.NewCache(1, 0)
	all, err := m.Forward(context.Background(), c, &arch.DecoderInput{IDs: ids, Logits: arch.AllPositions, Hidden: true})
	if err != nil {
		t.Fatal(err)
	}
	allLogits := append([]float32(nil), all.Logits...)
	allHidden := append([]float32(nil), all.Hidden...)
	c2, _ := m.NewCache(1, 0)
	for i, id := range ids {
		out, err := m.Forward(context.Background(), c2, &arch.DecoderInput{IDs: []int{id}, Hidden: true})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(out.Logits, allLogits[i*tinyVocab:(i+1)*tinyVocab]); d > 2e-5 {
			t.Fatalf("position %d: logits differ by %.3g", i, d)
		}
		if d := maxDiff(out.Hidden, allHidden[i*tinyHidden:(i+1)*tinyHidden]); d > 2e-5 {
			t.Fatalf("position %d: hidden differs by %.3g", i, d)
		}
	}
	// Truncate back to 3 and decode the rest again.
	if err := c2.Truncate(3); err != nil {
		t.Fatal(err)
	}
	out, err := m.Forward(context.Background(), c2, &arch.DecoderInput{IDs: ids[3:], Logits: arch.AllPositions})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(out.Logits, allLogits[3*tinyVocab:]); d > 2e-5 {
		t.Fatalf("after Truncate: logits differ by %.3g", d)
	}
	if c2.Len() != len(ids) || c2.(*Cache).SeqLen(0) != len(ids) {
		t.Fatalf("Len %d", c2.Len())
	}
	// A second chunk into a non-empty cache, last position only (the
	// last layer then runs its attention and MLP on that row alone).
	if err := c2.Truncate(2); err != nil {
		t.Fatal(err)
	}
	out, err = m.Forward(context.Background(), c2, &arch.DecoderInput{IDs: ids[2:], Hidden: true})
	if err != nil {
		t.Fatal(err)
	}
	last := len(ids) - 1
	if d := maxDiff(out.Logits, allLogits[last*tinyVocab:]); d > 2e-5 {
		t.Fatalf("chunked prompt: last logits differ by %.3g", d)
	}
	if d := maxDiff(out.Hidden, allHidden[last*tinyHidden:]); d > 2e-5 {
		t.Fatalf("chunked prompt: last hidden state differs by %.3g", d)
	}
}

// TestHalfCache checks that F16 and BF16 key/value storage stays close to
// float32 storage.
func TestHalfCache(t *testing.T) {
	m := loadTiny(t, variants["llama-gqa-untied"])
	ids := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	ref := recompute(t, m, ids)
	for _, dt := range []tensor.DType{tensor.F16, tensor.BF16} {
		c, err := m.NewCacheWith(1, 32, CacheOptions{DType: dt, PageSize: 4})
		if err != nil {
			t.Fatal(err)
		}
		// A prompt, then one token at a time: the steps read the stored
		// (rounded) keys and values.
		out, err := m.Forward(context.Background(), c, &arch.DecoderInput{IDs: ids[:3]})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids[3:] {
			if out, err = m.Forward(context.Background(), c, &arch.DecoderInput{IDs: []int{id}}); err != nil {
				t.Fatal(err)
			}
		}
		tol := 5e-2
		if d := maxDiff(out.Logits, ref); d > tol || d == 0 {
			t.Fatalf("%v cache: logits differ from float32 storage by %v", dt, d)
		}
	}
}

// TestDecodeStepDoesNotAllocate measures a decoding step on a warm cache.
func TestDecodeStepDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, name := range []string{"llama-gqa-untied", "qwen3-qknorm", "llama-bf16"} {
		m := loadTiny(t, variants[name])
		c, _ := m.NewCache(2, 100)
		ctx := context.Background()
		prompt := &arch.DecoderInput{IDs: []int{1, 2, 3, 4, 0, 0, 5, 6}, Mask: []int{1, 1, 1, 1, 0, 0, 1, 1}}
		step := &arch.DecoderInput{IDs: []int{7, 8}}
		run := func() {
			c.Reset()
			if _, err := m.Forward(ctx, c, prompt); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 60; i++ {
				if _, err := m.Forward(ctx, c, step); err != nil {
					t.Fatal(err)
				}
			}
		}
		run() // warm: pages, history and buffers reach their size
		c.Reset()
		if _, err := m.Forward(ctx, c, prompt); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Forward(ctx, c, step); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(50, func() {
			if _, err := m.Forward(ctx, c, step); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: a decoding step allocates %v times", name, allocs)
		}
	}
}

// TestConcurrentForward runs Forward from several goroutines on one model,
// each with its own cache, and checks each gets what it gets alone.
func TestConcurrentForward(t *testing.T) {
	dir := variants["qwen2-bias-tied"].write(t)
	lone, m := loadCausal(t, dir), loadCausal(t, dir) // m's rope tables grow under the goroutines
	ctx := context.Background()
	decodeWith := func(m *CausalLM, seed uint64) []float32 {
		r := rand.New(rand.NewPCG(seed, 1))
		c, err := m.NewCache(1, 40)
		if err != nil {
			t.Error(err)
			return nil
		}
		var all []float32
		in := &arch.DecoderInput{IDs: []int{r.IntN(tinyVocab), r.IntN(tinyVocab), r.IntN(tinyVocab)}}
		for i := 0; i < 20; i++ {
			out, err := m.Forward(ctx, c, in)
			if err != nil {
				t.Error(err)
				return nil
			}
			all = append(all, out.Logits...)
			in = &arch.DecoderInput{IDs: []int{r.IntN(tinyVocab)}}
		}
		return all
	}
	const n = 6
	want := make([][]float32, n)
	for i := range want {
		want[i] = decodeWith(lone, uint64(i))
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := decodeWith(m, uint64(i)); fmt.Sprint(got) != fmt.Sprint(want[i]) {
				t.Errorf("goroutine %d: results differ from a lone run", i)
			}
		}()
	}
	wg.Wait()
}

// TestCloseWaitsAndRefuses closes a model while calls run: the calls in
// flight finish, later calls return arch.ErrClosed.
func TestCloseWaitsAndRefuses(t *testing.T) {
	m := loadTiny(t, variants["llama-gqa-untied"])
	ctx := context.Background()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := m.NewCache(1, 64)
			if err != nil {
				if !errors.Is(err, arch.ErrClosed) {
					t.Error(err)
				}
				return
			}
			<-start
			for i := 0; i < 50; i++ {
				_, err := m.Forward(ctx, c, &arch.DecoderInput{IDs: []int{i % tinyVocab}})
				if errors.Is(err, arch.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				runtime.Gosched()
			}
		}()
	}
	close(start)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	c := &Cache{m: m.m}
	if _, err := m.Forward(ctx, c, &arch.DecoderInput{IDs: []int{1}}); !errors.Is(err, arch.ErrClosed) {
		t.Fatalf("Forward after Close: %v", err)
	}
	if _, err := m.NewCache(1, 4); !errors.Is(err, arch.ErrClosed) {
		t.Fatalf("NewCache after Close: %v", err)
	}
	if _, err := m.Encode(ctx, &arch.EncoderInput{Batch: 1, Seq: 1, InputIDs: []int{1}}, arch.EncodeOptions{}); !errors.Is(err, arch.ErrClosed) {
		t.Fatalf("Encode after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestBaseModel loads a base model saved without the "model." prefix and
// checks Encode against the causal model's hidden states on the same
// weights, with right padding.
func TestBaseModel(t *testing.T) {
	base := tiny{modelType: "qwen3", arch: "Qwen3Model", noPrefix: true, tied: true, heads: 4, kvHeads: 2, headDim: 8}
	bm, err := LoadDir(base.write(t))
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Close()
	if _, ok := bm.(arch.CausalLM); ok {
		t.Fatal("a base model implements CausalLM")
	}
	if bm.Info().Task != arch.TaskBase {
		t.Fatalf("task %v", bm.Info().Task)
	}
	causal := base
	causal.arch, causal.noPrefix = "", false
	cm := loadTiny(t, causal)
	ids := []int{3, 4, 5, 6, 7, 8, 0, 0}
	mask := []int{1, 1, 1, 1, 1, 1, 0, 0}
	out, err := bm.(*Base).Encode(context.Background(), &arch.EncoderInput{Batch: 2, Seq: 4, InputIDs: ids, AttentionMask: mask}, arch.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for b, seq := range [][]int{{3, 4, 5, 6}, {7, 8}} {
		c, _ := cm.NewCache(1, 4)
		res, err := cm.Forward(context.Background(), c, &arch.DecoderInput{IDs: seq, Logits: arch.AllPositions, Hidden: true})
		if err != nil {
			t.Fatal(err)
		}
		got := out.LastHiddenState.Float32s()[b*4*tinyHidden : (b*4+len(seq))*tinyHidden]
		if d := maxDiff(got, res.Hidden); d > 1e-5 {
			t.Fatalf("row %d: Encode differs from the causal model's hidden states by %.3g", b, d)
		}
	}
}

// TestBadInputs checks that bad calls and bad checkpoints give errors.
func TestBadInputs(t *testing.T) {
	m := loadTiny(t, variants["llama-gqa-untied"])
	ctx := context.Background()
	c, _ := m.NewCache(2, 4)
	for _, in := range []*arch.DecoderInput{
		{IDs: []int{1, 2, 3}},
		{IDs: []int{1, tinyVocab}},
		{IDs: []int{1, -1}},
		{IDs: []int{1, 2}, Mask: []int{1}},
		{IDs: []int{1, 2}, Mask: []int{1, 2}},
		{IDs: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{IDs: []int{1, 2}, Logits: 7},
	} {
		if _, err := m.Forward(ctx, c, in); err == nil {
			t.Errorf("Forward(%+v) succeeded", in)
		}
	}
	if c.Len() != 0 {
		t.Fatalf("failed calls changed the cache: Len %d", c.Len())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Forward(cctx, c, &arch.DecoderInput{IDs: []int{1, 2}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Forward: %v", err)
	}
	if c.Len() != 0 || c.(*Cache).SeqLen(0) != 0 {
		t.Fatal("a cancelled call changed the cache")
	}
	for _, bad := range []tiny{
		{modelType: "llama", skip: "model.layers.1.mlp.up_proj.weight"},
		{modelType: "llama", skip: "lm_head.weight"},
		{modelType: "qwen3", skip: "model.layers.0.self_attn.q_norm.weight"},
		{modelType: "llama", rope: map[string]any{"rope_type": "longrope", "rope_theta": 1e4}},
		{modelType: "llama", rope: map[string]any{"rope_type": "linear", "rope_theta": 1e4}},
		{modelType: "llama", arch: "LlamaForSequenceClassification"},
	} {
		if _, err := LoadDir(bad.write(t)); err == nil {
			t.Errorf("%+v loaded", bad)
		}
	}
	_, err := LoadDir(tiny{modelType: "llama", rope: map[string]any{"rope_type": "longrope", "rope_theta": 1e4}}.write(t))
	if !errors.Is(err, arch.ErrUnsupported) {
		t.Errorf("longrope: %v does not wrap ErrUnsupported", err)
	}
	_, err = LoadDir(tiny{modelType: "llama", arch: "LlamaForSequenceClassification"}.write(t))
	if !errors.Is(err, arch.ErrUnsupported) {
		t.Errorf("classification head: %v does not wrap ErrUnsupported", err)
	}
}

// TestDynamicRope checks the wiring of dynamic NTK scaling: within
// max_position_embeddings (128 here) it is the default rotation; past it
// the frequencies change with the call's length, and decoding goes on.
func TestDynamicRope(t *testing.T) {
	dyn := loadTiny(t, variants["llama-dynamic-ntk"])
	plain := loadTiny(t, variants["llama-gqa-untied"]) // same seed and shapes, default rope
	ids := make([]int, 140)
	for i := range ids {
		ids[i] = (i * 13) % tinyVocab
	}
	short, long := recompute(t, dyn, ids[:100]), recompute(t, dyn, ids)
	if d := maxDiff(short, recompute(t, plain, ids[:100])); d != 0 {
		t.Fatalf("within max_position_embeddings dynamic differs from default by %v", d)
	}
	if d := maxDiff(long, recompute(t, plain, ids)); d == 0 {
		t.Fatal("past max_position_embeddings dynamic equals default")
	}
	c, _ := dyn.NewCache(1, 150)
	if _, err := dyn.Forward(context.Background(), c, &arch.DecoderInput{IDs: ids[:127]}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[127:] {
		if _, err := dyn.Forward(context.Background(), c, &arch.DecoderInput{IDs: []int{id}}); err != nil {
			t.Fatal(err)
		}
	}
}

// Reduced precision (issue 20): q8 weights and BF16 compute give logits
// close to the default load, the head included (hidden width 64 so the
// blocks of 32 are full). The random weights are large on purpose, which
// amplifies rounding: both are held to 0.998 here (measured 0.9985 for q8
// and 0.9989 for BF16 compute on the worst shape).
func TestReducedPrecision(t *testing.T) {
	for _, name := range []string{"llama-gqa-untied", "qwen2-bias-tied", "qwen3-qknorm"} {
		c := variants[name]
		c.hidden, c.inner, c.vocab, c.layers = 64, 96, 61, 2
		if c.headDim != 0 {
			c.headDim = 16
		}
		dir := c.write(t)
		ref := loadCausal(t, dir)
		seq := []int{3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3, 2, 38, 4, 6}
		want := recompute(t, ref, seq)
		for _, opt := range []arch.LoadOptions{{Quantize: arch.QuantizeQ8}, {Compute: arch.ComputeBF16}} {
			const bound = 0.998
			f, err := hfdir.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Load(f, opt)
			if err != nil {
				t.Fatal(err)
			}
			got := recompute(t, m.(*CausalLM), seq)
			m.Close()
			var dot, na, nb float64
			for i := range got {
				dot += float64(got[i]) * float64(want[i])
				na += float64(got[i]) * float64(got[i])
				nb += float64(want[i]) * float64(want[i])
			}
			if cos := dot / math.Sqrt(na*nb); cos < bound {
				t.Errorf("%s %+v: cosine %.6f to the default load", name, opt, cos)
			}
		}
	}
}
