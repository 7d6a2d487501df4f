package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixturesDir finds the shared reference fixtures: $EMBRACE_SHARED_FIXTURES,
// else ../shared/fixtures next to the module root; it skips the test when
// neither exists.
func fixturesDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("EMBRACE_SHARED_FIXTURES"); d != "" {
		if st, err := os.Stat(filepath.Join(d, "models")); err == nil && st.IsDir() {
			return d
		}
	}
	root, _ := filepath.Abs(".")
	for root != filepath.Dir(root) {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		root = filepath.Dir(root)
	}
	d := filepath.Join(root, "..", "shared", "fixtures")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	t.Skipf("no fixtures: set $EMBRACE_SHARED_FIXTURES or provide %s", d)
	return ""
}

func fixtureFiles(t testing.TB) []string {
	dir := fixturesDir(t)
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".safetensors") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatalf("no *.safetensors under %s", dir)
	}
	return files
}

// TestFixturesOpen opens every fixture file and reads every tensor back with
// a dtype-appropriate conversion.
func TestFixturesOpen(t *testing.T) {
	for _, p := range fixtureFiles(t) {
		f, err := Open(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(f.Names()) == 0 {
			t.Errorf("%s: no tensors", p)
		}
		for _, name := range f.Names() {
			v, err := f.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			if v.Name != name || len(v.Data) != v.NumElements()*v.DType.Size() {
				t.Errorf("%s: %s: %d bytes for shape %v of %s", p, name, len(v.Data), v.Shape, v.DType)
			}
			switch v.DType {
			case I64:
				ids, err := v.Int64s()
				if err != nil || len(ids) != v.NumElements() {
					t.Errorf("%s: %s: Int64s: %v", p, name, err)
				}
			default:
				xs, err := v.Float32s()
				if err != nil || len(xs) != v.NumElements() {
					t.Errorf("%s: %s: Float32s: %v", p, name, err)
				}
				for _, x := range xs {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						t.Errorf("%s: %s: non-finite value %v", p, name, x)
						break
					}
				}
			}
		}
		if !strings.HasSuffix(p, "reference.safetensors") && f.Metadata()["format"] != "pt" {
			t.Errorf("%s: metadata %v, want format=pt", p, f.Metadata())
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestFixturesRewriteIdentical checks the writer against the fixture files:
// rewriting every tensor must give the same bytes as the Python library
// wrote. The second-wave fixtures were written by another tool, whose
// header lists the keys in another order; those must round-trip tensor for
// tensor (same names, dtypes, shapes and bytes) instead.
func TestFixturesRewriteIdentical(t *testing.T) {
	for _, p := range fixtureFiles(t) {
		f, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var views []TensorView
		for _, name := range f.Names() {
			v, _ := f.Tensor(name)
			views = append(views, v)
		}
		var buf bytes.Buffer
		if err := Write(&buf, views, f.Metadata()); err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(p)
		if slices.Equal(headerKeys(t, want), headerKeys(t, buf.Bytes())) {
			if !bytes.Equal(buf.Bytes(), want) {
				n := min(len(want), buf.Len(), 200)
				t.Errorf("%s: rewrite differs from the Python-written file\n got %q\nwant %q", p, buf.Bytes()[:n], want[:n])
			}
		} else {
			tmp := filepath.Join(t.TempDir(), "rewrite.safetensors")
			if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			back, err := Open(tmp)
			if err != nil {
				t.Fatalf("%s: reading the rewrite: %v", p, err)
			}
			defer back.Close()
			for _, v := range views {
				w, err := back.Tensor(v.Name)
				if err != nil || w.DType != v.DType || !slices.Equal(w.Shape, v.Shape) || !bytes.Equal(w.Data, v.Data) {
					t.Errorf("%s: %s does not round-trip (%v)", p, v.Name, err)
				}
			}
		}
		f.Close()
	}
}

// headerKeys lists a file's header keys in the order they appear.
func headerKeys(t *testing.T, file []byte) []string {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	dec := json.NewDecoder(bytes.NewReader(file[8 : 8+n]))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestFixturesValues checks values through independent paths: F16 and BF16
// copies of a model against its F32 weights, and float64 reference outputs
// against their float32 twins.
func TestFixturesValues(t *testing.T) {
	dir := fixturesDir(t)
	for _, pair := range [][3]string{
		{"bert", "bert-f16", "F16"}, {"bert", "bert-bf16", "BF16"},
		{"gpt2", "gpt2-f16", "F16"}, {"gpt2", "gpt2-bf16", "BF16"},
	} {
		base := filepath.Join(dir, "models", pair[0], "model.safetensors")
		low := filepath.Join(dir, "models", pair[1], "model.safetensors")
		if _, err := os.Stat(low); err != nil {
			t.Logf("skipping %s: %v", pair[1], err)
			continue
		}
		fb, err := Open(base)
		if err != nil {
			t.Fatal(err)
		}
		fl, err := Open(low)
		if err != nil {
			t.Fatal(err)
		}
		// Relative precision of the narrow type: 2^-11 for F16, 2^-8 for BF16.
		tol := 1.0 / 2048
		if pair[2] == "BF16" {
			tol = 1.0 / 256
		}
		checked := 0
		for _, name := range fl.Names() {
			vl, _ := fl.Tensor(name)
			if string(vl.DType) != pair[2] {
				t.Errorf("%s: %s has dtype %s", low, name, vl.DType)
			}
			if !fb.Has(name) {
				continue // tied or renamed weights
			}
			vb, _ := fb.Tensor(name)
			xl, err1 := vl.Float32s()
			xb, err2 := vb.Float32s()
			if err1 != nil || err2 != nil || len(xl) != len(xb) {
				t.Fatalf("%s: %v %v", name, err1, err2)
			}
			for i := range xl {
				if d := math.Abs(float64(xl[i] - xb[i])); d > tol*math.Abs(float64(xb[i]))+1e-7 {
					t.Fatalf("%s: %s[%d] = %v, F32 model has %v", low, name, i, xl[i], xb[i])
				}
			}
			checked++
		}
		if checked == 0 {
			t.Errorf("%s: no tensor compared", low)
		}
		fb.Close()
		fl.Close()
	}

	// output64 tensors are the same computation in float64.
	ref, err := Open(filepath.Join(dir, "models", "bert", "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	pairs := 0
	for _, name := range ref.Names() {
		if !strings.Contains(name, ".output64.") {
			continue
		}
		v64, _ := ref.Tensor(name)
		v32, err := ref.Tensor(strings.Replace(name, ".output64.", ".output.", 1))
		if err != nil {
			t.Fatal(err)
		}
		x64, _ := v64.Float64s()
		x32, _ := v32.Float32s()
		if v64.DType != F64 || len(x64) != len(x32) {
			t.Fatalf("%s: %s %v vs %v", name, v64.DType, v64.Shape, v32.Shape)
		}
		for i := range x64 {
			if math.Abs(x64[i]-float64(x32[i])) > 1e-3+1e-3*math.Abs(x64[i]) {
				t.Fatalf("%s[%d]: f64 %v vs f32 %v", name, i, x64[i], x32[i])
			}
		}
		pairs++
	}
	if pairs == 0 {
		t.Error("no output64 tensors in bert reference")
	}
	// Attention masks are 0/1 and input ids are non-negative.
	for _, name := range ref.Names() {
		if strings.HasSuffix(name, "attention_mask") || strings.HasSuffix(name, "input_ids") {
			v, _ := ref.Tensor(name)
			ids, err := v.Int64s()
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if id < 0 || strings.HasSuffix(name, "mask") && id > 1 {
					t.Fatalf("%s: implausible value %d", name, id)
				}
			}
		}
	}
}

// TestFixturesCheckpoints resolves shards by name and compares them with the
// single-file checkpoint of the same model.
func TestFixturesCheckpoints(t *testing.T) {
	dir := fixturesDir(t)
	for _, m := range [][2]string{{"bert-sharded", "bert"}, {"gpt2-sharded", "gpt2"}} {
		sharded, err := OpenCheckpoint(filepath.Join(dir, "models", m[0]))
		if err != nil {
			t.Fatal(err)
		}
		single, err := OpenCheckpoint(filepath.Join(dir, "models", m[1]))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(sharded.Path(), IndexFileName) || !strings.HasSuffix(single.Path(), SingleFileName) {
			t.Errorf("paths %s, %s", sharded.Path(), single.Path())
		}
		if len(sharded.files) < 2 {
			t.Errorf("%s: %d shard files", m[0], len(sharded.files))
		}
		names := sharded.Names()
		if len(names) != len(single.Names()) {
			t.Errorf("%s has %d tensors, %s has %d", m[0], len(names), m[1], len(single.Names()))
		}
		for _, name := range names {
			a, err := sharded.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			b, err := single.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			if a.DType != b.DType || !bytes.Equal(a.Data, b.Data) || len(a.Shape) != len(b.Shape) {
				t.Errorf("%s: %s differs between shards and single file", m[0], name)
			}
		}
		if sharded.Metadata()["format"] != "pt" {
			t.Errorf("%s metadata %v", m[0], sharded.Metadata())
		}
		sharded.Close()
		single.Close()
	}
}
