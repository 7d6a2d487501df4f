package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tensor"
)

// reference is reference.json, loosely: the texts and the pipeline entries.
type reference struct {
	Texts               []string          `json:"texts"`
	Pairs               [][2]string       `json:"pairs"`
	FillMask            []json.RawMessage `json:"fill_mask"`
	TextClassification  []json.RawMessage `json:"text_classification"`
	TokenClassification []json.RawMessage `json:"token_classification"`
	QuestionAnswering   []json.RawMessage `json:"question_answering"`
	Pooling             string            `json:"pooling"`
	Normalize           *bool             `json:"normalize"`
}

func readReference(dir string) (*reference, error) {
	path := filepath.Join(dir, "reference.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ref reference
	if err := json.Unmarshal(data, &ref); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &ref, nil
}

// checkEncoder runs a BERT-family model fixture: every <tag>.input batch
// through the model, every pipeline entry through the pipeline API.
func checkEncoder(dir string, m arch.Encoder, r *Report) {
	ctx := context.Background()
	ref, err := readReference(dir)
	if err != nil {
		r.Fail("%v", err)
		return
	}
	rs, err := safetensors.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		r.Fail("%v", err)
		return
	}
	defer rs.Close()

	checkTokenization(dir, ref, rs, r)

	// Every <tag>.input.input_ids names a batch.
	var tags []string
	for _, n := range rs.Names() {
		if tag, ok := strings.CutSuffix(n, ".input.input_ids"); ok {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	for _, tag := range tags {
		in, err := readInput(rs, tag+".input.")
		if err != nil {
			r.Fail("%s: %v", tag, err)
			continue
		}
		out, err := m.Encode(ctx, in, arch.EncodeOptions{HiddenStates: true})
		if err != nil {
			r.Fail("%s: forward: %v", tag, err)
			continue
		}
		compareOutputs(r, rs, tag+".output.", tag+".output64.", out.Named(), in)
	}
	// qa{i}.input_ids with qa{i}.start_logits / end_logits: one unpadded
	// sequence each, with the type ids the tokenizer gives a pair.
	checkQALogits(ctx, dir, ref, rs, m, r)
	checkPipelines(ctx, dir, ref, rs, r)
}

// readInput reads input_ids, attention_mask and token_type_ids under prefix.
func readInput(rs *safetensors.File, prefix string) (*arch.EncoderInput, error) {
	v, err := rs.Tensor(prefix + "input_ids")
	if err != nil {
		return nil, err
	}
	if len(v.Shape) != 2 {
		return nil, fmt.Errorf("%sinput_ids has shape %v, want [batch, seq]", prefix, v.Shape)
	}
	ids, err := intsOf(v)
	if err != nil {
		return nil, err
	}
	in := &arch.EncoderInput{Batch: v.Shape[0], Seq: v.Shape[1], InputIDs: ids}
	if rs.Has(prefix + "attention_mask") {
		v, _ := rs.Tensor(prefix + "attention_mask")
		if in.AttentionMask, err = intsOf(v); err != nil {
			return nil, err
		}
	}
	if rs.Has(prefix + "token_type_ids") {
		v, _ := rs.Tensor(prefix + "token_type_ids")
		if in.TokenTypeIDs, err = intsOf(v); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func intsOf(v safetensors.TensorView) ([]int, error) {
	xs, err := v.Int64s()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name, err)
	}
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out, nil
}

// compareOutputs compares every reference tensor under prefix with the
// model's output of the same name, at real positions only.
func compareOutputs(r *Report, rs *safetensors.File, prefix, prefix64 string, got map[string]*tensor.Tensor, in *arch.EncoderInput) {
	for _, n := range rs.Names() {
		name, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		g, ok := got[name]
		if !ok {
			r.Fail("%s: unsupported: the model produced no %q", n, name)
			continue
		}
		v, _ := rs.Tensor(n)
		want, err := v.Float32s()
		if err != nil {
			r.Fail("%s: %v", n, err)
			continue
		}
		var want64 []float64
		if v64, err := rs.Tensor(prefix64 + name); err == nil {
			want64, _ = v64.Float64s()
			if len(want64) != len(want) {
				want64 = nil
			}
		}
		r.Compare(n, g.Float32s(), want, want64, realPositions(name, v.Shape, in))
	}
}

// realPositions says which elements of an output belong to real (unmasked)
// tokens: per-token outputs ([B, S, ...], and the [B, S] start/end logits)
// follow the attention mask; per-sequence outputs ([B, labels]) are
// compared everywhere.
func realPositions(name string, shape []int, in *arch.EncoderInput) func(int) bool {
	if in.AttentionMask == nil || len(shape) < 2 || shape[0] != in.Batch || shape[1] != in.Seq {
		return nil
	}
	if len(shape) == 2 && !strings.HasSuffix(name, "start_logits") && !strings.HasSuffix(name, "end_logits") {
		return nil
	}
	per := 1
	for _, d := range shape[2:] {
		per *= d
	}
	return func(i int) bool { return in.AttentionMask[i/per] != 0 }
}
