package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ResolveModel turns the -model value into a local folder. A folder that
// exists is used as is (fully offline). Anything that looks like a path but
// does not exist is an error naming it. Anything else is a Hub repo id
// ("org/name"), handed to fetch; when that fails the error says the Hub
// could not be used and how to run offline with -model.
func ResolveModel(ctx context.Context, model string) (string, error) {
	return resolveModel(ctx, model, fetchFromHub)
}

// resolveModel is ResolveModel with the Hub call injectable for tests.
func resolveModel(ctx context.Context, model string, fetch func(context.Context, string) (string, error)) (string, error) {
	if strings.TrimSpace(model) == "" {
		return "", errors.New("-model is empty: give a model folder or a Hub repo id such as org/name")
	}
	if fi, err := os.Stat(model); err == nil {
		if !fi.IsDir() {
			return "", fmt.Errorf("-model %s is a file; want the model's folder (holding config.json)", model)
		}
		return model, nil
	}
	if looksLikePath(model) {
		return "", fmt.Errorf("model folder %s does not exist", model)
	}
	dir, err := fetch(ctx, model)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("fetching %s from the Hugging Face Hub: %w", model, ctx.Err())
		}
		// Name both readings: a mistyped relative folder also lands here.
		return "", fmt.Errorf("cannot get %s from the Hugging Face Hub (%v), and there is no local folder of that name; to run offline, pass -model with a local model folder", model, err)
	}
	return dir, nil
}

// looksLikePath reports whether s is meant as a file-system path rather
// than a Hub repo id, which is at most "org/name" with no dots in front.
func looksLikePath(s string) bool {
	if filepath.IsAbs(s) || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~") {
		return true
	}
	if strings.ContainsRune(s, '\\') {
		return true
	}
	return strings.Count(s, "/") > 1
}
