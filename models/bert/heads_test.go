package bert

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/embrace-go/embrace/internal/encodertest"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

func randomView(name string, seed int, shape ...int) safetensors.TensorView {
	n := 1
	for _, s := range shape {
		n *= s
	}
	data := make([]byte, 4*n)
	x := uint32(seed*7919 + 1)
	for i := 0; i < n; i++ {
		x = x*1664525 + 1013904223
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(x>>8)/float32(1<<24)-0.5))
	}
	return safetensors.TensorView{Name: name, DType: safetensors.F32, Shape: shape, Data: data}
}

// Every head loads for every family from the weight names transformers
// saves, and produces outputs of the documented shapes.
func TestHeadsPerFamily(t *testing.T) {
	encodertest.FixturesDir(t)
	const d = 32
	cases := []struct {
		fixture, arch string
		extra         func(vocab, labels int) []safetensors.TensorView
		outputs       []string
	}{
		{"distilbert-cls", "DistilBertForMaskedLM", func(v, _ int) []safetensors.TensorView {
			return []safetensors.TensorView{randomView("vocab_transform.weight", 1, d, d), randomView("vocab_transform.bias", 2, d),
				randomView("vocab_layer_norm.weight", 3, d), randomView("vocab_layer_norm.bias", 4, d), randomView("vocab_projector.bias", 5, v)}
		}, []string{"logits"}},
		{"distilbert-cls", "DistilBertForQuestionAnswering", func(_, _ int) []safetensors.TensorView {
			return []safetensors.TensorView{randomView("qa_outputs.weight", 1, 2, d), randomView("qa_outputs.bias", 2, 2)}
		}, []string{"start_logits", "end_logits"}},
		{"distilbert-cls", "DistilBertForTokenClassification", nil, []string{"logits"}},
		{"distilbert-cls", "DistilBertModel", nil, nil},
		{"roberta-cls", "RobertaForTokenClassification", func(_, l int) []safetensors.TensorView {
			return []safetensors.TensorView{randomView("classifier.weight", 1, l, d), randomView("classifier.bias", 2, l)}
		}, []string{"logits"}},
		{"roberta-cls", "RobertaForQuestionAnswering", func(_, _ int) []safetensors.TensorView {
			return []safetensors.TensorView{randomView("qa_outputs.weight", 1, 2, d), randomView("qa_outputs.bias", 2, 2)}
		}, []string{"start_logits", "end_logits"}},
		{"roberta-mlm", "RobertaModel", nil, nil},
		{"bert", "BertModel", nil, []string{"pooler_output"}},
		{"bert", "BertForMaskedLM", nil, []string{"logits"}},
		{"bert-cls", "BertForTokenClassification", nil, []string{"logits"}},
	}
	for _, c := range cases {
		t.Run(c.fixture+"/"+c.arch, func(t *testing.T) {
			cfg0, err := ReadConfig(encodertest.FixturesDir(t) + "/models/" + c.fixture + "/config.json")
			if err != nil {
				t.Fatal(err)
			}
			var extra []safetensors.TensorView
			if c.extra != nil {
				extra = c.extra(cfg0.VocabSize, len(cfg0.Labels))
			}
			dir := copyFixture(t, c.fixture, func(m map[string]any) { m["architectures"] = []string{c.arch} }, nil, extra...)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ids := []int{0, 10, 11, 12, 2}
			out, err := m.Encode(context.Background(), &arch.EncoderInput{Batch: 1, Seq: len(ids), InputIDs: ids}, arch.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			named := out.Named()
			var names []string
			for k := range named {
				names = append(names, k)
			}
			for _, want := range append([]string{"last_hidden_state"}, c.outputs...) {
				if !slices.Contains(names, want) {
					t.Fatalf("outputs %v lack %s", names, want)
				}
			}
			for _, k := range c.outputs {
				shape := fmt.Sprint(named[k].Shape())
				var want string
				switch {
				case k == "pooler_output":
					want = fmt.Sprint([]int{1, d})
				case k == "start_logits" || k == "end_logits":
					want = fmt.Sprint([]int{1, len(ids)})
				case m.Config.Task == arch.TaskMaskedLM:
					want = fmt.Sprint([]int{1, len(ids), m.Config.VocabSize})
				default:
					want = fmt.Sprint([]int{1, len(ids), len(m.Config.Labels)})
				}
				if shape != want {
					t.Errorf("%s shape %s, want %s", k, shape, want)
				}
			}
		})
	}
}
