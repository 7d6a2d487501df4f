package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	beam "github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	ebeam "github.com/embrace-go/embrace/beam"
)

// config is a run of the command, from its flags.
type config struct {
	Input, Output, Format string
	Shards                int
	MaxLine               int
	Reshuffle             bool
	Embed                 ebeam.EmbedConfig
}

// maxShards keeps shard numbers within the five digits of the file names.
const maxShards = 99999

func (c config) check(ctx context.Context) error {
	switch {
	case c.Input == "":
		return errors.New("--input is required")
	case c.Output == "":
		return errors.New("--output is required")
	case c.Embed.Model == "":
		return errors.New("--model is required")
	case c.Format != "auto" && c.Format != "jsonl" && c.Format != "text":
		return fmt.Errorf("--format %q: want auto, jsonl or text", c.Format)
	case c.Shards < 1 || c.Shards > maxShards:
		return fmt.Errorf("--num_shards %d: want 1 to %d", c.Shards, maxShards)
	case c.MaxLine < 1:
		return fmt.Errorf("--max_line_bytes %d: want at least 1", c.MaxLine)
	case strings.HasSuffix(c.Output, "/"):
		return fmt.Errorf("--output %q: a prefix for file names, not a folder", c.Output)
	}
	return checkInputExists(ctx, c.Input)
}

func init() {
	register.DoFn4x1[context.Context, fileio.ReadableFile, func([]ebeam.Record), func(ebeam.DeadLetter), error](&readFn{})
	register.DoFn2x0[[]ebeam.Record, func(ebeam.Record)](&unchunkFn{})
	register.DoFn2x0[ebeam.Embedding, func(int, string)](&embeddingLineFn{})
	register.DoFn2x0[ebeam.DeadLetter, func(int, string)](&deadLineFn{})
	register.DoFn2x0[int, func(int, string)](&emptyShardFn{})
	register.DoFn3x1[context.Context, int, func(*string) bool, error](&writeShardFn{})
	register.Emitter1[ebeam.Record]()
	register.Emitter1[[]ebeam.Record]()
	register.Emitter1[ebeam.DeadLetter]()
	register.Emitter2[int, string]()
	register.Iter1[string]()
}

// build makes the job's pipeline.
func build(c config) (*beam.Pipeline, error) {
	p, s := beam.NewPipelineWithRoot()
	matches := fileio.MatchFiles(s, c.Input, fileio.MatchEmptyDisallow())
	files := fileio.ReadMatches(s, matches, fileio.ReadDirectorySkip())
	chunks, readDead := beam.ParDo2(s, &readFn{Format: c.Format, MaxLine: c.MaxLine}, files)
	if c.Reshuffle {
		chunks = beam.Reshuffle(s, chunks)
	}
	records := beam.ParDo(s, &unchunkFn{}, chunks)
	vectors, embedDead, err := ebeam.Embed(s, records, c.Embed)
	if err != nil {
		return nil, err
	}
	dead := beam.Flatten(s, readDead, embedDead)
	writeShards(s.Scope("WriteVectors"), c.Output, c.Shards, beam.ParDo(s, &embeddingLineFn{Shards: c.Shards}, vectors))
	writeShards(s.Scope("WriteDeadLetters"), c.Output+"-dead-letters", 1, beam.ParDo(s, &deadLineFn{Shards: 1}, dead))
	return p, nil
}

// readFn reads a file's lines as records: JSONL objects, or plain text
// with the id FILE:LINE. Lines that are not records go to the dead letters.
type readFn struct {
	Format  string
	MaxLine int
}

// linesCounter counts the input lines read, blank JSONL lines excepted.
var linesCounter = beam.NewCounter("embed-corpus", "lines")

// chunkSize is how many records the reader emits together: the reshuffle
// then moves a few large elements rather than many small ones.
const chunkSize = 256

