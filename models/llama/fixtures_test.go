package llama

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// fixtures returns the shared fixture folder or skips.
func fixtures(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("EMBRACE_SHARED_FIXTURES"); p != "" {
		if _, err := os.Stat(filepath.Join(p, "models")); err == nil {
			return p
		}
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(d, "..", "shared", "fixtures")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	t.Skip("no fixtures: set $EMBRACE_SHARED_FIXTURES or provide ../shared/fixtures beside the module root")
	return ""
}

// fixtureDir returns models/name under the fixtures, or skips when absent.
func fixtureDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(fixtures(t), "models", name)
	if _, err := os.Stat(filepath.Join(dir, "reference.json")); err != nil {
		t.Skipf("fixture %s absent", dir)
	}
	return dir
}

type reference struct{ f *safetensors.File }

func openRef(t testing.TB, dir string) *reference {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &reference{f}
}

func (r *reference) has(name string) bool { return r.f.Has(name) }

func (r *reference) ints(t testing.TB, name string) ([]int, []int) {
	t.Helper()
	v, err := r.f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	x, err := v.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(x))
	for i, e := range x {
		out[i] = int(e)
	}
	return out, v.Shape
}

func (r *reference) floats(t testing.TB, name string) []float32 {
	t.Helper()
	v, err := r.f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	x, err := v.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// worst returns the largest |got-want| / (1e-4 + 1e-4|want|) over the
// positions keep accepts (nil: all), and the largest absolute error: the
// first must stay at most 1.
func worst(got, want []float32, keep func(i int) bool) (ratio, abs float64) {
	for i := range want {
		if keep != nil && !keep(i) {
			continue
		}
		d := math.Abs(float64(got[i]) - float64(want[i]))
		abs = max(abs, d)
		ratio = max(ratio, d/(1e-4+1e-4*math.Abs(float64(want[i]))))
	}
	return ratio, abs
}

func loadCausal(t testing.TB, dir string) *CausalLM {
	t.Helper()
	m, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c, ok := m.(*CausalLM)
	if !ok {
		t.Fatalf("%s loaded as %T, want *CausalLM", dir, m)
	}
	return c
}

// TestFixtureLogits checks every prompt's logits at all positions and its
// last hidden state against the Hugging Face references.
func TestFixtureLogits(t *testing.T) {
	for _, name := range []string{"llama", "llama-bf16", "llama3", "qwen2", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			dir := fixtureDir(t, name)
			m := loadCausal(t, dir)
			ref := openRef(t, dir)
			v := m.Info().VocabSize
			for i := 0; ; i++ {
				tag := fmt.Sprintf("prompt%d", i)
				if !ref.has(tag + ".input_ids") {
					if i == 0 {
						t.Fatal("no prompt0.input_ids in the reference")
					}
					break
				}
				ids, _ := ref.ints(t, tag+".input_ids")
				c, err := m.NewCache(1, len(ids))
				if err != nil {
					t.Fatal(err)
				}
				out, err := m.Forward(context.Background(), c, &arch.DecoderInput{IDs: ids, Logits: arch.AllPositions, Hidden: true})
				if err != nil {
					t.Fatal(err)
				}
				want := ref.floats(t, tag+".logits")
				if len(out.Logits) != len(ids)*v || len(want) != len(out.Logits) {
					t.Fatalf("%s: %d logits, want %d", tag, len(out.Logits), len(want))
				}
				r, a := worst(out.Logits, want, nil)
				t.Logf("%s.logits: worst |err| %.3g (%.3g of the tolerance)", tag, a, r)
				if r > 1 {
					t.Errorf("%s.logits: error %.3g exceeds 1e-4 + 1e-4|ref| (ratio %.3g)", tag, a, r)
				}
				if ref.has(tag + ".last_hidden_state") {
					want := ref.floats(t, tag+".last_hidden_state")
					r, a := worst(out.Hidden, want, nil)
					t.Logf("%s.last_hidden_state: worst |err| %.3g (%.3g of the tolerance)", tag, a, r)
					if r > 1 {
						t.Errorf("%s.last_hidden_state: error %.3g exceeds the tolerance (ratio %.3g)", tag, a, r)
					}
				}
			}
		})
	}
}

