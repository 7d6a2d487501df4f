package conformance

import (
	"encoding/binary"
	"github.com/embrace-go/embrace/models/arch"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/safetensors"
)

func fixturesDir(t *testing.T) string {
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

// copyModel copies a fixture folder, letting edit rewrite reference tensors.
func copyModel(t *testing.T, name string, edit func(v *safetensors.TensorView)) string {
	t.Helper()
	src := filepath.Join(fixturesDir(t), "models", name)
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if os.IsNotExist(err) {
		t.Skipf("fixture %s not found under $EMBRACE_SHARED_FIXTURES or ../shared/fixtures", src)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		f, err := safetensors.Open(filepath.Join(src, "reference.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		var views []safetensors.TensorView
		for _, n := range f.Names() {
			v, _ := f.Tensor(n)
			v.Data = append([]byte(nil), v.Data...)
			edit(&v)
			views = append(views, v)
		}
		f.Close()
		if err := safetensors.WriteFile(filepath.Join(dst, "reference.safetensors"), views, nil); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestRunnerPassesFixture(t *testing.T) {
	r := run(copyModel(t, "bert-cls", nil), Options{})
	if r.Failed() || !strings.HasPrefix(r.Line(), "PASS") {
		t.Fatal(r.Line())
	}
}

// The runner notices a reference output the model does not reproduce.
func TestRunnerFailsWrongOutput(t *testing.T) {
	dir := copyModel(t, "bert-cls", func(v *safetensors.TensorView) {
		if v.Name == "single.output.logits" {
			x := math.Float32frombits(binary.LittleEndian.Uint32(v.Data))
			binary.LittleEndian.PutUint32(v.Data, math.Float32bits(x+0.01))
		}
	})
	r := run(dir, Options{})
	if !r.Failed() || !strings.Contains(r.Line(), "single.output.logits") {
		t.Fatal(r.Line())
	}
}

// A broken folder is a FAIL carrying the loader's message, not a panic.
func TestRunnerBrokenFolder(t *testing.T) {
	dir := copyModel(t, "bert-cls", nil)
	os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("garbage"), 0o644)
	r := run(dir, Options{})
	if !r.Failed() || !strings.Contains(r.Line(), "model.safetensors") {
		t.Fatal(r.Line())
	}
	dir = copyModel(t, "bert-cls", nil)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "t5"}`), 0o644)
	if r := run(dir, Options{}); !r.Failed() || !strings.Contains(r.Line(), "unsupported") {
		t.Fatal(r.Line())
	}
}

func TestFindFixtures(t *testing.T) {
	dirs, err := findFixtures(t.TempDir())
	if err != nil || len(dirs) != 0 {
		t.Fatalf("%v %v", dirs, err)
	}
	if _, err := findFixtures(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing path gave no error")
	}
}

// With reduced precision the runner reports accuracy figures instead of
// failing on the float32 tolerances.
func TestRunnerAccuracyMode(t *testing.T) {
	r := run(copyModel(t, "bert-cls", nil), Options{Load: arch.LoadOptions{Quantize: arch.QuantizeQ8}})
	line := r.Line()
	if r.Failed() || !strings.HasPrefix(line, "ACCURACY") || !strings.Contains(line, "min cosine") {
		t.Fatal(line)
	}
}
