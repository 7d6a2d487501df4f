package modernbert

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// fixturesDir finds the shared reference fixtures, or skips the test.
func fixturesDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("EMBRACE_SHARED_FIXTURES"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "models")); err == nil {
			return d
		}
	}
	d := filepath.Join("..", "..", "..", "shared", "fixtures")
	if _, err := os.Stat(d); err == nil {
		return d
	}
	t.Skip("no fixtures: set $EMBRACE_SHARED_FIXTURES or provide ../shared/fixtures next to the module root")
	return ""
}

// modernbertFixtures lists the model fixtures whose config.json is a ModernBERT one.
func modernbertFixtures(t *testing.T) []string {
	root := filepath.Join(fixturesDir(t), "models")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if hc, err := hfdir.ReadConfig(dir); err == nil && hc.ModelType == "modernbert" {
			out = append(out, dir)
		}
	}
	if len(out) == 0 {
		t.Skipf("no ModernBERT fixtures under %s", root)
	}
	return out
}

func ints(t *testing.T, v safetensors.TensorView) []int {
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

// readInput reads <tag>.input.* from a reference file.
func readInput(t *testing.T, ref *safetensors.File, tag string) *arch.EncoderInput {
	ids, err := ref.Tensor(tag + ".input.input_ids")
	if err != nil {
		t.Fatal(err)
	}
	in := &arch.EncoderInput{Batch: ids.Shape[0], Seq: ids.Shape[1], InputIDs: ints(t, ids)}
	if v, err := ref.Tensor(tag + ".input.attention_mask"); err == nil {
		in.AttentionMask = ints(t, v)
	}
	return in
}

// Every <tag>.output.* of each ModernBERT fixture's reference.safetensors matches
// at real positions within 1e-4 + 1e-4·|ref|.
func TestFixtures(t *testing.T) {
	for _, dir := range modernbertFixtures(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
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
				t.Fatal("no <tag>.input batches")
			}
			checked := 0
			for _, tag := range tags {
				in := readInput(t, ref, tag)
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
		})
	}
}