// generation is one entry of reference.json's generation list.
type generation struct {
	Input             string  `json:"input"`
	AttentionMask     string  `json:"attention_mask"`
	Output            string  `json:"output"`
	MaxNewTokens      int     `json:"max_new_tokens"`
	RepetitionPenalty float64 `json:"repetition_penalty"`
	NoRepeatNgramSize int     `json:"no_repeat_ngram_size"`
	PadTokenID        *int    `json:"pad_token_id"`
}

// eosIDs reads generation_config.json's eos_token_id (an int or a list).
func eosIDs(t *testing.T, dir string) map[int]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	ids, err := hfdir.IntOrList(g.EOS)
	if err != nil {
		t.Fatal(err)
	}
	set := map[int]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// greedy decodes a left-padded batch with a plain loop over Forward: argmax
// after transformers' repetition penalty and no-repeat-ngram processors,
// stopping a row at an end-of-sequence id (later tokens are pad) and the
// batch when every row has stopped.
func greedy(t *testing.T, m *CausalLM, ids, mask []int, batch int, g generation, eos map[int]bool) [][]int {
	t.Helper()
	s := len(ids) / batch
	c, err := m.NewCache(batch, s+g.MaxNewTokens)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([][]int, batch)
	for b := range seqs {
		seqs[b] = append([]int(nil), ids[b*s:(b+1)*s]...)
	}
	pad := 0
	if g.PadTokenID != nil {
		pad = *g.PadTokenID
	}
	done := make([]bool, batch)
	in := &arch.DecoderInput{IDs: ids, Mask: mask}
	v := m.Info().VocabSize
	for step := 0; step < g.MaxNewTokens; step++ {
		out, err := m.Forward(context.Background(), c, in)
		if err != nil {
			t.Fatal(err)
		}
		next := make([]int, batch)
		for b := 0; b < batch; b++ {
			logits := append([]float32(nil), out.Logits[b*v:(b+1)*v]...)
			// The processors see the real tokens of the row (padding
			// included for the penalty, as transformers passes input_ids).
			row := seqs[b]
			if g.RepetitionPenalty != 0 && g.RepetitionPenalty != 1 {
				p := float32(g.RepetitionPenalty)
				seen := map[int]bool{}
				for _, id := range row {
					if seen[id] {
						continue
					}
					seen[id] = true
					if logits[id] < 0 {
						logits[id] *= p
					} else {
						logits[id] /= p
					}
				}
			}
			if n := g.NoRepeatNgramSize; n > 0 && len(row)+1 >= n {
				prefix := row[len(row)-(n-1):]
				for i := 0; i+n <= len(row); i++ {
					match := true
					for j := 0; j < n-1; j++ {
						if row[i+j] != prefix[j] {
							match = false
							break
						}
					}
					if match {
						logits[row[i+n-1]] = float32(math.Inf(-1))
					}
				}
			}
			best := 0
			for j, x := range logits {
				if x > logits[best] {
					best = j
				}
			}
			if done[b] {
				best = pad
			}
			next[b] = best
			seqs[b] = append(seqs[b], best)
			if eos[best] {
				done[b] = true
			}
		}
		all := true
		for _, d := range done {
			all = all && d
		}
		if all {
			break
		}
		in = &arch.DecoderInput{IDs: next}
	}
	return seqs
}

