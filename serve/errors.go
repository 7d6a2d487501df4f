package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/embrace-go/embrace/pipeline"
)

// apiError is an error with the HTTP status and OpenAI error fields it is
// answered with.
type apiError struct {
	Status     int
	Type       string // OpenAI error type, e.g. invalid_request_error
	Code       string // short machine-readable code, optional
	Param      string // the request field at fault, optional
	Message    string
	RetryAfter int // seconds; sets Retry-After when > 0
}

func (e *apiError) Error() string { return e.Message }

// OpenAI's error types, by status.
const (
	typeInvalid   = "invalid_request_error"
	typeAuth      = "authentication_error"
	typeNotFound  = "not_found_error"
	typeRateLimit = "rate_limit_error"
	typeServer    = "server_error"
	typeTimeout   = "timeout_error"
	typeOverload  = "overloaded_error"
)

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: param, Message: fmt.Sprintf(format, args...)}
}

func newError(status int, typ, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Type: typ, Code: code, Message: fmt.Sprintf(format, args...)}
}

// errBusy answers a full queue.
func errBusy(what string) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: "queue_full",
		Message: what + " queue is full; retry later", RetryAfter: 1}
}

// errClientGone marks a request whose client went away; nothing is written.
var errClientGone = errors.New("client closed the request")

// errorBody is the OpenAI error JSON shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) body() errorBody {
	d := errorDetail{Message: e.Message, Type: e.Type}
	if e.Param != "" {
		p := e.Param
		d.Param = &p
	}
	if e.Code != "" {
		c := e.Code
		d.Code = &c
	}
	return errorBody{Error: d}
}

// toAPIError maps any error from a handler or the library to what the client
// is told. Errors the server did not anticipate become a 500 whose details go
// to the log only.
func (s *Handler) toAPIError(r *http.Request, err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return newError(http.StatusRequestEntityTooLarge, typeInvalid, "body_too_large",
			"request body is larger than the limit of %d bytes", mbe.Limit)
	case errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusGatewayTimeout, typeTimeout, "timeout",
			"request did not finish within the server's timeout of %s", s.cfg.RequestTimeout)
	case errors.Is(err, context.Canceled), errors.Is(err, errClientGone):
		// 499 is nginx's "client closed request"; only logs and metrics see it.
		return newError(499, typeInvalid, "client_closed", "client closed the request")
	case errors.Is(err, pipeline.ErrTooLong):
		// The server checks lengths first; this is the library's own check.
		return newError(http.StatusRequestEntityTooLarge, typeInvalid, "input_too_long", "%s", err.Error())
	case errors.Is(err, pipeline.ErrClosed):
		return errShuttingDown
	case isUnsupported(err):
		return newError(http.StatusNotImplemented, typeInvalid, "unsupported", "%s", err.Error())
	}
	s.log.Error("internal error", "path", r.URL.Path, "request_id", requestID(r.Context()), "err", err)
	return newError(http.StatusInternalServerError, typeServer, "internal_error",
		"internal error (request id %s)", requestID(r.Context()))
}

func isUnsupported(err error) bool {
	return errors.Is(err, errors.ErrUnsupported) || strings.Contains(err.Error(), "unsupported:")
}

// writeError answers err in the OpenAI error shape.
func (s *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := s.toAPIError(r, err)
	if rw, ok := w.(*recorder); ok {
		rw.errType = ae.Type
		if ae.Code != "" {
			rw.errType = ae.Code
		}
	}
	if ae.Status == 499 {
		if rw, ok := w.(*recorder); ok {
			rw.status = 499 // nobody reads the answer; record why it ended
		}
		return
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	if ae.Status == http.StatusRequestTimeout {
		// The rest of the body may still arrive; the connection cannot be
		// reused.
		w.Header().Set("Connection", "close")
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="embrace"`)
	}
	writeJSON(w, ae.Status, ae.body())
}

// writeJSON writes v with status; an encoding failure can only be logged since
// the header is out.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Default().Error("encoding response", "err", err)
		http.Error(w, `{"error":{"message":"internal error encoding the response","type":"server_error","param":null,"code":null}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
