package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"unicode/utf8"
)

// decodeJSON reads the whole (size-limited) body and decodes it into v,
// refusing invalid UTF-8, unknown fields, wrong types and trailing data with
// a 400 that says what and where.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		// curl -d sends form encoding by default; its body is still the JSON.
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "application/x-www-form-urlencoded") {
			return &apiError{Status: http.StatusUnsupportedMediaType, Type: typeInvalid, Code: "unsupported_media_type",
				Message: fmt.Sprintf("Content-Type %q is not JSON; send application/json", ct)}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("", "request body is empty; send a JSON object")
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; say so instead.
	if !utf8.Valid(body) {
		off := 0
		for off < len(body) {
			r, size := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return badRequest("", "request body is not valid UTF-8 (first bad byte at offset %d)", off)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return badRequest("", "request body has data after the JSON object (offset %d)", dec.InputOffset())
	}
	return nil
}

// bodyError classifies a failure to read the request body. The server's
// read deadline passing is a 408: the client may still be there, and
// answering nothing would let net/http send an empty 200.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &apiError{Status: http.StatusRequestTimeout, Type: typeTimeout, Code: "request_timeout",
			Message: "the request body did not arrive within the server's read timeout"}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%w: reading the body: %v", errClientGone, err)
	}
	// A malformed body framing (a bad chunk size, ...) is the client's error.
	return badRequest("", "reading the request body: %v", err)
}

// jsonError turns a decoding error into a 400 naming the field or offset.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &se):
		return badRequest("", "malformed JSON at offset %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest("", "request body must be a JSON object, not %s", te.Value)
		}
		return badRequest(field, "field %q has the wrong type: got %s, want %s", field, te.Value, jsonTypeName(te.Type.String()))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("", "malformed JSON: the body ends too early")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return badRequest(f, "unknown field %q", f)
	}
	return badRequest("", "malformed JSON: %s", strings.TrimPrefix(msg, "json: "))
}

func jsonTypeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return goType
}

// textInputs is a field that holds one string or a list of strings. Lists of
// token ids (which OpenAI also accepts) are refused with a clear message.
type textInputs struct {
	list   []string
	single bool
	set    bool
}

func (t *textInputs) UnmarshalJSON(b []byte) error {
	t.set = true
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		t.list, t.single = []string{s}, true
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		t.list = make([]string, len(raw))
		for i, r := range raw {
			r = bytes.TrimSpace(r)
			if len(r) == 0 || r[0] != '"' {
				if len(r) > 0 && (r[0] == '[' || (r[0] >= '0' && r[0] <= '9')) {
					return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Code: "unsupported",
						Message: "token id inputs are not supported; send text"}
				}
				return &apiError{Status: http.StatusBadRequest, Type: typeInvalid,
					Message: fmt.Sprintf("input item %d must be a string, got %s", i, r)}
			}
			if err := json.Unmarshal(r, &t.list[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if string(b) == "null" {
		t.set = false
		return nil
	}
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalid,
		Message: fmt.Sprintf("input must be a string or a list of strings, got %s", abbreviate(b))}
}

// stopList is OpenAI's stop: a string, a list of strings or null.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stopList{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: "stop",
			Message: "stop must be a string or a list of strings"}
	}
	*s = list
	return nil
}

func abbreviate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// checkInputs applies the per-request input rules shared by every endpoint:
// present, not empty, at most MaxInputs.
func (s *Handler) checkInputs(param string, in textInputs) error {
	if !in.set {
		return badRequest(param, "%s is required", param)
	}
	if len(in.list) == 0 {
		return badRequest(param, "%s is an empty list", param)
	}
	if len(in.list) > s.cfg.MaxInputs {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Param: param, Code: "too_many_inputs",
			Message: fmt.Sprintf("%s has %d items; the limit is %d per request", param, len(in.list), s.cfg.MaxInputs)}
	}
	for i, t := range in.list {
		if strings.TrimSpace(t) == "" {
			if in.single {
				return badRequest(param, "%s is an empty string", param)
			}
			return badRequest(param, "%s[%d] is an empty string", param, i)
		}
	}
	return nil
}

// countTokens checks each input against the model's token limit (already
// lowered by -max-input-tokens at load). With truncate the counts are capped at
// the limit, where the model cuts; without, a long input is a 413 naming it.
func (s *Handler) countTokens(tc tokenCounter, param string, texts []string, truncate bool) ([]int, error) {
	limit := tc.MaxTokens()
	counts := make([]int, len(texts))
	for i, t := range texts {
		n, err := tc.CountTokens(t)
		if err != nil {
			return nil, badRequest(param, "%s[%d]: %v", param, i, err)
		}
		if limit > 0 && n > limit {
			if !truncate {
				return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Param: param, Code: "input_too_long",
					Message: fmt.Sprintf("%s[%d] has %d tokens; the limit is %d (send truncate: true to cut it)", param, i, n, limit)}
			}
			n = limit
		}
		counts[i] = n
	}
	return counts, nil
}
