package hub_test

import (
	"context"
	"fmt"
	"log"

	"github.com/embrace-go/embrace/hub"
)

// Resolve accepts a local folder or a Hub repository id and returns a folder
// holding config.json, the safetensors weights and the tokenizer files.
func ExampleResolve() {
	dir, err := hub.Resolve(context.Background(), "sentence-transformers/all-MiniLM-L6-v2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dir) // e.g. ~/.cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/<commit>
}

// A Client configured from the environment (HF_ENDPOINT, HF_TOKEN,
// HF_HUB_CACHE, HF_HUB_OFFLINE) fetches single files into the shared cache.
func ExampleClient_Download() {
	c := hub.NewClient()
	path, err := c.Download(context.Background(), "openai-community/gpt2", "main", "config.json")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(path)
}

func ExampleClient_Snapshot() {
	c := hub.NewClient()
	c.Offline = true // use only what is already cached
	dir, err := c.Snapshot(context.Background(), "google-bert/bert-base-uncased", "")
	if err != nil {
		fmt.Println("not cached:", err)
		return
	}
	fmt.Println(dir)
}