// TestFixtureGeneration reproduces every greedy generation of the
// references (single prompts, the left-padded batch, repetition penalty and
// no-repeat-ngram) with a plain greedy loop over Forward.
func TestFixtureGeneration(t *testing.T) {
	for _, name := range []string{"llama", "llama3", "qwen2", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			dir := fixtureDir(t, name)
			var rj struct {
				Generation []generation `json:"generation"`
			}
			data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &rj); err != nil {
				t.Fatal(err)
			}
			if len(rj.Generation) == 0 {
				t.Fatal("no generation entries")
			}
			m := loadCausal(t, dir)
			ref := openRef(t, dir)
			eos := eosIDs(t, dir)
			for _, g := range rj.Generation {
				ids, shape := ref.ints(t, g.Input)
				var mask []int
				if g.AttentionMask != "" {
					mask, _ = ref.ints(t, g.AttentionMask)
				}
				want, wshape := ref.ints(t, g.Output)
				got := greedy(t, m, ids, mask, shape[0], g, eos)
				for b := range got {
					w := want[b*wshape[1] : (b+1)*wshape[1]]
					// The reference is padded to the longest row.
					pad := 0
					if g.PadTokenID != nil {
						pad = *g.PadTokenID
					}
					for len(got[b]) < len(w) {
						got[b] = append(got[b], pad)
					}
					if fmt.Sprint(got[b]) != fmt.Sprint(w) {
						t.Errorf("%s row %d:\n got %v\nwant %v", g.Output, b, got[b], w)
					}
				}
				t.Logf("%s: %d rows match", g.Output, len(got))
			}
		})
	}
}

// TestFixtureEncode checks qwen3-st's last hidden states through Encode on
// the right-padded batch.
func TestFixtureEncode(t *testing.T) {
	dir := fixtureDir(t, "qwen3-st")
	m, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	enc, ok := m.(*Base)
	if !ok {
		t.Fatalf("loaded as %T, want *Base", m)
	}
	ref := openRef(t, dir)
	ids, shape := ref.ints(t, "single.input.input_ids")
	mask, _ := ref.ints(t, "single.input.attention_mask")
	out, err := enc.Encode(context.Background(), &arch.EncoderInput{Batch: shape[0], Seq: shape[1], InputIDs: ids, AttentionMask: mask}, arch.EncodeOptions{HiddenStates: true})
	if err != nil {
		t.Fatal(err)
	}
	want := ref.floats(t, "single.output.last_hidden_state")
	d := m.Info().HiddenSize
	r, a := worst(out.LastHiddenState.Float32s(), want, func(i int) bool { return mask[i/d] != 0 })
	t.Logf("single.output.last_hidden_state: worst |err| %.3g (%.3g of the tolerance)", a, r)
	if r > 1 {
		t.Errorf("last_hidden_state error %.3g exceeds the tolerance (ratio %.3g)", a, r)
	}
	// Last-token pooling and L2 normalization give the sentence embeddings.
	if ref.has("embeddings") {
		emb := ref.floats(t, "embeddings")
		var worstErr float64
		for b := 0; b < shape[0]; b++ {
			last := -1
			for i := 0; i < shape[1]; i++ {
				if mask[b*shape[1]+i] != 0 {
					last = i
				}
			}
			row := out.LastHiddenState.Float32s()[(b*shape[1]+last)*d : (b*shape[1]+last+1)*d]
			var ss float64
			for _, x := range row {
				ss += float64(x) * float64(x)
			}
			for j, x := range row {
				worstErr = max(worstErr, math.Abs(float64(x)/math.Sqrt(ss)-float64(emb[b*d+j])))
			}
		}
		t.Logf("embeddings (last-token pooling, normalized): worst |err| %.3g", worstErr)
		if worstErr > 1e-4 {
			t.Errorf("embeddings differ by %.3g", worstErr)
		}
	}
	if n := len(out.HiddenStates); n != m.(*Base).m.cfg.NumHiddenLayers+1 {
		t.Errorf("%d hidden states", n)
	}
	if fmt.Sprint(out.HiddenStates[len(out.HiddenStates)-1].Float32s()[:8]) != fmt.Sprint(out.LastHiddenState.Float32s()[:8]) {
		t.Error("the last hidden state is not the last of hidden_states")
	}
}
