package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxHeaderSize is the largest header the Python library accepts (100 MB);
// anything larger is treated as corrupt rather than allocated.
const maxHeaderSize = 100_000_000

// headerPrefix is the size of the little-endian header length that starts a file.
const headerPrefix = 8

// tensorInfo is one validated header entry; begin and end are relative to
// the start of the data area.
type tensorInfo struct {
	dtype      DType
	shape      []int
	begin, end uint64
}

// header is a parsed and validated safetensors header.
type header struct {
	metadata map[string]string
	tensors  map[string]tensorInfo
	names    []string // sorted
}

// parseHeader parses and validates the JSON header hdr of file, whose data
// area is dataLen bytes long. Errors name file and, where known, the tensor.
//
// Validation follows the Python library, with one deliberate leniency: gaps
// between tensors and bytes after the last one are allowed (Python rejects
// them) since they cannot make a read go wrong; overlaps are rejected.
func parseHeader(file string, hdr []byte, dataLen uint64) (*header, error) {
	if !utf8.Valid(hdr) {
		return nil, invalidf(file, "", "header is not valid UTF-8")
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, invalidf(file, "", "header does not start with '{' (byte 8 of the file)")
	}
	h := &header{tensors: make(map[string]tensorInfo)}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return invalidf(file, "", fmt.Sprintf("header is not valid JSON at file byte %d: %v", headerPrefix+se.Offset, err))
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return invalidf(file, "", "header JSON ends early")
		}
		return invalidf(file, "", fmt.Sprintf("header is not valid JSON near file byte %d: %v", headerPrefix+dec.InputOffset(), err))
	}
	if _, err := dec.Token(); err != nil { // the '{', checked above
		return nil, syntax(err)
	}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		key, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		if key == "__metadata__" {
			if seenMeta {
				return nil, invalidf(file, "", "duplicate __metadata__ in header")
			}
			seenMeta = true
			if h.metadata, err = parseMetadata(file, raw); err != nil {
				return nil, err
			}
			continue
		}
		if _, dup := h.tensors[key]; dup {
			return nil, invalidf(file, key, "appears twice in the header")
		}
		info, err := parseTensorInfo(file, key, raw, dataLen)
		if err != nil {
			return nil, err
		}
		h.tensors[key] = info
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntax(err)
	}
	// Only whitespace (the writer's space padding) may follow the object.
	if rest := hdr[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return nil, invalidf(file, "", fmt.Sprintf("header has trailing data after the JSON object at file byte %d", headerPrefix+dec.InputOffset()))
	}
	h.names = make([]string, 0, len(h.tensors))
	for name := range h.tensors {
		h.names = append(h.names, name)
	}
	slices.Sort(h.names)
	if err := checkOverlaps(file, h); err != nil {
		return nil, err
	}
	return h, nil
}

func parseMetadata(file string, raw json.RawMessage) (map[string]string, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalidf(file, "", "__metadata__ is not a JSON object of strings")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, invalidf(file, "", fmt.Sprintf("__metadata__ value for %q is not a string", k))
		}
		out[k] = s
	}
	return out, nil
}

func parseTensorInfo(file, name string, raw json.RawMessage, dataLen uint64) (tensorInfo, error) {
	var info tensorInfo
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return info, invalidf(file, name, "header entry is not a JSON object")
	}
	rawDType, ok1 := fields["dtype"]
	rawShape, ok2 := fields["shape"]
	rawOffsets, ok3 := fields["data_offsets"]
	if !ok1 || !ok2 || !ok3 {
		return info, invalidf(file, name, "header entry needs dtype, shape and data_offsets")
	}
	var dt string
	if err := json.Unmarshal(rawDType, &dt); err != nil {
		return info, invalidf(file, name, "dtype is not a string")
	}
	info.dtype = DType(dt)
	if !info.dtype.Known() {
		return info, invalidf(file, name, fmt.Sprintf("unknown dtype %q", truncate(dt)))
	}
	size := info.dtype.Size()
	if size == 0 {
		return info, &Error{File: file, Tensor: name, Msg: fmt.Sprintf("unsupported: sub-byte dtype %s", dt), Err: ErrUnsupported}
	}
	var shape []uint64
	if err := json.Unmarshal(rawShape, &shape); err != nil || shape == nil && string(rawShape) == "null" {
		return info, invalidf(file, name, "shape is not a list of non-negative integers")
	}
	var offsets []uint64
	if err := json.Unmarshal(rawOffsets, &offsets); err != nil || len(offsets) != 2 {
		return info, invalidf(file, name, "data_offsets is not a pair of non-negative integers")
	}
	// Element count and byte length, refusing overflow rather than wrapping.
	n := uint64(1)
	info.shape = make([]int, len(shape))
	for i, d := range shape {
		if d > math.MaxInt {
			return info, invalidf(file, name, fmt.Sprintf("shape dimension %d is too large (%d)", i, d))
		}
		info.shape[i] = int(d)
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return info, invalidf(file, name, fmt.Sprintf("shape %v overflows the element count", shape))
		}
		n = lo
	}
	hi, nbytes := bits.Mul64(n, uint64(size))
	if hi != 0 || nbytes > math.MaxInt {
		return info, invalidf(file, name, fmt.Sprintf("shape %v of %s overflows the byte length", shape, dt))
	}
	info.begin, info.end = offsets[0], offsets[1]
	if info.begin > info.end {
		return info, invalidf(file, name, fmt.Sprintf("data_offsets [%d, %d] end before they start", info.begin, info.end))
	}
	if info.end > dataLen {
		return info, invalidf(file, name, fmt.Sprintf("data_offsets [%d, %d] run past the end of the data area (%d bytes)", info.begin, info.end, dataLen))
	}
	if info.end-info.begin != nbytes {
		return info, invalidf(file, name, fmt.Sprintf("shape %v of %s needs %d bytes but data_offsets [%d, %d] hold %d", shape, dt, nbytes, info.begin, info.end, info.end-info.begin))
	}
	return info, nil
}

// checkOverlaps rejects tensors whose byte ranges share any byte.
func checkOverlaps(file string, h *header) error {
	order := make([]string, 0, len(h.names))
	for _, name := range h.names {
		if t := h.tensors[name]; t.end > t.begin {
			order = append(order, name)
		}
	}
	slices.SortFunc(order, func(a, b string) int {
		ta, tb := h.tensors[a], h.tensors[b]
		if ta.begin != tb.begin {
			if ta.begin < tb.begin {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for i := 1; i < len(order); i++ {
		prev, cur := h.tensors[order[i-1]], h.tensors[order[i]]
		if cur.begin < prev.end {
			return invalidf(file, order[i], fmt.Sprintf("data_offsets [%d, %d] overlap tensor %q at [%d, %d]", cur.begin, cur.end, order[i-1], prev.begin, prev.end))
		}
	}
	return nil
}

// truncate shortens untrusted strings quoted in error messages.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
