package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The routes in the style of Hugging Face text-embeddings-inference and the
// Inference API: a single string in gives a single answer out, a list gives
// a list.

type embedRequest struct {
	Inputs              textInputs `json:"inputs"`
	Normalize           *bool      `json:"normalize"`
	Truncate            *bool      `json:"truncate"`
	TruncationDirection string     `json:"truncation_direction"`
	PromptName          *string    `json:"prompt_name"`
	Dimensions          *int       `json:"dimensions"`
}

func (s *Handler) handleEmbed(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.Embedder == nil {
		return notServed(m, "embeddings")
	}
	var req embedRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkInputs("inputs", req.Inputs); err != nil {
		return err
	}
	if d := strings.ToLower(req.TruncationDirection); d != "" && d != "right" {
		return unsupportedParam("truncation_direction", "other than Right")
	}
	if req.PromptName != nil {
		return unsupportedParam("prompt_name", "(no prompts are configured)")
	}
	dims, err := s.checkDimensions(m, req.Dimensions, "dimensions")
	if err != nil {
		return err
	}
	vecs, _, err := s.embed(r.Context(), m, "inputs", req.Inputs.list, s.truncate(req.Truncate))
	if err != nil {
		return err
	}
	normalize := req.Normalize == nil || *req.Normalize // TEI's default
	if !normalize && m.Embedder.Normalized() {
		return badRequest("normalize", "normalize false is not possible: this model's own pipeline normalises its embeddings")
	}
	out := make([][]float32, len(vecs))
	for i, v := range vecs {
		v = cutDimensions(v, dims, m.Embedder.Normalized())
		if normalize && !m.Embedder.Normalized() {
			c := make([]float32, len(v))
			copy(c, v)
			l2normalize(c)
			v = c
		}
		out[i] = v
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// runHead runs f under the model gate, so heads share the model with
// completions within -max-concurrent.
func (s *Handler) runHead(ctx context.Context, f func() error) error {
	release, err := s.gate.acquire(ctx)
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.Status == http.StatusTooManyRequests {
			s.metrics.rejected.Add(1)
		}
		return err
	}
	defer release()
	return f()
}

// oneOrMany answers a single input with its result, a list with the list.
func oneOrMany[T any](w http.ResponseWriter, in textInputs, res []T) {
	if in.single && len(res) == 1 {
		writeJSON(w, http.StatusOK, res[0])
		return
	}
	writeJSON(w, http.StatusOK, res)
}

type classifyRequest struct {
	Inputs    textInputs `json:"inputs"`
	TopK      *int       `json:"top_k"`
	Truncate  *bool      `json:"truncate"`
	RawScores bool       `json:"raw_scores"`
}

func (s *Handler) handleClassify(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.Classifier == nil {
		return notServed(m, "classification")
	}
	var req classifyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkInputs("inputs", req.Inputs); err != nil {
		return err
	}
	if req.RawScores {
		return unsupportedParam("raw_scores", "true")
	}
	topK := 0
	if req.TopK != nil {
		if *req.TopK < 1 {
			return badRequest("top_k", "top_k must be at least 1, got %d", *req.TopK)
		}
		topK = *req.TopK
	}
	if err := s.checkHeadTokens(m, req.Inputs.list, req.Truncate); err != nil {
		return err
	}
	var res [][]label
	err = s.runHead(r.Context(), func() (err error) {
		res, err = m.Classifier.Classify(r.Context(), req.Inputs.list, topK)
		return err
	})
	if err != nil {
		return err
	}
	oneOrMany(w, req.Inputs, res)
	return nil
}

func (s *Handler) checkHeadTokens(m *backend, texts []string, truncate *bool) error {
	if m.Tokens == nil {
		return nil
	}
	_, err := s.countTokens(m.Tokens, "inputs", texts, s.truncate(truncate))
	return err
}

type nerRequest struct {
	Inputs              textInputs `json:"inputs"`
	AggregationStrategy string     `json:"aggregation_strategy"`
	Truncate            *bool      `json:"truncate"`
}

var aggregations = map[string]bool{"none": true, "simple": true, "first": true, "average": true, "max": true}

func (s *Handler) handleNER(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.Tagger == nil {
		return notServed(m, "token classification")
	}
	var req nerRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkInputs("inputs", req.Inputs); err != nil {
		return err
	}
	agg := strings.ToLower(req.AggregationStrategy)
	if agg == "" {
		agg = "none" // as transformers' pipeline
	}
	if !aggregations[agg] {
		return badRequest("aggregation_strategy", "aggregation_strategy must be one of none, simple, first, average, max; got %q", req.AggregationStrategy)
	}
	if err := s.checkHeadTokens(m, req.Inputs.list, req.Truncate); err != nil {
		return err
	}
	var res [][]entity
	err = s.runHead(r.Context(), func() (err error) {
		res, err = m.Tagger.Tag(r.Context(), req.Inputs.list, agg)
		return err
	})
	if err != nil {
		return err
	}
	for i := range res {
		if res[i] == nil {
			res[i] = []entity{}
		}
	}
	oneOrMany(w, req.Inputs, res)
	return nil
}

type qaRequest struct {
	Question *string `json:"question"`
	Context  *string `json:"context"`
	Inputs   *struct {
		Question *string `json:"question"`
		Context  *string `json:"context"`
	} `json:"inputs"`
	TopK         *int `json:"top_k"`
	MaxAnswerLen *int `json:"max_answer_len"`
}

func (s *Handler) handleQA(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.Answerer == nil {
		return notServed(m, "question answering")
	}
	var req qaRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	q, c := req.Question, req.Context
	if req.Inputs != nil { // the Inference API's form
		if q == nil {
			q = req.Inputs.Question
		}
		if c == nil {
			c = req.Inputs.Context
		}
	}
	switch {
	case q == nil:
		return badRequest("question", "question is required")
	case c == nil:
		return badRequest("context", "context is required")
	case strings.TrimSpace(*q) == "":
		return badRequest("question", "question is an empty string")
	case strings.TrimSpace(*c) == "":
		return badRequest("context", "context is an empty string")
	}
	topK, maxLen := 1, 15 // transformers' defaults
	if req.TopK != nil {
		if *req.TopK < 1 || *req.TopK > 100 {
			return badRequest("top_k", "top_k must be between 1 and 100, got %d", *req.TopK)
		}
		topK = *req.TopK
	}
	if req.MaxAnswerLen != nil {
		if *req.MaxAnswerLen < 1 {
			return badRequest("max_answer_len", "max_answer_len must be at least 1, got %d", *req.MaxAnswerLen)
		}
		maxLen = *req.MaxAnswerLen
	}
	if m.Tokens != nil {
		// The context is split into windows; the question must fit in one.
		if _, err := s.countTokens(m.Tokens, "question", []string{*q}, false); err != nil {
			return err
		}
	}
	var res []answer
	err = s.runHead(r.Context(), func() (err error) {
		res, err = m.Answerer.Answer(r.Context(), *q, *c, topK, maxLen)
		return err
	})
	if err != nil {
		return err
	}
	if topK == 1 && len(res) == 1 {
		writeJSON(w, http.StatusOK, res[0])
		return nil
	}
	if res == nil {
		res = []answer{}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

type fillMaskRequest struct {
	Inputs   textInputs      `json:"inputs"`
	TopK     *int            `json:"top_k"`
	Targets  json.RawMessage `json:"targets"`
	Truncate *bool           `json:"truncate"`
}

func (s *Handler) handleFillMask(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.MaskFiller == nil {
		return notServed(m, "fill-mask")
	}
	var req fillMaskRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkInputs("inputs", req.Inputs); err != nil {
		return err
	}
	mask := m.MaskFiller.MaskToken()
	for i, t := range req.Inputs.list {
		if n := strings.Count(t, mask); n != 1 {
			return badRequest("inputs", "inputs[%d] must contain the mask token %s exactly once, found %d", i, mask, n)
		}
	}
	topK := 5
	if req.TopK != nil {
		if *req.TopK < 1 {
			return badRequest("top_k", "top_k must be at least 1, got %d", *req.TopK)
		}
		topK = *req.TopK
	}
	var targets []string
	if len(req.Targets) > 0 && string(req.Targets) != "null" {
		var t textInputs
		if err := t.UnmarshalJSON(req.Targets); err != nil {
			return badRequest("targets", "targets must be a string or a list of strings")
		}
		targets = t.list
	}
	if err := s.checkHeadTokens(m, req.Inputs.list, req.Truncate); err != nil {
		return err
	}
	var res [][]maskFill
	err = s.runHead(r.Context(), func() (err error) {
		res, err = m.MaskFiller.Fill(r.Context(), req.Inputs.list, topK, targets)
		return err
	})
	if err != nil {
		return err
	}
	oneOrMany(w, req.Inputs, res)
	return nil
}

// rerankRequest is TEI's /rerank.
type rerankRequest struct {
	Query               *string    `json:"query"`
	Texts               textInputs `json:"texts"`
	RawScores           bool       `json:"raw_scores"`
	ReturnText          bool       `json:"return_text"`
	Truncate            *bool      `json:"truncate"`
	TruncationDirection string     `json:"truncation_direction"`
}

// handleRerank scores texts against a query with a cross-encoder and
// answers TEI's shape: [{"index", "score"}] best first.
func (s *Handler) handleRerank(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.Reranker == nil {
		return notServed(m, "reranking (it needs a cross-encoder: a sequence classifier with one label)")
	}
	var req rerankRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Query == nil {
		return badRequest("query", "query is required")
	}
	if strings.TrimSpace(*req.Query) == "" {
		return badRequest("query", "query is an empty string")
	}
	if err := s.checkInputs("texts", req.Texts); err != nil {
		return err
	}
	if d := strings.ToLower(req.TruncationDirection); d != "" && d != "right" {
		return unsupportedParam("truncation_direction", "other than Right")
	}
	// Pairs over the limit are a 413 unless truncating; the pipeline then
	// cuts them longest_first at the model's own limit.
	if limit := m.Reranker.MaxTokens(); limit > 0 && !s.truncate(req.Truncate) {
		for i, t := range req.Texts.list {
			n, err := m.Reranker.PairTokens(*req.Query, t)
			if err != nil {
				return badRequest("texts", "texts[%d]: %v", i, err)
			}
			if n > limit {
				return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Param: "texts", Code: "input_too_long",
					Message: fmt.Sprintf("texts[%d] with the query has %d tokens; the limit is %d (send truncate: true to cut it)", i, n, limit)}
			}
		}
	}
	var res []rank
	err = s.runHead(r.Context(), func() (err error) {
		res, err = m.Reranker.Rerank(r.Context(), *req.Query, req.Texts.list, req.RawScores)
		return err
	})
	if err != nil {
		return err
	}
	if req.ReturnText {
		for i := range res {
			res[i].Text = &req.Texts.list[res[i].Index]
		}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
