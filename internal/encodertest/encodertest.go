// Package encodertest holds the checks every encoder architecture's tests
// share: finding the shared reference fixtures of its model types, and
// comparing a model's outputs with a fixture's reference.safetensors.
package encodertest

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// FixturesDir is the shared reference fixtures folder:
// $EMBRACE_SHARED_FIXTURES, else ../shared/fixtures beside the module root
// (three levels above a models/<arch> package). It skips the test when
// neither has a models/ folder.
func FixturesDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("EMBRACE_SHARED_FIXTURES"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "models")); err == nil {
			return d
		}
	}
	d := filepath.Join("..", "..", "..", "shared", "fixtures")
	if _, err := os.Stat(filepath.Join(d, "models")); err == nil {
		return d
	}
	t.Skip("no fixtures: set $EMBRACE_SHARED_FIXTURES or provide ../shared/fixtures next to the module root")
	return ""
}

// Fixtures lists the model fixture folders whose config.json has one of
// modelTypes, skipping the test when there is none.
func Fixtures(t *testing.T, modelTypes ...string) []string {
	t.Helper()
	root := filepath.Join(FixturesDir(t), "models")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if hc, err := hfdir.ReadConfig(dir); err == nil && slices.Contains(modelTypes, hc.ModelType) {
			out = append(out, dir)
		}
	}
	if len(out) == 0 {
		t.Skipf("no %v fixtures under %s", modelTypes, root)
	}
	return out
}

