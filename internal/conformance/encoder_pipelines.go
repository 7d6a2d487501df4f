package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"slices"
	"strings"

	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tokenizer"
)

// checkTokenization tokenizes reference.json's texts (and pairs) with the
// folder's tokenizer and compares the ids with the stored inputs at real
// positions.
func checkTokenization(dir string, ref *reference, rs *safetensors.File, r *Report) {
	tok, err := tokenizer.FromDir(dir)
	if !r.Check("tokenizer", err) {
		return
	}
	compare := func(tag string, encode func(i int) (*tokenizer.Encoding, error), n int) {
		in, err := readInput(rs, tag+".input.")
		if err != nil {
			return // no such batch
		}
		if n < in.Batch {
			r.Fail("%s: reference.json has %d inputs for a batch of %d", tag, n, in.Batch)
			return
		}
		for b := 0; b < in.Batch; b++ {
			enc, err := encode(b)
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
			got := enc.IDs
			if enc.AttentionMask != nil {
				got = nil
				for j, id := range enc.IDs {
					if enc.AttentionMask[j] != 0 {
						got = append(got, id)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				r.Fail("%s[%d]: token ids %v, want %v", tag, b, got, want)
				return
			}
		}
		r.Pass("%s: %d tokenizations", tag, in.Batch)
	}
	compare("single", func(i int) (*tokenizer.Encoding, error) { return tok.Encode(ref.Texts[i], true) }, len(ref.Texts))
	compare("pair", func(i int) (*tokenizer.Encoding, error) {
		return tok.EncodePair(ref.Pairs[i][0], ref.Pairs[i][1], true)
	}, len(ref.Pairs))
	for i, raw := range ref.QuestionAnswering {
		var e struct{ Question, Context string }
		if err := json.Unmarshal(raw, &e); err != nil {
			continue
		}
		tag := fmt.Sprintf("qa%d", i)
		v, err := rs.Tensor(tag + ".input_ids")
		if err != nil {
			continue
		}
		want, err := intsOf(v)
		if err != nil {
			r.Fail("%s: %v", tag, err)
			continue
		}
		enc, err := tok.EncodePair(e.Question, e.Context, true)
		if err != nil {
			r.Fail("%s: tokenize: %v", tag, err)
			continue
		}
		if fmt.Sprint(enc.IDs) != fmt.Sprint(want) {
			r.Fail("%s: token ids %v, want %v", tag, enc.IDs, want)
			continue
		}
		r.Pass("%s: tokenization", tag)
	}
}

// checkQALogits runs every qa{i}.input_ids through the model and compares
// qa{i}.start_logits and qa{i}.end_logits.
func checkQALogits(ctx context.Context, dir string, ref *reference, rs *safetensors.File, m arch.Encoder, r *Report) {
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		return // reported by checkTokenization
	}
	for i := 0; ; i++ {
		tag := fmt.Sprintf("qa%d", i)
		v, err := rs.Tensor(tag + ".input_ids")
		if err != nil {
			return
		}
		ids, err := intsOf(v)
		if err != nil || len(v.Shape) != 2 {
			r.Fail("%s.input_ids: bad tensor %v", tag, v.Shape)
			continue
		}
		in := &arch.EncoderInput{Batch: v.Shape[0], Seq: v.Shape[1], InputIDs: ids}
		// The segment ids come from the tokenizer, as for a user.
		if i < len(ref.QuestionAnswering) && typeVocab(dir) > 1 {
			var e struct{ Question, Context string }
			if json.Unmarshal(ref.QuestionAnswering[i], &e) == nil {
				if enc, err := tok.EncodePair(e.Question, e.Context, true); err == nil && len(enc.TypeIDs) == len(ids) {
					in.TokenTypeIDs = enc.TypeIDs
				}
			}
		}
		out, err := m.Encode(ctx, in, arch.EncodeOptions{})
		if err != nil {
			r.Fail("%s: forward: %v", tag, err)
			continue
		}
		named := out.Named()
		for _, name := range []string{"start_logits", "end_logits"} {
			v, err := rs.Tensor(tag + "." + name)
			if err != nil {
				continue
			}
			want, _ := v.Float32s()
			got, ok := named[name]
			if !ok {
				r.Fail("%s: unsupported: the model produced no %s", tag, name)
				continue
			}
			r.Compare(tag+"."+name, got.Float32s(), want, nil, nil)
		}
	}
}

// checkPipelines runs every pipeline entry of reference.json through the
// pipeline API.
func checkPipelines(ctx context.Context, dir string, ref *reference, rs *safetensors.File, r *Report) {
	if rs.Has("embeddings") {
		checkSentenceEmbeddings(ctx, dir, ref, rs, r)
	}
	if len(ref.FillMask) > 0 {
		checkFillMask(ctx, dir, ref, r)
	}
	if len(ref.TextClassification) > 0 {
		checkTextClassification(ctx, dir, ref, r)
	}
	if len(ref.TokenClassification) > 0 {
		checkTokenClassification(ctx, dir, ref, r)
	}
	if len(ref.QuestionAnswering) > 0 {
		checkQuestionAnswering(ctx, dir, ref, r)
	}
	checkRetrieval(ctx, dir, rs, r)
}

func checkSentenceEmbeddings(ctx context.Context, dir string, ref *reference, rs *safetensors.File, r *Report) {
	st, err := pipeline.NewSentenceEmbedder(ctx, dir, r.options())
	if !r.Check("sentence embedder", err) {
		return
	}
	defer st.Close()
	v, _ := rs.Tensor("embeddings")
	want, err := v.Float32s()
	if err != nil {
		r.Fail("embeddings: %v", err)
		return
	}
	if len(v.Shape) != 2 || v.Shape[0] > len(ref.Texts) {
		r.Fail("embeddings: shape %v for %d texts", v.Shape, len(ref.Texts))
		return
	}
	got, err := st.Embed(ctx, ref.Texts[:v.Shape[0]])
	if err != nil {
		r.Fail("sentence embeddings: %v", err)
		return
	}
	var flat []float32
	for _, g := range got {
		flat = append(flat, g...)
	}
	r.Compare("embeddings", flat, want, nil, nil)
}

// fillPrediction is one candidate of a fill_mask result.
type fillPrediction struct {
	Score    float64 `json:"score"`
	Token    int     `json:"token"`
	TokenStr string  `json:"token_str"`
	Sequence string  `json:"sequence"`
}

func checkFillMask(ctx context.Context, dir string, ref *reference, r *Report) {
	fm, err := pipeline.NewFillMask(ctx, dir, r.options())
	if !r.Check("fill-mask pipeline", err) {
		return
	}
	defer fm.Close()
	for i, raw := range ref.FillMask {
		var e struct {
			Input   string          `json:"input"`
			TopK    *int            `json:"top_k"`
			Targets json.RawMessage `json:"targets"`
			Result  json.RawMessage `json:"result"`
		}
		if err := decodeEntry(raw, &e, "input", "top_k", "targets", "result"); err != nil {
			r.Fail("fill_mask[%d]: %v", i, err)
			continue
		}
		opt := pipeline.FillMaskOptions{}
		if len(e.Targets) > 0 && string(e.Targets) != "null" {
			// targets is a word or a list of words.
			var one string
			if json.Unmarshal(e.Targets, &one) == nil {
				opt.Targets = []string{one}
			} else if err := json.Unmarshal(e.Targets, &opt.Targets); err != nil {
				r.Fail("fill_mask[%d]: targets: %v", i, err)
				continue
			}
		}
		if e.TopK != nil {
			opt.TopK = *e.TopK
		}
		// One mask gives a list of candidates; several give one list per
		// mask, as in Hugging Face.
		var want [][]fillPrediction
		var flat []fillPrediction
		if err := json.Unmarshal(e.Result, &flat); err == nil {
			want = [][]fillPrediction{flat}
		} else if err := json.Unmarshal(e.Result, &want); err != nil {
			r.Fail("fill_mask[%d]: result: %v", i, err)
			continue
		}
		res, err := fm.Fill(ctx, []string{e.Input}, opt)
		if err != nil {
			r.Fail("fill_mask[%d]: %v", i, err)
			continue
		}
		if len(res[0].Masks) != len(want) {
			r.Fail("fill_mask[%d]: %d masks, reference has %d", i, len(res[0].Masks), len(want))
			continue
		}
		ok := true
		for m, wm := range want {
			got := res[0].Masks[m].Predictions
			if len(got) != len(wm) {
				r.Fail("fill_mask[%d] mask %d: %d predictions, want %d", i, m, len(got), len(wm))
				ok = false
				break
			}
			for k, w := range wm {
				g := got[k]
				if g.Token != w.Token || g.TokenStr != w.TokenStr || g.Sequence != w.Sequence {
					r.Fail("fill_mask[%d] mask %d [%d]: got %d %q %q, want %d %q %q", i, m, k, g.Token, g.TokenStr, g.Sequence, w.Token, w.TokenStr, w.Sequence)
					ok = false
					break
				}
				ok = r.CompareScore(fmt.Sprintf("fill_mask[%d] mask %d [%d]", i, m, k), g.Score, w.Score) && ok
			}
		}
		if ok {
			r.Pass("fill_mask[%d]", i)
		}
	}
}

func checkTextClassification(ctx context.Context, dir string, ref *reference, r *Report) {
	tc, err := pipeline.NewTextClassifier(ctx, dir, r.options())
	if !r.Check("text-classification pipeline", err) {
		return
	}
	defer tc.Close()
	for i, raw := range ref.TextClassification {
		var e struct {
			Input    string  `json:"input"`
			TopK     *int    `json:"top_k"`
			Function *string `json:"function_to_apply"`
			Result   []struct {
				Label string  `json:"label"`
				Score float64 `json:"score"`
			} `json:"result"`
		}
		if err := decodeEntry(raw, &e, "input", "top_k", "function_to_apply", "result"); err != nil {
			r.Fail("text_classification[%d]: %v", i, err)
			continue
		}
		// top_k null means every label; a missing top_k means the best one,
		// as in Hugging Face.
		opt := pipeline.ClassifyOptions{}
		if e.TopK != nil {
			opt.TopK = *e.TopK
		} else if !hasKey(raw, "top_k") {
			opt.TopK = 1
		}
		if e.Function != nil {
			opt.Function = pipeline.ClassifyFunction(*e.Function)
		}
		res, err := tc.Classify(ctx, []string{e.Input}, opt)
		if err != nil {
			r.Fail("text_classification[%d]: %v", i, err)
			continue
		}
		got := res[0]
		if len(got) != len(e.Result) {
			r.Fail("text_classification[%d]: %d labels, want %d", i, len(got), len(e.Result))
			continue
		}
		ok := true
		for k, w := range e.Result {
			if got[k].Label != w.Label {
				r.Fail("text_classification[%d][%d]: label %q, want %q", i, k, got[k].Label, w.Label)
				ok = false
				break
			}
			ok = r.CompareScore(fmt.Sprintf("text_classification[%d][%d]", i, k), got[k].Score, w.Score) && ok
		}
		if ok {
			r.Pass("text_classification[%d]", i)
		}
	}
}

func checkTokenClassification(ctx context.Context, dir string, ref *reference, r *Report) {
	tc, err := pipeline.NewTokenClassifier(ctx, dir, r.options())
	if !r.Check("token-classification pipeline", err) {
		return
	}
	defer tc.Close()
	for i, raw := range ref.TokenClassification {
		var e struct {
			Input       string   `json:"input"`
			Aggregation string   `json:"aggregation_strategy"`
			IgnoreLabel []string `json:"ignore_labels"`
			Result      []struct {
				Entity      *string `json:"entity"`
				EntityGroup *string `json:"entity_group"`
				Score       float64 `json:"score"`
				Index       *int    `json:"index"`
				Word        string  `json:"word"`
				Start       int     `json:"start"`
				End         int     `json:"end"`
			} `json:"result"`
		}
		if err := decodeEntry(raw, &e, "input", "aggregation_strategy", "ignore_labels", "result"); err != nil {
			r.Fail("token_classification[%d]: %v", i, err)
			continue
		}
		res, err := tc.Classify(ctx, []string{e.Input}, pipeline.TokenOptions{Aggregation: pipeline.Aggregation(e.Aggregation), IgnoreLabels: e.IgnoreLabel})
		name := fmt.Sprintf("token_classification[%d] (%s)", i, e.Aggregation)
		if err != nil {
			r.Fail("%s: %v", name, err)
			continue
		}
		got := res[0]
		if len(got) != len(e.Result) {
			r.Fail("%s: %d entities %v, want %d", name, len(got), got, len(e.Result))
			continue
		}
		ok := true
		for k, w := range e.Result {
			g := got[k]
			label := ""
			if w.Entity != nil {
				label = *w.Entity
			} else if w.EntityGroup != nil {
				label = *w.EntityGroup
			}
			bad := g.Label != label || g.Word != w.Word || g.StartRune != w.Start || g.EndRune != w.End
			if w.Index != nil && g.Index != *w.Index {
				bad = true
			}
			if bad {
				r.Fail("%s[%d]: got %s %q [%d,%d) index %d, want %s %q [%d,%d)", name, k, g.Label, g.Word, g.StartRune, g.EndRune, g.Index, label, w.Word, w.Start, w.End)
				ok = false
				break
			}
			ok = r.CompareScore(fmt.Sprintf("%s[%d]", name, k), g.Score, w.Score) && ok
		}
		if ok {
			r.Pass("%s", name)
		}
	}
}

func checkQuestionAnswering(ctx context.Context, dir string, ref *reference, r *Report) {
	qa, err := pipeline.NewQuestionAnswerer(ctx, dir, r.options())
	if !r.Check("question-answering pipeline", err) {
		return
	}
	defer qa.Close()
	for i, raw := range ref.QuestionAnswering {
		var e struct {
			Question     string `json:"question"`
			Context      string `json:"context"`
			TopK         *int   `json:"top_k"`
			MaxAnswerLen *int   `json:"max_answer_len"`
			MaxSeqLen    *int   `json:"max_seq_len"`
			DocStride    *int   `json:"doc_stride"`
			ScoreOver    string `json:"score_over"`
			Result       []struct {
				Score  float64 `json:"score"`
				Start  int     `json:"start"`
				End    int     `json:"end"`
				Answer string  `json:"answer"`
			} `json:"result"`
		}
		if err := decodeEntry(raw, &e, "question", "context", "top_k", "max_answer_len", "max_seq_len", "doc_stride", "score_over", "result"); err != nil {
			r.Fail("question_answering[%d]: %v", i, err)
			continue
		}
		if e.ScoreOver != "" && !strings.Contains(e.ScoreOver, "context tokens only") {
			r.Fail("question_answering[%d]: unsupported: score_over %q", i, e.ScoreOver)
			continue
		}
		opt := pipeline.QAOptions{}
		for _, p := range []struct {
			dst *int
			src *int
		}{{&opt.TopK, e.TopK}, {&opt.MaxAnswerLen, e.MaxAnswerLen}, {&opt.MaxSeqLen, e.MaxSeqLen}, {&opt.DocStride, e.DocStride}} {
			if p.src != nil {
				*p.dst = *p.src
			}
		}
		res, err := qa.Answer(ctx, []pipeline.QAInput{{Question: e.Question, Context: e.Context}}, opt)
		if err != nil {
			r.Fail("question_answering[%d]: %v", i, err)
			continue
		}
		got := res[0]
		if len(got) != len(e.Result) {
			r.Fail("question_answering[%d]: %d answers, want %d", i, len(got), len(e.Result))
			continue
		}
		ok := true
		for k, w := range e.Result {
			g := got[k]
			if g.StartRune != w.Start || g.EndRune != w.End || g.Answer != w.Answer {
				r.Fail("question_answering[%d][%d]: got %q [%d,%d), want %q [%d,%d)", i, k, g.Answer, g.StartRune, g.EndRune, w.Answer, w.Start, w.End)
				ok = false
				break
			}
			ok = r.CompareScore(fmt.Sprintf("question_answering[%d][%d]", i, k), g.Score, w.Score) && ok
		}
		if ok {
			r.Pass("question_answering[%d]", i)
		}
	}
}

// decodeEntry decodes a pipeline entry of reference.json; a parameter the
// runner does not know is reported as unsupported rather than ignored, so a
// result computed with it is never compared against a run without it.
func decodeEntry(raw json.RawMessage, dst any, known ...string) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return err
	}
	for k := range keys {
		if !slices.Contains(known, k) {
			return fmt.Errorf("unsupported: parameter %q", k)
		}
	}
	return json.Unmarshal(raw, dst)
}

func hasKey(raw json.RawMessage, key string) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil {
		return false
	}
	_, ok := keys[key]
	return ok
}

// typeVocab is config.json's type_vocab_size (2, BERT's default, when
// absent): whether the model takes segment ids.
func typeVocab(dir string) int {
	f, err := hfdir.Read(dir)
	if err != nil || f.Config == nil {
		return 2
	}
	n, err := f.Config.Int("type_vocab_size", 2)
	if err != nil {
		return 2
	}
	return n
}
