package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// File names of a Hugging Face checkpoint folder.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// maxIndexSize bounds the index JSON read into memory; real indexes are a
// few hundred kilobytes.
const maxIndexSize = 64 << 20

// Checkpoint is a model's weights: one safetensors file, or several shards
// tied together by an index. Its methods are safe for concurrent use.
type Checkpoint struct {
	path   string  // the file or index it was opened from
	files  []*File // distinct open files
	byName map[string]*File
	names  []string // sorted
}

// OpenCheckpoint opens the weights in the folder dir: model.safetensors if
// present, else model.safetensors.index.json and its shards. A folder with
// only pytorch_model.bin gets an "unsupported" error.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	single := filepath.Join(dir, SingleFileName)
	if isFile(single) {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		return newCheckpoint(single, []*File{f}, nil), nil
	}
	index := filepath.Join(dir, IndexFileName)
	if isFile(index) {
		return OpenIndex(index)
	}
	for _, legacy := range []string{"pytorch_model.bin", "pytorch_model.bin.index.json"} {
		if isFile(filepath.Join(dir, legacy)) {
			return nil, &Error{File: dir, Msg: "unsupported: " + legacy + "; convert to safetensors", Err: ErrUnsupported}
		}
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, &Error{File: dir, Msg: "opening checkpoint folder", Err: err}
	} else if !st.IsDir() {
		return nil, &Error{File: dir, Msg: "not a folder", Err: ErrInvalid}
	}
	return nil, &Error{File: dir, Msg: "no " + SingleFileName + " or " + IndexFileName + " in folder", Err: os.ErrNotExist}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// OpenIndex opens a sharded checkpoint from its index file (the
// model.safetensors.index.json format: a "weight_map" from tensor name to
// shard file name, shards in the index's folder). Every mapped tensor must
// be present in its shard.
func OpenIndex(indexPath string) (*Checkpoint, error) {
	fh, err := os.Open(indexPath)
	if err != nil {
		return nil, &Error{File: indexPath, Msg: "opening index", Err: err}
	}
	raw, err := io.ReadAll(io.LimitReader(fh, maxIndexSize+1))
	fh.Close()
	if err != nil {
		return nil, &Error{File: indexPath, Msg: "reading index", Err: err}
	}
	if len(raw) > maxIndexSize {
		return nil, invalidf(indexPath, "", fmt.Sprintf("index is larger than %d bytes", maxIndexSize))
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, invalidf(indexPath, "", fmt.Sprintf("index is not valid JSON at byte %d: %v", se.Offset, err))
		}
		return nil, invalidf(indexPath, "", fmt.Sprintf("index is not a JSON object with a weight_map of strings: %v", err))
	}
	if len(idx.WeightMap) == 0 {
		return nil, invalidf(indexPath, "", "index has no weight_map or an empty one")
	}
	dir := filepath.Dir(indexPath)
	// Open shards in a stable order so errors are reproducible.
	names := slices.Sorted(maps.Keys(idx.WeightMap))
	shards := map[string]*File{}
	var files []*File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	byName := make(map[string]*File, len(names))
	for _, name := range names {
		shard := idx.WeightMap[name]
		f, ok := shards[shard]
		if !ok {
			// Shard names come from an untrusted file: keep them inside dir.
			if !filepath.IsLocal(shard) {
				closeAll()
				return nil, invalidf(indexPath, name, fmt.Sprintf("shard name %q is not a plain file name inside the checkpoint folder", truncate(shard)))
			}
			f, err = Open(filepath.Join(dir, shard))
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("safetensors: %s: shard of tensor %q: %w", indexPath, name, err)
			}
			shards[shard] = f
			files = append(files, f)
		}
		if !f.Has(name) {
			closeAll()
			return nil, &Error{File: indexPath, Tensor: name, Msg: "mapped to shard " + shard + " which does not hold it", Err: ErrNotFound}
		}
		byName[name] = f
	}
	return newCheckpoint(indexPath, files, byName), nil
}

func newCheckpoint(path string, files []*File, byName map[string]*File) *Checkpoint {
	if byName == nil {
		byName = map[string]*File{}
		for _, f := range files {
			for _, n := range f.hdr.names {
				byName[n] = f
			}
		}
	}
	return &Checkpoint{path: path, files: files, byName: byName, names: slices.Sorted(maps.Keys(byName))}
}

// Path returns the safetensors file or index the checkpoint was opened from.
func (c *Checkpoint) Path() string { return c.path }

// Names returns every tensor name, sorted. The slice is the caller's.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Has reports whether the checkpoint holds a tensor called name.
func (c *Checkpoint) Has(name string) bool {
	_, ok := c.byName[name]
	return ok
}

// Tensor returns the named tensor from whichever shard holds it. Its Data
// is read-only and valid until Close.
func (c *Checkpoint) Tensor(name string) (TensorView, error) {
	f, ok := c.byName[name]
	if !ok {
		return TensorView{}, &Error{File: c.path, Tensor: name, Msg: "not in checkpoint", Err: ErrNotFound}
	}
	return f.Tensor(name)
}

// Metadata returns the __metadata__ of the checkpoint's files merged (for a
// sharded checkpoint the shards usually agree, e.g. format=pt).
func (c *Checkpoint) Metadata() map[string]string {
	var m map[string]string
	for _, f := range c.files {
		if f.hdr.metadata != nil && m == nil {
			m = map[string]string{}
		}
		maps.Copy(m, f.hdr.metadata)
	}
	return m
}

// Close closes every file of the checkpoint.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
