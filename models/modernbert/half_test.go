package modernbert

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// halfCopies rewrites the checkpoint in dir with every tensor rounded to
// dtype (F16 or BF16): one folder storing the half values, one storing the
// same values widened back to F32.
func halfCopies(t *testing.T, dir string, dtype safetensors.DType) (half, wide string) {
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

// F16 and BF16 checkpoints (kept half in memory) give what their values
// widened to float32 give.
func TestHalfPrecision(t *testing.T) {
	dir := tinyCheckpoint(t, "ModernBertForMaskedLM", variants[0])
	in := &arch.EncoderInput{Batch: 1, Seq: 12, InputIDs: []int{1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 2}}
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		half, wide := halfCopies(t, dir, dt)
		var outs [2][]float32
		for i, d := range []string{half, wide} {
			m, err := Load(d)
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
