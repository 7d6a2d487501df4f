package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tokenizer"
)

// retrievalReference is the part of reference.json the pair-scoring
// pipelines answer: cross-encoder reranking and zero-shot classification.
type retrievalReference struct {
	Rerank   []json.RawMessage `json:"rerank"`
	ZeroShot []json.RawMessage `json:"zero_shot_classification"`
}

// checkRetrieval runs reference.json's rerank entries through
// pipeline.Reranker and its zero_shot_classification entries through
// pipeline.ZeroShotClassifier. The model's logits for their batches
// (rerank{i}.*, zsc{i}.*) are compared by checkEncoder's tag loop; here the
// tokenization of those batches and the pipelines' results are.
func checkRetrieval(ctx context.Context, dir string, rs *safetensors.File, r *Report) {
	var ref retrievalReference
	if err := readJSON(filepath.Join(dir, "reference.json"), &ref); err != nil {
		r.Fail("%v", err)
		return
	}
	if len(ref.Rerank) > 0 {
		checkRerank(ctx, dir, ref.Rerank, rs, r)
	}
	if len(ref.ZeroShot) > 0 {
		checkZeroShot(ctx, dir, ref.ZeroShot, rs, r)
	}
}

func checkRerank(ctx context.Context, dir string, entries []json.RawMessage, rs *safetensors.File, r *Report) {
	rr, err := pipeline.NewReranker(ctx, dir, r.options())
	if !r.Check("rerank pipeline", err) {
		return
	}
	defer rr.Close()
	for i, raw := range entries {
		name := fmt.Sprintf("rerank[%d]", i)
		var e struct {
			Query      string    `json:"query"`
			Documents  []string  `json:"documents"`
			Activation string    `json:"activation_fn"`
			TopK       *int      `json:"top_k"`
			Logits     []float64 `json:"logits"`
			Scores     []float64 `json:"scores"`
			Result     []struct {
				CorpusID int      `json:"corpus_id"`
				Score    float64  `json:"score"`
				Logit    *float64 `json:"logit"`
				Text     *string  `json:"text"`
			} `json:"result"`
		}
		if err := decodeEntry(raw, &e, "query", "documents", "activation_fn", "top_k", "logits", "scores", "result"); err != nil {
			r.Fail("%s: %v", name, err)
			continue
		}
		pairs := make([][2]string, len(e.Documents))
		for k, d := range e.Documents {
			pairs[k] = [2]string{e.Query, d}
		}
		comparePairTokens(dir, fmt.Sprintf("rerank%d", i), pairs, &tokenizer.TruncationParams{MaxLength: rr.MaxLength(), Strategy: tokenizer.TruncateLongestFirst}, rs, r)
		// activation_fn is what the reference applied; the pipeline must
		// have read the same from config.json, so it is compared, not
		// passed in.
		if e.Activation != "" {
			act, err := rr.Activation()
			if err != nil {
				r.Fail("%s: %v", name, err)
				continue
			}
			// The reference names it "sigmoid" or by its torch class path.
			ref := strings.ToLower(e.Activation[strings.LastIndexByte(e.Activation, '.')+1:])
			if string(act) != ref {
				r.Fail("%s: the pipeline's activation is %q, the reference's %q", name, act, e.Activation)
				continue
			}
		}
		opt := pipeline.RerankOptions{}
		if e.TopK != nil {
			opt.TopK = *e.TopK
		}
		ok := true
		scored, err := rr.Score(ctx, pairs, opt)
		if err != nil {
			r.Fail("%s: %v", name, err)
			continue
		}
		if len(e.Logits) != len(scored) && len(e.Logits) > 0 || len(e.Scores) != len(scored) && len(e.Scores) > 0 {
			r.Fail("%s: %d documents, %d logits and %d scores", name, len(scored), len(e.Logits), len(e.Scores))
			continue
		}
		for k, s := range scored {
			if k < len(e.Logits) {
				ok = r.CompareScore(fmt.Sprintf("%s logits[%d]", name, k), s.Logit, e.Logits[k]) && ok
			}
			if k < len(e.Scores) {
				ok = r.CompareScore(fmt.Sprintf("%s scores[%d]", name, k), s.Score, e.Scores[k]) && ok
			}
		}
		got, err := rr.Rerank(ctx, e.Query, e.Documents, opt)
		if err != nil {
			r.Fail("%s: %v", name, err)
			continue
		}
		if len(got) != len(e.Result) {
			r.Fail("%s: %d results, want %d", name, len(got), len(e.Result))
			continue
		}
		for k, w := range e.Result {
			g := got[k]
			if g.Index != w.CorpusID || w.Text != nil && g.Text != *w.Text {
				r.Fail("%s result[%d]: corpus_id %d %q, want %d", name, k, g.Index, g.Text, w.CorpusID)
				ok = false
				break
			}
			ok = r.CompareScore(fmt.Sprintf("%s result[%d]", name, k), g.Score, w.Score) && ok
			if w.Logit != nil {
				ok = r.CompareScore(fmt.Sprintf("%s result[%d] logit", name, k), g.Logit, *w.Logit) && ok
			}
		}
		if ok {
			r.Pass("%s: %d documents", name, len(e.Documents))
		}
	}
}

