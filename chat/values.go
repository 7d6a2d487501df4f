package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// maxDepth bounds how deeply nested a value given to a template may be, so that
// converting or printing it can never exhaust the stack.
const maxDepth = 1000

// convert turns a caller's Go value into what the template engine reads (dicts
// as *exec.Dict, which the engine prints the way Python prints a dict), keeping
// the key order Python would see: JSON objects (json.RawMessage, or any value that
// is not a map, slice or scalar, through encoding/json) keep their order, Go maps
// are read in sorted key order (a Go map has none of its own).
func convert(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("value nested more than %d levels deep", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string, bool, int, float64:
		return x, nil
	case json.RawMessage:
		return decodeJSON(x)
	case json.Number:
		return number(x)
	case Message:
		return x.dict(depth)
	case *exec.Value:
		return x, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := &exec.Dict{Pairs: make([]*exec.Pair, 0, len(keys))}
		for _, k := range keys {
			c, err := convert(x[k], depth+1)
			if err != nil {
				return nil, err
			}
			d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(c)})
		}
		return d, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := convert(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt {
			return float64(u), nil
		}
		return int(u), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			c, err := convert(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return convert(m, depth)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
	}
	// Structs and the rest: their JSON form, in field order.
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cannot pass a %T to a template: %w", v, err)
	}
	return decodeJSON(raw)
}

// decodeJSON decodes one JSON value keeping object key order; integers stay
// integers (Python's json does the same), other numbers become float64.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("invalid JSON: data after the value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			list := []any{}
			for dec.More() {
				e, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, e)
			}
			_, err := dec.Token()
			return list, err
		case '{':
			d := &exec.Dict{Pairs: []*exec.Pair{}}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				e, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				key := exec.AsValue(k.(string))
				// A repeated key keeps its first place and its last value, as in Python.
				if i := slices.IndexFunc(d.Pairs, func(p *exec.Pair) bool { return p.Key.String() == k.(string) }); i >= 0 {
					d.Pairs[i].Value = exec.AsValue(e)
					continue
				}
				d.Pairs = append(d.Pairs, &exec.Pair{Key: key, Value: exec.AsValue(e)})
			}
			_, err := dec.Token()
			return d, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return number(t)
	default: // string, bool, nil
		return t, nil
	}
}

func number(n json.Number) (any, error) {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return nil, fmt.Errorf("bad number %q: %w", s, err)
	}
	return f, nil
}

// jsonOptions are the arguments of transformers' tojson filter, which is
// json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
type jsonOptions struct {
	ensureASCII bool
	indent      string // "" with hasIndent false: one line
	hasIndent   bool
	itemSep     string
	keySep      string
	sortKeys    bool
}

// writeJSON encodes v as Python's json.dumps does with opts.
func writeJSON(b *strings.Builder, v *exec.Value, opts *jsonOptions, level int, limit int) error {
	if level > maxDepth {
		return fmt.Errorf("tojson: value nested more than %d levels deep", maxDepth)
	}
	if b.Len() > limit {
		return errOutputLimit
	}
	if v == nil || v.IsNil() {
		b.WriteString("null")
		return nil
	}
	switch {
	case v.IsError():
		return fmt.Errorf("tojson: %s", v.Error())
	case v.IsBool():
		if v.Bool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
		return nil
	case v.IsInteger():
		b.WriteString(strconv.Itoa(v.Integer()))
		return nil
	case v.IsFloat():
		f := v.Float()
		switch {
		case math.IsNaN(f):
			b.WriteString("NaN")
		case math.IsInf(f, 1):
			b.WriteString("Infinity")
		case math.IsInf(f, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloat(f))
		}
		return nil
	case v.IsString():
		writeJSONString(b, v.String(), opts.ensureASCII)
		return nil
	case v.IsDict():
		pairs := dictPairs(v)
		if opts.sortKeys {
			pairs = slices.Clone(pairs)
			slices.SortStableFunc(pairs, func(a, c *exec.Pair) int { return strings.Compare(a.Key.String(), c.Key.String()) })
		}
		if len(pairs) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, p := range pairs {
			if i > 0 {
				b.WriteString(opts.itemSep)
			}
			newline(b, opts, level+1)
			if err := writeKey(b, p.Key, opts); err != nil {
				return err
			}
			b.WriteString(opts.keySep)
			if err := writeJSON(b, p.Value, opts, level+1, limit); err != nil {
				return err
			}
		}
		newline(b, opts, level)
		b.WriteByte('}')
		return nil
	case v.IsList():
		n := v.Len()
		if n == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i := range n {
			if i > 0 {
				b.WriteString(opts.itemSep)
			}
			newline(b, opts, level+1)
			if err := writeJSON(b, v.Index(i), opts, level+1, limit); err != nil {
				return err
			}
		}
		newline(b, opts, level)
		b.WriteByte(']')
		return nil
	}
	return fmt.Errorf("tojson: object of type %s is not JSON serializable", v.Val.Type())
}