// Ints reads an integer tensor as ints.
func Ints(t testing.TB, v safetensors.TensorView) []int {
	t.Helper()
	xs, err := v.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

// ReadInput reads <tag>.input.* (input_ids, attention_mask and
// token_type_ids when present) from a reference file.
func ReadInput(t testing.TB, ref *safetensors.File, tag string) *arch.EncoderInput {
	t.Helper()
	ids, err := ref.Tensor(tag + ".input.input_ids")
	if err != nil {
		t.Fatal(err)
	}
	in := &arch.EncoderInput{Batch: ids.Shape[0], Seq: ids.Shape[1], InputIDs: Ints(t, ids)}
	if v, err := ref.Tensor(tag + ".input.attention_mask"); err == nil {
		in.AttentionMask = Ints(t, v)
	}
	if v, err := ref.Tensor(tag + ".input.token_type_ids"); err == nil {
		in.TokenTypeIDs = Ints(t, v)
	}
	return in
}

// CheckReference runs every <tag>.input batch of dir's
// reference.safetensors through m (with every layer's hidden states) and
// compares each <tag>.output.* with the output of the same name
// (arch.EncoderOutput.Named) at real positions, within 1e-4 + 1e-4·|ref|.
// A reference without input batches skips the test (the pipeline tests
// check those fixtures).
func CheckReference(t *testing.T, dir string, m arch.Encoder) {
	t.Helper()
	ref, err := safetensors.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	var tags []string
	for _, n := range ref.Names() {
		if tag, _, ok := strings.Cut(n, ".input.input_ids"); ok && !strings.Contains(tag, ".") {
			tags = append(tags, tag)
		}
	}
	if len(tags) == 0 {
		t.Skip("no <tag>.input batches (checked by the pipeline tests)")
	}
	sort.Strings(tags)
	checked := 0
	for _, tag := range tags {
		in := ReadInput(t, ref, tag)
		out, err := m.Encode(context.Background(), in, arch.EncodeOptions{HiddenStates: true})
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		named := out.Named()
		var names []string
		for _, n := range ref.Names() {
			if strings.HasPrefix(n, tag+".output.") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			key := strings.TrimPrefix(n, tag+".output.")
			got, ok := named[key]
			if !ok {
				t.Errorf("%s: model produced no %s", tag, key)
				continue
			}
			v, _ := ref.Tensor(n)
			want, err := v.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			g := got.Float32s()
			if len(g) != len(want) {
				t.Errorf("%s: %d values, want %d", n, len(g), len(want))
				continue
			}
			// Values per position: compare the rows whose token is real.
			per := len(want) / (in.Batch * in.Seq)
			tokenLevel := len(v.Shape) >= 2 && v.Shape[1] == in.Seq
			worst, worstAbs := 0.0, 0.0
			for i := range want {
				if tokenLevel && in.AttentionMask != nil && in.AttentionMask[i/per] == 0 {
					continue
				}
				d := math.Abs(float64(g[i] - want[i]))
				tol := 1e-4 + 1e-4*math.Abs(float64(want[i]))
				worst, worstAbs = max(worst, d/tol), max(worstAbs, d)
				if d > tol {
					t.Errorf("%s[%d] = %v, want %v", n, i, g[i], want[i])
					break
				}
			}
			checked++
			t.Logf("%s: worst %.3f of tolerance (abs %.2g)", n, worst, worstAbs)
		}
	}
	if checked == 0 {
		t.Error("nothing compared")
	}
}

// HalfCopies rewrites the checkpoint in dir with every tensor rounded to
// dtype (F16 or BF16): one folder storing the half values, one storing the
// same values widened back to F32.
func HalfCopies(t *testing.T, dir string, dtype safetensors.DType) (half, wide string) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hv, wv []safetensors.TensorView
	for _, n := range f.Names() {
		v, _ := f.Tensor(n)
		xs, err := v.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		u := make([]uint16, len(xs))
		back := make([]float32, len(xs))
		if dtype == safetensors.F16 {
			tensor.F32ToF16(u, xs)
			tensor.F16ToF32(back, u)
		} else {
			tensor.F32ToBF16(u, xs)
			tensor.BF16ToF32(back, u)
		}
		hb, wb := make([]byte, 2*len(u)), make([]byte, 4*len(back))
		for i := range u {
			binary.LittleEndian.PutUint16(hb[2*i:], u[i])
			binary.LittleEndian.PutUint32(wb[4*i:], math.Float32bits(back[i]))
		}
		hv = append(hv, safetensors.TensorView{Name: n, DType: dtype, Shape: v.Shape, Data: hb})
		wv = append(wv, safetensors.TensorView{Name: n, DType: safetensors.F32, Shape: v.Shape, Data: wb})
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	half, wide = t.TempDir(), t.TempDir()
	for d, views := range map[string][]safetensors.TensorView{half: hv, wide: wv} {
		if err := os.WriteFile(filepath.Join(d, "config.json"), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := safetensors.WriteFile(filepath.Join(d, "model.safetensors"), views, nil); err != nil {
			t.Fatal(err)
		}
	}
	return half, wide
}

// CheckHalfPrecision checks that F16 and BF16 copies of the checkpoint in
// dir (kept half in memory by the loader) give the logits of their values
// widened to float32, within 1e-4 + 1e-4·|ref|.
func CheckHalfPrecision(t *testing.T, dir string, in *arch.EncoderInput, load func(dir string) (arch.Encoder, error)) {
	t.Helper()
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		half, wide := HalfCopies(t, dir, dt)
		var outs [2][]float32
		for i, d := range []string{half, wide} {
			m, err := load(d)
			if err != nil {
				t.Fatalf("%s: %v", dt, err)
			}
			out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
			m.Close()
			if err != nil {
				t.Fatalf("%s: %v", dt, err)
			}
			outs[i] = out.Logits.Float32s()
		}
		for i := range outs[0] {
			if d := math.Abs(float64(outs[0][i] - outs[1][i])); d > 1e-4+1e-4*math.Abs(float64(outs[1][i])) {
				t.Fatalf("%s: logit %d = %v, widened weights give %v", dt, i, outs[0][i], outs[1][i])
			}
		}
	}
}

// CheckConcurrent runs inputs of six lengths from 3 to maxLen tokens (ids
// in [1, vocab)) through m alone, then from four goroutines at once, three
// times each: every concurrent call must give the bits it gave alone.
func CheckConcurrent(t *testing.T, m arch.Encoder, vocab, maxLen int) {
	t.Helper()
	inputs := make([]*arch.EncoderInput, 6)
	want := make([][]float32, len(inputs))
	for i := range inputs {
		n := 3 + (maxLen-3)*i/(len(inputs)-1)
		in := &arch.EncoderInput{Batch: 1, Seq: n}
		for k := 0; k < n; k++ {
			in.InputIDs = append(in.InputIDs, 1+(i+k*5)%(vocab-1))
		}
		inputs[i] = in
		out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out.LastHiddenState.Float32s()
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 3; r++ {
				for i, in := range inputs {
					out, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
					if err != nil {
						t.Error(err)
						return
					}
					for k, v := range out.LastHiddenState.Float32s() {
						if v != want[i][k] {
							t.Errorf("input %d: value %d differs under concurrency", i, k)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}
