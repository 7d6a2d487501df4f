package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Write writes tensors and optional metadata in the safetensors format, the
// way the Python library lays a file out: tensors ordered by descending
// dtype alignment then name, data contiguous in that order, and the header
// padded with spaces to a multiple of 8 bytes so every tensor is aligned.
// A nil metadata map writes no __metadata__ entry.
func Write(w io.Writer, tensors []TensorView, metadata map[string]string) error {
	order := slices.Clone(tensors)
	seen := make(map[string]bool, len(order))
	for _, t := range order {
		if t.Name == "__metadata__" {
			return fmt.Errorf("safetensors: write: %w: tensor name __metadata__ is reserved", ErrInvalid)
		}
		if seen[t.Name] {
			return fmt.Errorf("safetensors: write: %w: tensor %q given twice", ErrInvalid, t.Name)
		}
		seen[t.Name] = true
		if !t.DType.Known() {
			return fmt.Errorf("safetensors: write: tensor %q: %w: unknown dtype %q", t.Name, ErrInvalid, t.DType)
		}
		if _, err := t.check(); err != nil {
			return fmt.Errorf("safetensors: write: %w", err)
		}
	}
	slices.SortFunc(order, func(a, b TensorView) int {
		if ra, rb := dtypeInfo[a.DType].rank, dtypeInfo[b.DType].rank; ra != rb {
			return rb - ra
		}
		return strings.Compare(a.Name, b.Name)
	})

	var hdr bytes.Buffer
	hdr.WriteString("{")
	first := true
	sep := func() {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
	}
	if metadata != nil {
		sep()
		writeJSONString(&hdr, "__metadata__")
		hdr.WriteString(":{")
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				hdr.WriteByte(',')
			}
			writeJSONString(&hdr, k)
			hdr.WriteByte(':')
			writeJSONString(&hdr, metadata[k])
		}
		hdr.WriteByte('}')
	}
	offset := 0
	for _, t := range order {
		sep()
		writeJSONString(&hdr, t.Name)
		hdr.WriteString(`:{"dtype":`)
		writeJSONString(&hdr, string(t.DType))
		hdr.WriteString(`,"shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				hdr.WriteByte(',')
			}
			hdr.WriteString(strconv.Itoa(d))
		}
		hdr.WriteString(`],"data_offsets":[`)
		hdr.WriteString(strconv.Itoa(offset))
		hdr.WriteByte(',')
		offset += len(t.Data)
		hdr.WriteString(strconv.Itoa(offset))
		hdr.WriteString("]}")
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	if hdr.Len() > maxHeaderSize {
		return fmt.Errorf("safetensors: write: %w: header of %d bytes exceeds the %d byte limit", ErrInvalid, hdr.Len(), maxHeaderSize)
	}
	var prefix [headerPrefix]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(hdr.Len()))
	if _, err := w.Write(prefix[:]); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	for _, t := range order {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("safetensors: write: tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// writeJSONString appends s as a JSON string without HTML escaping, as
// serde_json writes it.
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)               // cannot fail for a string
	buf.Truncate(buf.Len() - 1) // drop Encode's newline
}

// WriteFile writes tensors to path atomically: it writes a temporary file in
// the same folder and renames it over path, so readers (and an open mapping
// of the old file) never see a half-written file.
func WriteFile(path string, tensors []TensorView, metadata map[string]string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := Write(tmp, tensors, metadata); err != nil {
		tmp.Close()
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return nil
}