func newline(b *strings.Builder, opts *jsonOptions, level int) {
	if !opts.hasIndent {
		return
	}
	b.WriteByte('\n')
	for range level {
		b.WriteString(opts.indent)
	}
}

// writeKey writes a dict key as json.dumps does: strings as they are, numbers,
// booleans and None as their JSON text in quotes.
func writeKey(b *strings.Builder, k *exec.Value, opts *jsonOptions) error {
	switch {
	case k.IsString():
		writeJSONString(b, k.String(), opts.ensureASCII)
	case k.IsNil():
		b.WriteString(`"null"`)
	case k.IsBool():
		if k.Bool() {
			b.WriteString(`"true"`)
		} else {
			b.WriteString(`"false"`)
		}
	case k.IsInteger():
		b.WriteString(`"` + strconv.Itoa(k.Integer()) + `"`)
	case k.IsFloat():
		b.WriteString(`"` + pyFloat(k.Float()) + `"`)
	default:
		return fmt.Errorf("tojson: keys must be str, int, float, bool or None")
	}
	return nil
}

// dictPairs returns a dict's entries: in order for an ordered dict, sorted by
// key for a Go map.
func dictPairs(v *exec.Value) []*exec.Pair {
	rv := reflect.Indirect(v.Val)
	for rv.Kind() == reflect.Interface && !rv.IsNil() {
		rv = reflect.Indirect(rv.Elem())
	}
	if rv.Type() == exec.TypeDict {
		return rv.Interface().(exec.Dict).Pairs
	}
	var pairs []*exec.Pair
	for _, k := range v.Keys() {
		item, _ := v.GetItem(k.Interface())
		pairs = append(pairs, &exec.Pair{Key: k, Value: item})
	}
	slices.SortStableFunc(pairs, func(a, c *exec.Pair) int { return strings.Compare(a.Key.String(), c.Key.String()) })
	return pairs
}

// writeJSONString quotes s as Python's json module does: only '"', '\\' and
// control characters are escaped (no HTML escaping), and with ensureASCII every
// non-ASCII character becomes \uXXXX (UTF-16 surrogate pairs above U+FFFF).
func writeJSONString(b *strings.Builder, s string, ensureASCII bool) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (ensureASCII && r > 0x7e):
			units := []uint16{uint16(r)}
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				units = []uint16{uint16(r1), uint16(r2)}
			}
			for _, u := range units {
				b.WriteString(`\u`)
				b.WriteByte(hex[u>>12&0xf])
				b.WriteByte(hex[u>>8&0xf])
				b.WriteByte(hex[u>>4&0xf])
				b.WriteByte(hex[u&0xf])
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// pyFloat formats f as Python's repr(float) does: the shortest digits that read
// back as f, in positional form when the decimal exponent is in [-4, 16) and
// with a ".0" when the value is integral, else in exponent form like "1e-05" or
// "1.5e+16".
func pyFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		switch {
		case math.IsNaN(f):
			return "nan"
		case f > 0:
			return "inf"
		}
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp < -4 || exp >= 16 {
		if strings.HasSuffix(mant, ".0") {
			mant = strings.TrimSuffix(mant, ".0")
		}
		sign := "+"
		if exp < 0 {
			sign = "-"
			exp = -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}