// ProcessElement reads one file, emitting its records in chunks.
func (f *readFn) ProcessElement(ctx context.Context, file fileio.ReadableFile, emitChunk func([]ebeam.Record), dead func(ebeam.DeadLetter)) (err error) {
	var chunk []ebeam.Record
	emit := func(r ebeam.Record) {
		chunk = append(chunk, r)
		if len(chunk) == chunkSize {
			emitChunk(chunk)
			chunk = nil
		}
	}
	defer func() {
		if err == nil && len(chunk) > 0 {
			emitChunk(chunk)
		}
	}()
	path := file.Metadata.Path
	jsonl := f.Format == "jsonl" || (f.Format == "auto" && isJSONL(path))
	rc, err := file.Open(ctx)
	if err != nil {
		return fmt.Errorf("embed-corpus: %s: %w", path, err)
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, 64<<10)
	for n := 1; ; n++ {
		line, tooLong, err := readLine(r, f.MaxLine)
		if err == io.EOF && line == nil {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("embed-corpus: %s: line %d: %w", path, n, err)
		}
		id := path + ":" + strconv.Itoa(n)
		blank := jsonl && !tooLong && len(bytes.TrimSpace(line)) == 0
		if !blank {
			linesCounter.Inc(ctx, 1)
		}
		switch {
		case tooLong:
			dead(ebeam.DeadLetter{ID: id, Text: excerpt(line), Reason: fmt.Sprintf("%s: line longer than %d bytes", id, f.MaxLine)})
		case blank:
			// Blank lines between JSON objects are not records.
		case jsonl:
			if rec, reason := parseJSONL(line); reason != "" {
				dead(ebeam.DeadLetter{ID: id, Text: excerpt(line), Reason: id + ": " + reason})
			} else {
				emit(rec)
			}
		default:
			emit(ebeam.Record{ID: id, Text: string(line)})
		}
		if err == io.EOF {
			return nil
		}
	}
}

// unchunkFn emits a chunk's records one by one.
type unchunkFn struct{}

// ProcessElement splits one chunk.
func (unchunkFn) ProcessElement(chunk []ebeam.Record, emit func(ebeam.Record)) {
	for _, r := range chunk {
		emit(r)
	}
}

func isJSONL(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".jsonl") || strings.HasSuffix(p, ".jsonl.gz")
}

// readLine returns the next line without its line ending, and io.EOF
// with it when the file ends without a newline. A line longer than limit
// is read to its end but only its first limit bytes are kept, with tooLong
// set. At the end of the file it returns nil, false, io.EOF.
func readLine(r *bufio.Reader, limit int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > limit+2 { // room for "\r\n"
				line, tooLong = line[:limit], true
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(line) == 0 && !tooLong {
			return nil, false, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		if !tooLong {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if len(line) > limit {
				line, tooLong = line[:limit], true
			}
		}
		if line == nil {
			line = []byte{}
		}
		return line, tooLong, err
	}
}

// excerpt keeps dead letters small: the first KiB of a rejected line.
func excerpt(line []byte) string {
	const keep = 1 << 10
	if len(line) > keep {
		line = line[:keep]
	}
	return string(line)
}

// jsonRecord is an input line: id may be a string or a number; metadata
// values that are not strings are kept as their JSON text.
type jsonRecord struct {
	ID       json.RawMessage            `json:"id"`
	Text     *string                    `json:"text"`
	Metadata map[string]json.RawMessage `json:"metadata"`
}

// parseJSONL decodes one JSONL line, or says why it cannot.
func parseJSONL(line []byte) (ebeam.Record, string) {
	// encoding/json would replace invalid UTF-8 silently.
	if !utf8.Valid(line) {
		return ebeam.Record{}, "invalid UTF-8 in the line"
	}
	var jr jsonRecord
	if err := json.Unmarshal(line, &jr); err != nil {
		return ebeam.Record{}, "invalid JSON: " + err.Error()
	}
	var id string
	switch {
	case len(jr.ID) == 0 || string(jr.ID) == "null":
		return ebeam.Record{}, `no "id"`
	case jr.ID[0] == '"':
		if err := json.Unmarshal(jr.ID, &id); err != nil {
			return ebeam.Record{}, `"id": ` + err.Error()
		}
	case (jr.ID[0] >= '0' && jr.ID[0] <= '9') || jr.ID[0] == '-':
		id = string(jr.ID)
	default:
		return ebeam.Record{}, `"id" is neither a string nor a number`
	}
	if jr.Text == nil {
		return ebeam.Record{}, `no "text" string`
	}
	rec := ebeam.Record{ID: id, Text: *jr.Text}
	if len(jr.Metadata) > 0 {
		rec.Metadata = make(map[string]string, len(jr.Metadata))
		for k, v := range jr.Metadata {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			rec.Metadata[k] = s
		}
	}
	return rec, ""
}

// shardOf spreads IDs over the shards, the same way on every retry.
func shardOf(id string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(shards))
}

