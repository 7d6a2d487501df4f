package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/embrace-go/embrace/serve"
)

// A Handler mounts in any http.ServeMux. Here it serves the tiny
// sentence-transformers model committed with the repository under /api/;
// a Hub repo id ("sentence-transformers/all-MiniLM-L6-v2") works the same.
func Example() {
	ctx := context.Background()
	h, err := serve.New(ctx, serve.Options{
		Model:  "../pipeline/testdata/minilm-st",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", h))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "my own page") })
	srv := httptest.NewServer(mux) // or http.ListenAndServe(addr, mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/v1/embeddings", "application/json",
		strings.NewReader(`{"model": "minilm", "input": ["Hello world!", "Embrace serves models."]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, len(out.Data), "embeddings of", len(out.Data[0].Embedding), "dimensions")
	// Output:
	// 200 2 embeddings of 32 dimensions
}
