package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/embrace-go/embrace/chat"
)

type embeddingsRequest struct {
	Input          textInputs `json:"input"`
	Model          string     `json:"model"`
	EncodingFormat string     `json:"encoding_format"`
	Dimensions     *int       `json:"dimensions"`
	User           string     `json:"user"`
	// Truncate is an extension: cut inputs longer than the model's limit
	// instead of answering 413.
	Truncate *bool `json:"truncate"`
}

type embeddingData struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type usage struct {
	PromptTokens     int  `json:"prompt_tokens"`
	CompletionTokens *int `json:"completion_tokens,omitempty"`
	TotalTokens      int  `json:"total_tokens"`
}

func (s *Handler) handleEmbeddings(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.Embedder == nil {
		return notServed(m, "embeddings")
	}
	var req embeddingsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkInputs("input", req.Input); err != nil {
		return err
	}
	format := req.EncodingFormat
	if format == "" {
		format = "float"
	}
	if format != "float" && format != "base64" {
		return badRequest("encoding_format", "encoding_format must be \"float\" or \"base64\", got %q", format)
	}
	dims, err := s.checkDimensions(m, req.Dimensions, "dimensions")
	if err != nil {
		return err
	}
	vecs, tokens, err := s.embed(r.Context(), m, "input", req.Input.list, s.truncate(req.Truncate))
	if err != nil {
		return err
	}
	data := make([]embeddingData, len(vecs))
	for i, v := range vecs {
		v = cutDimensions(v, dims, m.Embedder.Normalized())
		d := embeddingData{Object: "embedding", Index: i}
		if format == "base64" {
			d.Embedding = encodeBase64(v)
		} else {
			d.Embedding = v
		}
		data[i] = d
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   data,
		"model":  m.ID,
		"usage":  usage{PromptTokens: tokens, TotalTokens: tokens},
	})
	return nil
}

func (s *Handler) truncate(req *bool) bool {
	if req != nil {
		return *req
	}
	return s.cfg.Truncate
}

// checkDimensions validates a requested width: 1..Dim. Dimensions below the
// model's width keep the leading components (Matryoshka-style), renormalised
// when the model normalises.
func (s *Handler) checkDimensions(m *backend, d *int, param string) (int, error) {
	full := m.Embedder.Dim()
	if d == nil {
		return full, nil
	}
	if *d < 1 || *d > full {
		return 0, badRequest(param, "%s must be between 1 and %d (the model's width), got %d", param, full, *d)
	}
	return *d, nil
}

func cutDimensions(v []float32, dims int, renormalize bool) []float32 {
	if dims >= len(v) {
		return v
	}
	v = v[:dims:dims]
	if renormalize {
		out := make([]float32, dims)
		copy(out, v)
		l2normalize(out)
		return out
	}
	return v
}

func l2normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	n := math.Sqrt(ss)
	if n < 1e-12 { // sentence-transformers' Normalize clamps the norm here too
		n = 1e-12
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
}

// encodeBase64 is OpenAI's base64 format: little-endian float32 bytes.
func encodeBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// embed checks token limits, then queues the texts for dynamic batching.
func (s *Handler) embed(ctx context.Context, m *backend, param string, texts []string, truncate bool) ([][]float32, int, error) {
	counts, err := s.countTokens(m.Tokens, param, texts, truncate)
	if err != nil {
		return nil, 0, err
	}
	b := s.batch.Load()
	if b == nil {
		return nil, 0, errShuttingDown
	}
	vecs, err := b.embed(ctx, texts, counts)
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.Status == http.StatusTooManyRequests {
			s.metrics.rejected.Add(1)
		}
		return nil, 0, err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	return vecs, total, nil
}

