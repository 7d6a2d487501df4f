package safetensors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func writeShard(t *testing.T, p string, names ...string) {
	t.Helper()
	var views []TensorView
	for i, n := range names {
		views = append(views, TensorView{Name: n, DType: F32, Shape: []int{1}, Data: f32Bytes(float32(i + 1))})
	}
	if err := WriteFile(p, views, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointSharded(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, filepath.Join(dir, "a.safetensors"), "x", "y")
	writeShard(t, filepath.Join(dir, "b.safetensors"), "z")
	index := `{"metadata":{"total_size":12},"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}}`
	os.WriteFile(filepath.Join(dir, IndexFileName), []byte(index), 0o644)
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := strings.Join(c.Names(), ","); got != "x,y,z" {
		t.Errorf("Names = %s", got)
	}
	if !c.Has("z") || c.Has("w") {
		t.Error("Has wrong")
	}
	z, err := c.Tensor("z")
	if v, _ := z.Float32s(); err != nil || len(v) != 1 || v[0] != 1 {
		t.Errorf("z = %v, %v", v, err)
	}
	y, _ := c.Tensor("y")
	if v, _ := y.Float32s(); v[0] != 2 {
		t.Errorf("y = %v", v)
	}
	if _, err := c.Tensor("w"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("missing = %v", err)
	}

	// Concurrent readers share one checkpoint (run under -race).
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				for _, n := range c.Names() {
					v, err := c.Tensor(n)
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := v.Float32s(); err != nil {
						t.Error(err)
						return
					}
				}
				c.Metadata()
			}
		}()
	}
	wg.Wait()
}

func TestCheckpointErrors(t *testing.T) {
	mk := func(files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if strings.HasSuffix(name, ".safetensors") && body == "" {
				writeShard(t, filepath.Join(dir, name), "x")
				continue
			}
			os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
		}
		return dir
	}
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty folder", map[string]string{}, "no model.safetensors or model.safetensors.index.json"},
		{"pytorch only", map[string]string{"pytorch_model.bin": "x"}, "unsupported: pytorch_model.bin; convert to safetensors"},
		{"index not JSON", map[string]string{IndexFileName: "{nope"}, "not valid JSON"},
		{"index no map", map[string]string{IndexFileName: `{"metadata":{}}`}, "no weight_map"},
		{"index empty map", map[string]string{IndexFileName: `{"weight_map":{}}`}, "empty"},
		{"index map wrong type", map[string]string{IndexFileName: `{"weight_map":{"x":3}}`}, "weight_map of strings"},
		{"shard escapes", map[string]string{IndexFileName: `{"weight_map":{"x":"../evil.safetensors"}}`}, "not a plain file name"},
		{"shard absolute", map[string]string{IndexFileName: `{"weight_map":{"x":"/etc/passwd"}}`}, "not a plain file name"},
		{"shard missing", map[string]string{IndexFileName: `{"weight_map":{"x":"gone.safetensors"}}`}, "gone.safetensors"},
		{"tensor not in shard", map[string]string{IndexFileName: `{"weight_map":{"x":"a.safetensors","q":"a.safetensors"}}`, "a.safetensors": ""}, `tensor "q": mapped to shard a.safetensors`},
		{"corrupt shard", map[string]string{IndexFileName: `{"weight_map":{"x":"a.safetensors"}}`, "a.safetensors": "garbage!!"}, "header length"},
	}
	for _, c := range cases {
		dir := mk(c.files)
		_, err := OpenCheckpoint(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		if c.name == "pytorch only" && !errors.Is(err, ErrUnsupported) {
			t.Errorf("pytorch only: %v is not ErrUnsupported", err)
		}
	}
	if _, err := OpenCheckpoint(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: %v", err)
	}
}

func TestCheckpointPrefersSingleFile(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, filepath.Join(dir, SingleFileName), "single")
	os.WriteFile(filepath.Join(dir, IndexFileName), []byte(`{"weight_map":{}}`), 0o644)
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Has("single") {
		t.Errorf("names %v", c.Names())
	}
}

func TestFileConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.safetensors")
	var views []TensorView
	for i := 0; i < 50; i++ {
		views = append(views, TensorView{Name: fmt.Sprintf("t%02d", i), DType: F32, Shape: []int{4}, Data: f32Bytes(1, 2, 3, float32(i))})
	}
	if err := WriteFile(p, views, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range f.Names() {
				v, err := f.Tensor(n)
				if err != nil {
					t.Error(err)
					return
				}
				x, _ := v.Float32s()
				if want := float32(n[1]-'0')*10 + float32(n[2]-'0'); x[3] != want {
					t.Errorf("%s: %v", n, x)
				}
			}
		}()
	}
	wg.Wait()
	f.Close()
}