func checkZeroShot(ctx context.Context, dir string, entries []json.RawMessage, rs *safetensors.File, r *Report) {
	zs, err := pipeline.NewZeroShotClassifier(ctx, dir, r.options())
	if !r.Check("zero-shot-classification pipeline", err) {
		return
	}
	defer zs.Close()
	labels := labelCount(dir)
	for i, raw := range entries {
		name := fmt.Sprintf("zero_shot_classification[%d]", i)
		var e struct {
			Sequence        string   `json:"sequence"`
			CandidateLabels []string `json:"candidate_labels"`
			Template        string   `json:"hypothesis_template"`
			MultiLabel      bool     `json:"multi_label"`
			EntailmentID    *int     `json:"entailment_id"`
			ContradictionID *int     `json:"contradiction_id"`
			LogitsKey       string   `json:"logits_key"`
			Result          struct {
				Sequence string    `json:"sequence"`
				Labels   []string  `json:"labels"`
				Scores   []float64 `json:"scores"`
			} `json:"result"`
		}
		if err := decodeEntry(raw, &e, "sequence", "candidate_labels", "hypothesis_template", "multi_label", "entailment_id", "contradiction_id", "logits_key", "result"); err != nil {
			r.Fail("%s: %v", name, err)
			continue
		}
		if e.EntailmentID != nil && *e.EntailmentID != zs.EntailmentID() {
			r.Fail("%s: entailment id %d, want %d", name, zs.EntailmentID(), *e.EntailmentID)
			continue
		}
		if c := e.ContradictionID; c != nil {
			want := *c
			if want < 0 {
				want += labels // Python's index -1
			}
			if want != zs.ContradictionID() {
				r.Fail("%s: contradiction id %d, want %d", name, zs.ContradictionID(), *c)
				continue
			}
		}
		// The batch of (sequence, hypothesis) pairs is stored under
		// logits_key's tag (one per distinct sequence).
		if tag, ok := strings.CutSuffix(e.LogitsKey, ".output.logits"); ok {
			tmpl := e.Template
			if tmpl == "" {
				tmpl = pipeline.DefaultHypothesisTemplate
			}
			pairs := make([][2]string, len(e.CandidateLabels))
			for k, l := range e.CandidateLabels {
				// str.format's forms a template uses.
				pairs[k] = [2]string{e.Sequence, strings.NewReplacer("{{", "{", "}}", "}", "{}", l, "{0}", l).Replace(tmpl)}
			}
			comparePairTokens(dir, tag, pairs, &tokenizer.TruncationParams{MaxLength: zs.MaxLength(), Strategy: tokenizer.TruncateOnlyFirst}, rs, r)
		}
		got, err := zs.Classify(ctx, e.Sequence, e.CandidateLabels, pipeline.ZeroShotOptions{HypothesisTemplate: e.Template, MultiLabel: e.MultiLabel})
		if err != nil {
			r.Fail("%s: %v", name, err)
			continue
		}
		if e.Result.Sequence != e.Sequence || len(e.Result.Labels) != len(e.Result.Scores) {
			r.Fail("%s: malformed result", name)
			continue
		}
		if len(got) != len(e.Result.Labels) {
			r.Fail("%s: %d labels, want %d", name, len(got), len(e.Result.Labels))
			continue
		}
		ok := true
		for k, w := range e.Result.Labels {
			if got[k].Label != w {
				r.Fail("%s[%d]: label %q, want %q", name, k, got[k].Label, w)
				ok = false
				break
			}
			ok = r.CompareScore(fmt.Sprintf("%s[%d]", name, k), got[k].Score, e.Result.Scores[k]) && ok
		}
		if ok {
			r.Pass("%s (multi_label %v): %d labels", name, e.MultiLabel, len(got))
		}
	}
}

// comparePairTokens checks the folder's tokenizer, truncating as the
// pipeline says it does, against the stored batch <tag>.input.input_ids:
// pair k of the batch is pairs[k], compared at real positions. A tag without
// a stored batch is skipped.
func comparePairTokens(dir, tag string, pairs [][2]string, trunc *tokenizer.TruncationParams, rs *safetensors.File, r *Report) {
	in, err := readInput(rs, tag+".input.")
	if err != nil {
		return
	}
	if in.Batch != len(pairs) {
		r.Fail("%s: a batch of %d for %d pairs", tag, in.Batch, len(pairs))
		return
	}
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		r.Fail("%s: %v", tag, err)
		return
	}
	if trunc.MaxLength > 0 {
		tok = tok.WithTruncation(trunc)
	}
	for b, p := range pairs {
		enc, err := tok.EncodePair(p[0], p[1], true)
		if err != nil {
			r.Fail("%s[%d]: tokenize: %v", tag, b, err)
			return
		}
		var want []int
		for s := 0; s < in.Seq; s++ {
			if in.AttentionMask == nil || in.AttentionMask[b*in.Seq+s] != 0 {
				want = append(want, in.InputIDs[b*in.Seq+s])
			}
		}
		if fmt.Sprint(enc.IDs) != fmt.Sprint(want) {
			r.Fail("%s[%d]: token ids %v, want %v", tag, b, enc.IDs, want)
			return
		}
	}
	r.Pass("%s: %d pair tokenizations", tag, len(pairs))
}

// labelCount is the number of labels config.json gives the model (0 when
// unreadable: the loader has reported that already).
func labelCount(dir string) int {
	f, err := hfdir.Read(dir)
	if err != nil || f.Config == nil {
		return 0
	}
	return len(f.Config.ID2Label)
}