type completionRequest struct {
	Model         string     `json:"model"`
	Prompt        textInputs `json:"prompt"`
	MaxTokens     *int       `json:"max_tokens"`
	Temperature   *float64   `json:"temperature"`
	TopP          *float64   `json:"top_p"`
	Seed          *int64     `json:"seed"`
	Stop          stopList   `json:"stop"`
	Stream        bool       `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	User string `json:"user"`

	// Accepted so that clients sending their defaults work; anything but the
	// default is refused as unsupported rather than ignored.
	N                *int               `json:"n"`
	BestOf           *int               `json:"best_of"`
	Echo             bool               `json:"echo"`
	Logprobs         *int               `json:"logprobs"`
	PresencePenalty  *float64           `json:"presence_penalty"`
	FrequencyPenalty *float64           `json:"frequency_penalty"`
	LogitBias        map[string]float64 `json:"logit_bias"`
	Suffix           *string            `json:"suffix"`
}

func unsupportedParam(param, why string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: param, Code: "unsupported_parameter",
		Message: fmt.Sprintf("unsupported: %s %s", param, why)}
}

// params validates the sampling settings and fills OpenAI's defaults
// (max_tokens 16, temperature 1, top_p 1, a random seed).
func (s *Handler) completionParams(req *completionRequest) (genParams, error) {
	switch {
	case req.N != nil && *req.N != 1:
		return genParams{}, unsupportedParam("n", "other than 1")
	case req.BestOf != nil && *req.BestOf != 1:
		return genParams{}, unsupportedParam("best_of", "other than 1")
	case req.Echo:
		return genParams{}, unsupportedParam("echo", "true")
	case req.Logprobs != nil && *req.Logprobs != 0:
		return genParams{}, unsupportedParam("logprobs", "(log probabilities are not returned)")
	case req.PresencePenalty != nil && *req.PresencePenalty != 0:
		return genParams{}, unsupportedParam("presence_penalty", "other than 0")
	case req.FrequencyPenalty != nil && *req.FrequencyPenalty != 0:
		return genParams{}, unsupportedParam("frequency_penalty", "other than 0")
	case len(req.LogitBias) > 0:
		return genParams{}, unsupportedParam("logit_bias", "(not applied)")
	case req.Suffix != nil && *req.Suffix != "":
		return genParams{}, unsupportedParam("suffix", "(insertion is not supported)")
	}
	p := genParams{MaxTokens: 16, Temperature: 1, TopP: 1}
	if req.MaxTokens != nil {
		if *req.MaxTokens < 1 || *req.MaxTokens > s.cfg.MaxNewTokens {
			return p, badRequest("max_tokens", "max_tokens must be between 1 and %d, got %d", s.cfg.MaxNewTokens, *req.MaxTokens)
		}
		p.MaxTokens = *req.MaxTokens
	}
	if req.Temperature != nil {
		if t := *req.Temperature; math.IsNaN(t) || t < 0 || t > 2 {
			return p, badRequest("temperature", "temperature must be between 0 and 2, got %v", t)
		}
		p.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		if t := *req.TopP; math.IsNaN(t) || t <= 0 || t > 1 {
			return p, badRequest("top_p", "top_p must be in (0, 1], got %v", t)
		}
		p.TopP = *req.TopP
	}
	if req.Seed != nil {
		p.Seed = uint64(*req.Seed)
	} else {
		p.Seed = rand.Uint64()
	}
	if len(req.Stop) > 4 {
		return p, badRequest("stop", "stop has %d strings; at most 4 are allowed", len(req.Stop))
	}
	for i, st := range req.Stop {
		if st == "" {
			return p, badRequest("stop", "stop[%d] is an empty string", i)
		}
	}
	p.Stop = req.Stop
	return p, nil
}

type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

func (s *Handler) handleCompletions(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.Generator == nil {
		return notServed(m, "completions")
	}
	var req completionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkInputs("prompt", req.Prompt); err != nil {
		return err
	}
	p, err := s.completionParams(&req)
	if err != nil {
		return err
	}
	ctxLen := m.Generator.MaxTokens()
	for i, prompt := range req.Prompt.list {
		n, err := m.Generator.CountTokens(prompt)
		if err != nil {
			return badRequest("prompt", "prompt[%d]: %v", i, err)
		}
		if ctxLen > 0 && n+p.MaxTokens > ctxLen {
			return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: "prompt", Code: "context_length_exceeded",
				Message: fmt.Sprintf("this model's maximum context length is %d tokens, but %d were requested (%d in prompt[%d], %d for the completion); shorten the prompt or max_tokens",
					ctxLen, n+p.MaxTokens, n, i, p.MaxTokens)}
		}
	}

	release, err := s.gate.acquire(r.Context())
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.Status == http.StatusTooManyRequests {
			s.metrics.rejected.Add(1)
		}
		return err
	}
	defer release()

	resp := completionResponse{ID: "cmpl-" + requestID(r.Context()), Object: "text_completion",
		Created: time.Now().Unix(), Model: m.ID}
	if req.Stream {
		return s.streamCompletion(w, r, m, req, p, resp)
	}
	var total usage
	completion := 0
	for i, prompt := range req.Prompt.list {
		var text strings.Builder
		start := time.Now()
		res, err := m.Generator.Generate(r.Context(), prompt, p, func(piece string) error {
			text.WriteString(piece)
			return nil
		})
		if err != nil {
			s.metrics.observeTokens(res)
			return err
		}
		s.metrics.observeGeneration(res, time.Since(start).Seconds())
		fr := res.FinishReason
		resp.Choices = append(resp.Choices, completionChoice{Text: text.String(), Index: i, FinishReason: &fr})
		total.PromptTokens += res.PromptTokens
		completion += res.CompletionTokens
	}
	total.CompletionTokens = &completion
	total.TotalTokens = total.PromptTokens + completion
	resp.Usage = &total
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// streamCompletion answers with server-sent events: one event per text
// piece, a last event per prompt with finish_reason, optionally a usage
// event, then [DONE]. An error after the first byte is sent as an error
// event, since the status line is already out.
func (s *Handler) streamCompletion(w http.ResponseWriter, r *http.Request, m *backend, req completionRequest, p genParams, resp completionResponse) error {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return fmt.Errorf("%w: %v", errClientGone, err)
		}
		if err := rc.Flush(); err != nil {
			return fmt.Errorf("%w: %v", errClientGone, err)
		}
		return nil
	}
	var total usage
	completion := 0
	for i, prompt := range req.Prompt.list {
		start := time.Now()
		res, err := m.Generator.Generate(r.Context(), prompt, p, func(piece string) error {
			if piece == "" {
				return nil
			}
			chunk := resp
			chunk.Choices = []completionChoice{{Text: piece, Index: i}}
			return send(chunk)
		})
		if err != nil {
			s.metrics.observeTokens(res)
			ae := s.toAPIError(r, err)
			if rec, ok := w.(*recorder); ok {
				rec.errType = ae.Type
			}
			if ae.Status != 499 {
				send(ae.body())
			}
			return err
		}
		s.metrics.observeGeneration(res, time.Since(start).Seconds())
		fr := res.FinishReason
		chunk := resp
		chunk.Choices = []completionChoice{{Text: "", Index: i, FinishReason: &fr}}
		if err := send(chunk); err != nil {
			return err
		}
		total.PromptTokens += res.PromptTokens
		completion += res.CompletionTokens
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		total.CompletionTokens = &completion
		total.TotalTokens = total.PromptTokens + completion
		chunk := resp
		chunk.Choices = []completionChoice{}
		chunk.Usage = &total
		if err := send(chunk); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprint(w, "data: [DONE]\n\n"); err != nil {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	rc.Flush()
	return nil
}

// chatRequest is OpenAI's chat completions request. Fields for features
// the server does not have (tools, logprobs, several choices, structured
// output) are accepted at their defaults and refused otherwise.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           *int          `json:"max_tokens"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	Temperature         *float64      `json:"temperature"`
	TopP                *float64      `json:"top_p"`
	Seed                *int64        `json:"seed"`
	Stop                stopList      `json:"stop"`
	Stream              bool          `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	User string `json:"user"`

	N                 *int               `json:"n"`
	Logprobs          *bool              `json:"logprobs"`
	TopLogprobs       *int               `json:"top_logprobs"`
	PresencePenalty   *float64           `json:"presence_penalty"`
	FrequencyPenalty  *float64           `json:"frequency_penalty"`
	LogitBias         map[string]float64 `json:"logit_bias"`
	Tools             json.RawMessage    `json:"tools"`
	ToolChoice        json.RawMessage    `json:"tool_choice"`
	ParallelToolCalls *bool              `json:"parallel_tool_calls"`
	ResponseFormat    *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

// chatMessage is one message: a role and text content, given as a string
// or as a list of text parts.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
}

// text returns the message's content as one string.
func (m chatMessage) text(i int) (string, error) {
	param := fmt.Sprintf("messages[%d].content", i)
	c := bytes.TrimSpace(m.Content)
	if len(c) == 0 || string(c) == "null" {
		return "", nil
	}
	if c[0] == '"' {
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return "", badRequest(param, "%s: %v", param, err)
		}
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(c, &parts); err != nil {
		return "", badRequest(param, "%s must be a string or a list of text parts", param)
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", unsupportedParam(param, fmt.Sprintf("part %d of type %q (only text parts are supported)", j, p.Type))
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}

// chatParams validates the request's settings the way completions do. With
// neither max_tokens nor max_completion_tokens, a chat may use the rest of
// the context (as OpenAI's), up to the server's -max-new-tokens.
func (s *Handler) chatParams(req *chatRequest) (genParams, bool, error) {
	switch {
	case req.Logprobs != nil && *req.Logprobs, req.TopLogprobs != nil && *req.TopLogprobs != 0:
		return genParams{}, false, unsupportedParam("logprobs", "(log probabilities are not returned)")
	case len(bytes.TrimSpace(req.Tools)) > 0 && string(bytes.TrimSpace(req.Tools)) != "null" && string(bytes.TrimSpace(req.Tools)) != "[]":
		return genParams{}, false, unsupportedParam("tools", "(tool calls are not parsed from the output)")
	case req.ResponseFormat != nil && req.ResponseFormat.Type != "" && req.ResponseFormat.Type != "text":
		return genParams{}, false, unsupportedParam("response_format", "other than text")
	case req.MaxTokens != nil && req.MaxCompletionTokens != nil && *req.MaxTokens != *req.MaxCompletionTokens:
		return genParams{}, false, badRequest("max_completion_tokens", "max_tokens and max_completion_tokens differ; send one")
	}
	limit := req.MaxCompletionTokens
	if limit == nil {
		limit = req.MaxTokens
	}
	p, err := s.completionParams(&completionRequest{MaxTokens: limit, Temperature: req.Temperature, TopP: req.TopP,
		Seed: req.Seed, Stop: req.Stop, N: req.N, PresencePenalty: req.PresencePenalty,
		FrequencyPenalty: req.FrequencyPenalty, LogitBias: req.LogitBias})
	return p, limit != nil, err
}

type chatChoice struct {
	Index        int              `json:"index"`
	Message      *chatAnswer      `json:"message,omitempty"`
	Delta        *chatAnswerDelta `json:"delta,omitempty"`
	Logprobs     any              `json:"logprobs"`
	FinishReason *string          `json:"finish_reason"`
}

type chatAnswer struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatAnswerDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
}

// handleChat answers chat completions: the messages rendered with the
// model's chat template (tokenizer_config.json or chat_template.jinja),
// then generated like a completion. A model without a template is a 400.
func (s *Handler) handleChat(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	if m.Generator == nil {
		return notServed(m, "chat completions")
	}
	var req chatRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Messages == nil {
		return badRequest("messages", "messages is required")
	}
	if len(req.Messages) == 0 {
		return badRequest("messages", "messages is an empty list")
	}
	if len(req.Messages) > s.cfg.MaxInputs {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Param: "messages", Code: "too_many_inputs",
			Message: fmt.Sprintf("messages has %d items; the limit is %d per request", len(req.Messages), s.cfg.MaxInputs)}
	}
	if m.ChatTemplate == "" {
		return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Code: "no_chat_template",
			Message: fmt.Sprintf("model has no chat template: %s's tokenizer_config.json has no chat_template; use /v1/completions", m.ID)}
	}
	msgs := make([]chat.Message, len(req.Messages))
	for i, msg := range req.Messages {
		if msg.Role == "" {
			return badRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d].role is required", i)
		}
		text, err := msg.text(i)
		if err != nil {
			return err
		}
		msgs[i] = chat.Message{Role: msg.Role, Content: text}
		if msg.Name != "" {
			msgs[i].Fields = map[string]any{"name": msg.Name}
		}
	}
	p, explicit, err := s.chatParams(&req)
	if err != nil {
		return err
	}
	n, err := m.Generator.ChatTokens(msgs)
	if err != nil {
		return err
	}
	if ctxLen := m.Generator.MaxTokens(); ctxLen > 0 {
		if !explicit {
			p.MaxTokens = min(s.cfg.MaxNewTokens, ctxLen-n)
		}
		if p.MaxTokens < 1 || n+p.MaxTokens > ctxLen {
			return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: "messages", Code: "context_length_exceeded",
				Message: fmt.Sprintf("this model's maximum context length is %d tokens, but %d were requested (%d in the rendered messages, %d for the completion); shorten the messages or max_tokens",
					ctxLen, n+max(p.MaxTokens, 1), n, max(p.MaxTokens, 1))}
		}
	} else if !explicit {
		p.MaxTokens = s.cfg.MaxNewTokens
	}

	release, err := s.gate.acquire(r.Context())
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.Status == http.StatusTooManyRequests {
			s.metrics.rejected.Add(1)
		}
		return err
	}
	defer release()

	resp := chatResponse{ID: "chatcmpl-" + requestID(r.Context()), Object: "chat.completion",
		Created: time.Now().Unix(), Model: m.ID}
	if req.Stream {
		return s.streamChat(w, r, m, msgs, req, p, resp)
	}
	var text strings.Builder
	start := time.Now()
	res, err := m.Generator.Chat(r.Context(), msgs, p, func(piece string) error {
		text.WriteString(piece)
		return nil
	})
	if err != nil {
		s.metrics.observeTokens(res)
		return err
	}
	s.metrics.observeGeneration(res, time.Since(start).Seconds())
	fr := res.FinishReason
	resp.Choices = []chatChoice{{Index: 0, Message: &chatAnswer{Role: "assistant", Content: text.String()}, FinishReason: &fr}}
	completion := res.CompletionTokens
	resp.Usage = &usage{PromptTokens: res.PromptTokens, CompletionTokens: &completion, TotalTokens: res.PromptTokens + completion}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// streamChat answers with server-sent chat.completion.chunk events: the
// assistant role first, then one content delta per text piece, a last
// chunk with finish_reason, optionally a usage chunk, then [DONE].
func (s *Handler) streamChat(w http.ResponseWriter, r *http.Request, m *backend, msgs []chat.Message, req chatRequest, p genParams, resp chatResponse) error {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	resp.Object = "chat.completion.chunk"
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return fmt.Errorf("%w: %v", errClientGone, err)
		}
		if err := rc.Flush(); err != nil {
			return fmt.Errorf("%w: %v", errClientGone, err)
		}
		return nil
	}
	chunk := func(d chatAnswerDelta, finish *string) chatResponse {
		c := resp
		c.Choices = []chatChoice{{Index: 0, Delta: &d, FinishReason: finish}}
		return c
	}
	empty := ""
	if err := send(chunk(chatAnswerDelta{Role: "assistant", Content: &empty}, nil)); err != nil {
		return err
	}
	start := time.Now()
	res, err := m.Generator.Chat(r.Context(), msgs, p, func(piece string) error {
		if piece == "" {
			return nil
		}
		return send(chunk(chatAnswerDelta{Content: &piece}, nil))
	})
	if err != nil {
		s.metrics.observeTokens(res)
		ae := s.toAPIError(r, err)
		if rec, ok := w.(*recorder); ok {
			rec.errType = ae.Type
		}
		if ae.Status != 499 {
			send(ae.body())
		}
		return err
	}
	s.metrics.observeGeneration(res, time.Since(start).Seconds())
	fr := res.FinishReason
	if err := send(chunk(chatAnswerDelta{}, &fr)); err != nil {
		return err
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		completion := res.CompletionTokens
		c := resp
		c.Choices = []chatChoice{}
		c.Usage = &usage{PromptTokens: res.PromptTokens, CompletionTokens: &completion, TotalTokens: res.PromptTokens + completion}
		if err := send(c); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprint(w, "data: [DONE]\n\n"); err != nil {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	rc.Flush()
	return nil
}
