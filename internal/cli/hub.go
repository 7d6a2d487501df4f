package cli

import (
	"context"

	"github.com/embrace-go/embrace/hub"
)

// fetchFromHub is the single place the examples reach the Hugging Face Hub:
// it downloads (or finds in the shared Hugging Face cache) the files the
// model needs and returns their snapshot folder. HF_ENDPOINT, HF_TOKEN,
// HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE apply.
func fetchFromHub(ctx context.Context, repoID string) (string, error) {
	return hub.Resolve(ctx, repoID)
}
