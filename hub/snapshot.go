package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// optionalFiles are fetched when the repository has them: tokenizer files
// in both the tokenizer.json and the legacy layouts, generation defaults,
// and sentence-transformers module configuration.
var optionalFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
	"vocab.txt", "vocab.json", "merges.txt",
	"generation_config.json",
	"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
}

// maxSmallJSON bounds the index and modules files parsed in memory.
const maxSmallJSON = 64 << 20

// Snapshot fetches the files a model needs from repo at revision ("" means
// "main") and returns the snapshot folder holding them: config.json, the
// safetensors weights (model.safetensors, or the shard index and every
// shard), tokenizer files, generation_config.json, and the
// sentence-transformers modules listed in modules.json. Optional files the
// repository lacks are skipped.
func (c *Client) Snapshot(ctx context.Context, repo, revision string) (string, error) {
	// config.json pins the commit; later files are fetched at that commit so
	// a push in between cannot mix two versions.
	cfg, commit, err := c.download(ctx, repo, revision, "config.json")
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(cfg)
	optional := func(name string) (string, bool, error) {
		p, _, err := c.download(ctx, repo, commit, name)
		if err != nil {
			if errors.Is(err, ErrNotFound) && ctx.Err() == nil {
				return "", false, nil
			}
			return "", false, err
		}
		return p, true, nil
	}

	if err := c.fetchWeights(ctx, repo, revision, commit, optional); err != nil {
		return "", err
	}
	for _, name := range optionalFiles {
		if _, _, err := optional(name); err != nil {
			return "", err
		}
	}
	if modules, ok, err := optional("modules.json"); err != nil {
		return "", err
	} else if ok {
		paths, err := modulePaths(modules)
		if err != nil {
			return "", err
		}
		for _, mp := range paths {
			for _, name := range []string{"config.json", "model.safetensors"} {
				if _, _, err := optional(mp + "/" + name); err != nil {
					return "", err
				}
			}
		}
	}
	return dir, nil
}

// fetchWeights downloads model.safetensors, or the shard index and its
// shards; a repository with only PyTorch weights gets ErrUnsupported.
func (c *Client) fetchWeights(ctx context.Context, repo, revision, commit string, optional func(string) (string, bool, error)) error {
	if _, ok, err := optional("model.safetensors"); err != nil || ok {
		return err
	}
	index, ok, err := optional("model.safetensors.index.json")
	if err != nil {
		return err
	}
	if ok {
		shards, err := indexShards(index)
		if err != nil {
			return err
		}
		for _, shard := range shards {
			if _, _, err := c.download(ctx, repo, commit, shard); err != nil {
				return err
			}
		}
		return nil
	}
	if !c.Offline {
		for _, legacy := range []string{"pytorch_model.bin", "pytorch_model.bin.index.json"} {
			if _, err := c.head(ctx, repo, commit, legacy); err == nil {
				return fmt.Errorf("hub: %s: unsupported: %s; convert to safetensors: %w", repo, legacy, ErrUnsupported)
			}
		}
	}
	where := ""
	if c.Offline {
		where = " in the cache (offline mode)"
	}
	return fmt.Errorf("hub: %s (revision %s) has no model.safetensors or model.safetensors.index.json%s: %w", repo, revision, where, ErrNotFound)
}

func readSmallJSON(p string, v any) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSmallJSON+1))
	if err != nil {
		return fmt.Errorf("hub: reading %s: %w", p, err)
	}
	if len(b) > maxSmallJSON {
		return fmt.Errorf("hub: %s is larger than %d bytes", p, maxSmallJSON)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("hub: parsing %s: %w", p, err)
	}
	return nil
}

// indexShards lists the distinct shard files of a safetensors index.
func indexShards(p string) ([]string, error) {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := readSmallJSON(p, &idx); err != nil {
		return nil, err
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("hub: %s has no weight_map", p)
	}
	set := map[string]bool{}
	for _, shard := range idx.WeightMap {
		if err := checkFilename(shard); err != nil {
			return nil, fmt.Errorf("hub: %s: %w", p, err)
		}
		set[shard] = true
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// modulePaths lists the folders of sentence-transformers modules (the
// first module, the transformer itself, usually has path "").
func modulePaths(p string) ([]string, error) {
	var mods []struct {
		Path string `json:"path"`
	}
	if err := readSmallJSON(p, &mods); err != nil {
		return nil, err
	}
	var out []string
	for _, m := range mods {
		mp := strings.Trim(m.Path, "/")
		if mp == "" {
			continue
		}
		if err := checkFilename(mp); err != nil {
			return nil, fmt.Errorf("hub: %s: %w", p, err)
		}
		out = append(out, mp)
	}
	return out, nil
}

// Resolve returns a folder holding a model: nameOrDir itself when it is an
// existing folder, else the Hub snapshot of the repository it names
// ("org/name", optionally "org/name@revision"), fetched with a Client
// configured from the environment.
func Resolve(ctx context.Context, nameOrDir string) (string, error) {
	if st, err := os.Stat(nameOrDir); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("hub: %s is a file, not a model folder", nameOrDir)
		}
		return nameOrDir, nil
	}
	repo, rev, _ := strings.Cut(nameOrDir, "@")
	if !IsRepoID(repo) {
		return "", fmt.Errorf("hub: %q is neither an existing folder nor a Hub repository id: %w", nameOrDir, ErrNotFound)
	}
	return NewClient().Snapshot(ctx, repo, rev)
}
