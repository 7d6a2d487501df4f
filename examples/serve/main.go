// Command serve mounts package serve's Handler in an http.ServeMux: the
// OpenAI- and TEI-compatible server inside your own Go program. "embrace
// serve" (cmd/embrace) is the same server with every limit as a flag, logs
// and graceful shutdown.
//
//	go run ./examples/serve pipeline/testdata/minilm-st
//	curl -s localhost:8080/v1/embeddings -d '{"input": "Hello world!"}'
package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/embrace-go/embrace/serve"
)

func main() {
	model := "sentence-transformers/all-MiniLM-L6-v2" // a Hub repo id or a local folder
	if len(os.Args) > 1 {
		model = os.Args[1]
	}
	h, err := serve.New(context.Background(), serve.Options{Model: model})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	mux := http.NewServeMux()
	mux.Handle("/", h) // or mux.Handle("/ml/", http.StripPrefix("/ml", h)) beside your own routes
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	log.Printf("serving %s on http://%s", model, srv.Addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Print(err)
	}
}
