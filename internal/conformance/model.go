package conformance

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"sort"

	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tokenizer"
)

// checkModel loads a model fixture as a user would and checks it through
// the capabilities the loaded model has.
func checkModel(dir string, r *Report) {
	checkReferenceKeys(dir, r)
	checkTokens(dir, r)
	m, err := models.Load(dir, r.loadOptions())
	r.loadError = err != nil
	if !r.Check("load", err) {
		return
	}
	defer m.Close()
	switch m := m.(type) {
	case arch.CausalLM:
		checkDecoder(dir, m, r)
	case arch.Encoder:
		checkEncoder(dir, m, r)
	default:
		r.Fail("unsupported: the loaded %s model is neither an encoder nor a causal LM", m.Info().Arch)
	}
}

// The reference.json keys the runner checks, and the inputs they draw on.
var (
	referenceInputs = map[string]bool{"texts": true, "pairs": true, "prompts": true}
	referenceChecks = map[string]bool{
		"fill_mask": true, "text_classification": true, "token_classification": true,
		"question_answering": true, "generation": true, "greedy": true, "tokens": true, "chat": true,
		"rerank": true, "zero_shot_classification": true,
	}
)

// checkReferenceKeys fails every list in reference.json that is neither an
// input nor a check the runner knows: a new kind of check is reported, never
// skipped. Scalars (notes, versions, seeds, margins) are informational.
func checkReferenceKeys(dir string, r *Report) {
	var ref map[string]json.RawMessage
	if err := readJSON(filepath.Join(dir, "reference.json"), &ref); err != nil {
		r.Fail("%v", err)
		return
	}
	keys := make([]string, 0, len(ref))
	for k := range ref {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if referenceInputs[k] || referenceChecks[k] {
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(ref[k], &list) != nil {
			continue // a scalar or an object: informational
		}
		if isInformational(k, list) {
			continue
		}
		r.Fail("unsupported: reference.json check %q is not implemented by the runner", k)
	}
}

// isInformational reports lists that describe the fixture rather than
// expect an output: lists of plain numbers (e.g. which relative-position
// buckets a text exercises).
func isInformational(_ string, list []json.RawMessage) bool {
	for _, v := range list {
		var x float64
		if json.Unmarshal(v, &x) != nil {
			return false
		}
	}
	return true
}

// checkTokens compares reference.json's tokens (the tokens of each text,
// special tokens included) with the folder's tokenizer.
func checkTokens(dir string, r *Report) {
	var ref struct {
		Texts  []string   `json:"texts"`
		Tokens [][]string `json:"tokens"`
	}
	if err := readJSON(filepath.Join(dir, "reference.json"), &ref); err != nil || len(ref.Tokens) == 0 {
		return
	}
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		r.Fail("tokens: %v", err)
		return
	}
	for i, want := range ref.Tokens {
		if i >= len(ref.Texts) {
			r.Fail("tokens: %d lists for %d texts", len(ref.Tokens), len(ref.Texts))
			return
		}
		enc, err := tok.Encode(ref.Texts[i], true)
		if err != nil {
			r.Fail("tokens[%d]: %v", i, err)
			return
		}
		if !slices.Equal(enc.Tokens, want) {
			r.Fail("tokens[%d]: got %q, want %q", i, enc.Tokens, want)
			return
		}
	}
	r.Pass("tokens of %d texts", len(ref.Tokens))
}
