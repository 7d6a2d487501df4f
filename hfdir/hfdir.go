// Package hfdir reads the metadata files of a Hugging Face model folder once:
// config.json, tokenizer_config.json (and chat_template.jinja),
// generation_config.json, special_tokens_map.json, and the
// sentence-transformers files (modules.json, sentence_bert_config.json,
// config_sentence_transformers.json and each module's config). Every other
// package that needs these files reads them through a *Folder, so a field is
// parsed in one place with one set of defaults.
//
// Weights and tokenizer.json are not read here: the safetensors and tokenizer
// packages own those formats.
//
// hfdir imports no other package of this module.
package hfdir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxFileSize bounds every metadata file read here. Real files are a few
// kilobytes (a chat template a few tens); a larger one is refused before it
// is read so a hostile folder cannot make the process allocate without limit.
const MaxFileSize = 16 << 20

// Folder is the metadata of one model folder. Files that are absent leave
// their field nil (Config is nil when config.json is absent; the loaders
// that need it say so).
type Folder struct {
	// Dir is the folder's path.
	Dir string
	// Config is config.json.
	Config *Config
	// Tokenizer is tokenizer_config.json merged with special_tokens_map.json
	// and chat_template.jinja.
	Tokenizer *TokenizerConfig
	// Generation is generation_config.json, unparsed: the generate package
	// owns its meaning.
	Generation *File
	// SentenceTransformers is the sentence-transformers layout, nil when the
	// folder has no modules.json.
	SentenceTransformers *SentenceTransformers
}

// File is one JSON file read raw: its path (for error messages) and its
// contents.
type File struct {
	Path string
	Data []byte
}

// Read reads every metadata file present in dir. A file that exists but
// cannot be parsed is an error naming it; a missing file is not.
func Read(dir string) (*Folder, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a folder", dir)
	}
	f := &Folder{Dir: dir}
	if f.Config, err = ReadConfig(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if f.Tokenizer, err = ReadTokenizerConfig(dir); err != nil {
		return nil, err
	}
	if f.Generation, err = readOptional(filepath.Join(dir, "generation_config.json")); err != nil {
		return nil, err
	}
	if f.SentenceTransformers, err = ReadSentenceTransformers(dir); err != nil {
		return nil, err
	}
	return f, nil
}

// Path joins name to the folder.
func (f *Folder) Path(name string) string { return filepath.Join(f.Dir, name) }

// RequireConfig returns Config, or an error naming the missing config.json.
func (f *Folder) RequireConfig() (*Config, error) {
	if f.Config == nil {
		return nil, fmt.Errorf("%s: %w", f.Path("config.json"), fs.ErrNotExist)
	}
	return f.Config, nil
}

// ReadFile reads a file of at most MaxFileSize bytes.
func ReadFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a metadata file", path, MaxFileSize)
	}
	return data, nil
}

// readOptional reads a JSON file if it exists: nil, nil when it does not.
func readOptional(path string) (*File, error) {
	data, err := ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return nil, fmt.Errorf("%s: not valid JSON: %w", path, err)
	}
	return &File{Path: path, Data: data}, nil
}

// unmarshal decodes data into v with the file named in the error.
func unmarshal(path string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: not valid JSON: %w", path, err)
	}
	return nil
}
