// Package serve serves one model over HTTP with the APIs that OpenAI clients
// and Hugging Face text-embeddings-inference (TEI) clients already speak:
//
//   - POST /v1/embeddings (OpenAI) and POST /embed (TEI): sentence
//     embeddings, batched dynamically across concurrent requests;
//   - POST /v1/completions and /v1/chat/completions (OpenAI): text
//     generation, streamed with server-sent events on request; a chat is
//     rendered with the folder's chat template;
//   - POST /rerank (TEI): a cross-encoder's relevance scores of texts to a
//     query, best first;
//   - POST /classify, /ner, /qa and /fill-mask: the encoder heads, in the
//     Inference API's shapes;
//   - GET /v1/models, GET /health (503 while loading) and GET /metrics
//     (Prometheus text format).
//
// Which model routes answer is decided by pipeline.FolderTasks on the
// model's folder; the others answer 404 saying what the model serves.
// Every limit is an Options field: body size (413), inputs per request
// (413), tokens per input (413 unless truncating), queues (429 with
// Retry-After), a per-request timeout (504), an API key (401). Errors use
// OpenAI's error shape.
//
// A Handler is an http.Handler to mount in your own http.ServeMux:
//
//	h, err := serve.New(ctx, serve.Options{Model: "sentence-transformers/all-MiniLM-L6-v2"})
//	if err != nil { ... }
//	defer h.Close()
//	mux.Handle("/", h)
//
// Handler.Run serves it on a listener with graceful shutdown, as the embrace
// command's "embrace serve" does (cmd/embrace/README.md documents every
// route and field).
package serve
