package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
)

// lengthEmbedder is a stand-in model: a one-dimensional "embedding" holding
// the text's length.
type lengthEmbedder struct{}

func (lengthEmbedder) Dim() int         { return 1 }
func (lengthEmbedder) Normalized() bool { return false }
func (lengthEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = []float32{float32(len(t))}
	}
	return out, nil
}

type wordCounter struct{}

func (wordCounter) CountTokens(text string) (int, error) { return len(strings.Fields(text)), nil }
func (wordCounter) MaxTokens() int                       { return 512 }

// The server's handler can be mounted in any Go program; main does the same
// with the library's pipelines (loadModel) and a real listener.
func ExampleServer() {
	cfg := DefaultConfig()
	cfg.ModelRef = "my-model"
	s := NewServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer s.Close()
	load := func(context.Context, string, LoadOptions) (*Model, error) {
		return &Model{Tokens: wordCounter{}, Embedder: lengthEmbedder{}}, nil
	}
	if err := s.Load(context.Background(), load); err != nil {
		panic(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	resp, err := http.Post(ts.URL+"/v1/embeddings", "application/json",
		strings.NewReader(`{"model": "any", "input": ["hi", "hello"]}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	// Output:
	// 200 {"data":[{"object":"embedding","index":0,"embedding":[2]},{"object":"embedding","index":1,"embedding":[5]}],"model":"my-model","object":"list","usage":{"prompt_tokens":2,"total_tokens":2}}
}