// outputLine is a vector file's line.
type outputLine struct {
	ID        string            `json:"id"`
	Vector    []float32         `json:"vector"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Truncated bool              `json:"truncated,omitempty"`
}

// shardBuffer gathers a bundle's output lines by shard, so that the
// shuffle before the writers moves a few large strings (many lines joined
// by newlines) instead of one element a line.
type shardBuffer struct {
	bufs map[int]*bytes.Buffer
}

// flushAt is the size at which a shard's buffer is emitted before the
// bundle ends.
const flushAt = 1 << 20

func (b *shardBuffer) add(shard int, line []byte, emit func(int, string)) {
	if b.bufs == nil {
		b.bufs = map[int]*bytes.Buffer{}
	}
	buf := b.bufs[shard]
	if buf == nil {
		buf = new(bytes.Buffer)
		b.bufs[shard] = buf
	}
	buf.Write(line)
	buf.WriteByte('\n')
	if buf.Len() >= flushAt {
		emit(shard, buf.String())
		buf.Reset()
	}
}

func (b *shardBuffer) flush(emit func(int, string)) {
	for shard, buf := range b.bufs {
		if buf.Len() > 0 {
			emit(shard, buf.String())
		}
	}
	b.bufs = nil
}

// embeddingLineFn turns embeddings into output lines, keyed by shard.
type embeddingLineFn struct {
	Shards int
	b      shardBuffer
}

// StartBundle drops what a failed bundle left.
func (f *embeddingLineFn) StartBundle(func(int, string)) { f.b.bufs = nil }

// ProcessElement encodes one embedding.
func (f *embeddingLineFn) ProcessElement(e ebeam.Embedding, emit func(int, string)) {
	line, _ := json.Marshal(outputLine{ID: e.ID, Vector: e.Vector, Metadata: e.Metadata, Truncated: e.Truncated})
	f.b.add(shardOf(e.ID, f.Shards), line, emit)
}

// FinishBundle emits the bundle's remaining lines.
func (f *embeddingLineFn) FinishBundle(emit func(int, string)) { f.b.flush(emit) }

// deadLineFn turns dead letters into output lines, keyed by shard.
type deadLineFn struct {
	Shards int
	b      shardBuffer
}

// StartBundle drops what a failed bundle left.
func (f *deadLineFn) StartBundle(func(int, string)) { f.b.bufs = nil }

// ProcessElement encodes one dead letter.
func (f *deadLineFn) ProcessElement(d ebeam.DeadLetter, emit func(int, string)) {
	line, _ := json.Marshal(d)
	f.b.add(shardOf(d.ID, f.Shards), line, emit)
}

// FinishBundle emits the bundle's remaining lines.
func (f *deadLineFn) FinishBundle(emit func(int, string)) { f.b.flush(emit) }

// emptyShardFn emits an empty string for a shard, so that every shard's file
// is written even when no record falls in it.
type emptyShardFn struct{}

// ProcessElement marks one shard.
func (emptyShardFn) ProcessElement(shard int, emit func(int, string)) { emit(shard, "") }

// writeShards writes lines (KV<int, string>: shard, newline-terminated
// lines) to
// prefix-SSSSS-of-NNNNN.jsonl.
func writeShards(s beam.Scope, prefix string, shards int, lines beam.PCollection) {
	ids := make([]int, shards)
	for i := range ids {
		ids[i] = i
	}
	marks := beam.ParDo(s, emptyShardFn{}, beam.CreateList(s, ids))
	grouped := beam.GroupByKey(s, beam.Flatten(s, lines, marks))
	beam.ParDo0(s, &writeShardFn{Prefix: prefix, Shards: shards}, grouped)
}

// writeShardFn writes one shard's file. A retried shard overwrites its
// file; nothing else is written under the prefix.
type writeShardFn struct {
	Prefix string
	Shards int
}

func shardName(prefix string, shard, shards int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.jsonl", prefix, shard, shards)
}

// ProcessElement writes one shard.
func (f *writeShardFn) ProcessElement(ctx context.Context, shard int, lines func(*string) bool) error {
	name := shardName(f.Prefix, shard, f.Shards)
	if !strings.Contains(name, "://") {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return fmt.Errorf("embed-corpus: %w", err)
		}
	}
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return fmt.Errorf("embed-corpus: %s: %w", name, err)
	}
	defer fs.Close()
	wc, err := fs.OpenWrite(ctx, name)
	if err != nil {
		return fmt.Errorf("embed-corpus: %s: %w", name, err)
	}
	w := bufio.NewWriterSize(wc, 1<<20)
	var line string
	for lines(&line) {
		if _, err := w.WriteString(line); err != nil {
			wc.Close()
			return fmt.Errorf("embed-corpus: %s: %w", name, err)
		}
	}
	if err := w.Flush(); err != nil {
		wc.Close()
		return fmt.Errorf("embed-corpus: %s: %w", name, err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("embed-corpus: %s: %w", name, err)
	}
	return nil
}
