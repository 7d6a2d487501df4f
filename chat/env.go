package chat

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// maxRange is the sandbox's limit on one range() (jinja2.sandbox.MAX_RANGE).
const maxRange = 100000

// maxRangeTotal bounds the numbers all range() calls of one rendering may
// produce together, so that nested loops cannot run for ever (chat templates
// call range() once or not at all).
const maxRangeTotal = 2 * maxRange

// newConfig is the lexer configuration transformers uses: trim_blocks and
// lstrip_blocks on, a single trailing newline dropped (keep_trailing_newline off).
func newConfig() *config.Config {
	c := config.New()
	c.TrimBlocks = true
	c.LeftStripBlocks = true
	return c
}

// environment is built once: the engine's filters, tests, statements and
// methods with the changes below. Per-rendering functions (raise_exception,
// strftime_now, range) go into each rendering's own context instead.
var environment = newEnvironment()

func newEnvironment() *exec.Environment {
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{})
	filters.Update(builtins.Filters)
	for name, fn := range map[string]exec.FilterFunction{
		"tojson":   filterToJSON,
		"reverse":  filterReverse,
		"items":    filterItems,
		"dictsort": filterDictSort,
	} {
		if filters.Exists(name) {
			_ = filters.Replace(name, fn)
		} else {
			_ = filters.Register(name, fn)
		}
	}

	// The sandbox has no loader: statements that read other templates are left
	// out, so a template can never reach the file system.
	statements := map[string]parser.ControlStructureParser{}
	for _, name := range []string{"autoescape", "block", "filter", "for", "if", "macro", "raw", "set", "with", "do", "break", "continue", "call"} {
		p, ok := builtins.ControlStructures.Get(name)
		if !ok {
			panic("chat: the template engine lacks the " + name + " statement")
		}
		statements[name] = p
	}
	statements["generation"] = generationParser

	tests := exec.NewTestSet(map[string]exec.TestFunction{})
	tests.Update(builtins.Tests)

	str := map[string]exec.Method[string]{}
	for _, name := range []string{"capitalize", "casefold", "center", "count", "endswith", "find", "format", "index", "isalnum", "isalpha", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower", "partition", "removeprefix", "removesuffix", "rfind", "rindex", "rjust", "rpartition", "rsplit", "splitlines", "startswith", "swapcase", "title", "upper", "zfill"} {
		if m, ok := builtins.Methods.Str.Get(name); ok {
			str[name] = m
		}
	}
	str["split"] = splitMethod
	str["replace"] = replaceMethod
	str["strip"] = stripMethod(true, true)
	str["lstrip"] = stripMethod(true, false)
	str["rstrip"] = stripMethod(false, true)

	dict := map[string]exec.Method[map[string]any]{}
	for _, name := range []string{"get", "pop", "update", "copy", "setdefault", "clear"} {
		if m, ok := builtins.Methods.Dict.Get(name); ok {
			dict[name] = m
		}
	}
	dict["items"] = dictMethod(func(p *exec.Pair) any { return []any{p.Key, p.Value} })
	dict["keys"] = dictMethod(func(p *exec.Pair) any { return p.Key })
	dict["values"] = dictMethod(func(p *exec.Pair) any { return p.Value })

	list := map[string]exec.Method[[]any]{}
	for _, name := range []string{"append", "count", "index", "copy", "extend", "insert", "pop", "remove", "reverse", "sort"} {
		if m, ok := builtins.Methods.List.Get(name); ok {
			list[name] = m
		}
	}

	return &exec.Environment{
		Context:           exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables),
		Filters:           filters,
		Tests:             tests,
		ControlStructures: exec.NewControlStructureSet(statements),
		Methods: exec.Methods{
			Bool:  builtins.Methods.Bool,
			Int:   builtins.Methods.Int,
			Float: builtins.Methods.Float,
			Str:   exec.NewMethodSet(str),
			Dict:  exec.NewMethodSet(dict),
			List:  exec.NewMethodSet(list),
		},
	}
}

// render is the state of one rendering, shared by the functions it gives the
// template.
type render struct {
	out      strings.Builder
	limit    int
	raised   *RaiseError
	rangeSum int
	overflow bool
}

var errOutputLimit = errors.New("output limit reached")

// Write collects the output and stops the rendering past the limit.
func (r *render) Write(p []byte) (int, error) {
	if r.out.Len()+len(p) > r.limit {
		r.overflow = true
		return 0, errOutputLimit
	}
	return r.out.Write(p)
}

// raiseException is the template's raise_exception(message).
func (r *render) raiseException(args *exec.VarArgs) *exec.Value {
	msg := ""
	if len(args.Args) > 0 {
		msg = args.Args[0].String()
	}
	if r.raised == nil {
		r.raised = &RaiseError{Message: msg}
	}
	return exec.AsValue(r.raised)
}

// rangeFunc is Python's range() with the sandbox's MAX_RANGE, returning a list.
func (r *render) rangeFunc(args *exec.VarArgs) *exec.Value {
	var start, stop, step = 0, 0, 1
	for _, a := range args.Args {
		if !a.IsInteger() {
			return exec.AsValue(fmt.Errorf("range() takes integers, not %q", a.String()))
		}
	}
	switch len(args.Args) {
	case 1:
		stop = args.Args[0].Integer()
	case 2:
		start, stop = args.Args[0].Integer(), args.Args[1].Integer()
	case 3:
		start, stop, step = args.Args[0].Integer(), args.Args[1].Integer(), args.Args[2].Integer()
	default:
		return exec.AsValue(fmt.Errorf("range() takes 1 to 3 arguments, got %d", len(args.Args)))
	}
	if step == 0 {
		return exec.AsValue(errors.New("range() arg 3 must not be zero"))
	}
	n := 0
	if step > 0 && stop > start {
		n = (stop - start + step - 1) / step
	} else if step < 0 && start > stop {
		n = (start - stop - step - 1) / -step
	}
	if n > maxRange || n < 0 {
		return exec.AsValue(fmt.Errorf("range too big: the sandbox blocks ranges larger than %d", maxRange))
	}
	r.rangeSum += n
	if r.rangeSum > maxRangeTotal {
		return exec.AsValue(fmt.Errorf("range() calls of one rendering produced more than %d numbers", maxRangeTotal))
	}
	out := make([]any, n)
	for i := range out {
		out[i] = start + i*step
	}
	return exec.AsValue(out)
}

// filterToJSON is transformers' tojson: json.dumps(x, ensure_ascii=False,
// indent=None, separators=None, sort_keys=False), without HTML escaping.
func filterToJSON(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	opts := jsonOptions{itemSep: ", ", keySep: ": "}
	positional := []string{"ensure_ascii", "indent", "separators", "sort_keys"}
	if len(params.Args) > len(positional) {
		return exec.AsValue(fmt.Errorf("tojson takes at most %d arguments", len(positional)))
	}
	args := map[string]*exec.Value{}
	for i, a := range params.Args {
		args[positional[i]] = a
	}
	for k, v := range params.KwArgs {
		if !slices.Contains(positional, k) {
			return exec.AsValue(fmt.Errorf("tojson got an unexpected keyword argument %q", k))
		}
		args[k] = v
	}
	if v, ok := args["ensure_ascii"]; ok {
		opts.ensureASCII = v.IsTrue()
	}
	if v, ok := args["sort_keys"]; ok {
		opts.sortKeys = v.IsTrue()
	}
	if v, ok := args["indent"]; ok && !v.IsNil() {
		opts.hasIndent = true
		switch {
		case v.IsString():
			opts.indent = v.String()
		case v.IsInteger():
			opts.indent = strings.Repeat(" ", max(0, min(v.Integer(), 64)))
		default:
			return exec.AsValue(fmt.Errorf("tojson: indent must be an integer or a string"))
		}
		// json.dumps drops the space after the comma when it indents.
		opts.itemSep = ","
	}
	if v, ok := args["separators"]; ok && !v.IsNil() {
		if !v.IsList() || v.Len() != 2 || !v.Index(0).IsString() || !v.Index(1).IsString() {
			return exec.AsValue(fmt.Errorf("tojson: separators must be a pair of strings"))
		}
		opts.itemSep, opts.keySep = v.Index(0).String(), v.Index(1).String()
	}
	var b strings.Builder
	if err := writeJSON(&b, in, &opts, 0, maxValueOutput); err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(b.String())
}

// maxValueOutput bounds the text one filter call may build.
const maxValueOutput = 64 << 20

// filterReverse reverses a string or a sequence (the engine's own sorts it).
func filterReverse(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if in.IsString() {
		r := []rune(in.String())
		slices.Reverse(r)
		return exec.AsValue(string(r))
	}
	if in.IsDict() {
		keys := []any{}
		for _, p := range dictPairs(in) {
			keys = append(keys, p.Key)
		}
		slices.Reverse(keys)
		return exec.AsValue(keys)
	}
	if !in.IsList() {
		return exec.AsValue(fmt.Errorf("reverse: %s is not reversible", in.String()))
	}
	out := make([]any, in.Len())
	for i := range out {
		out[len(out)-1-i] = in.Index(i)
	}
	return exec.AsValue(out)
}

// filterItems lists a mapping's (key, value) pairs in its own order.
func filterItems(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if in.IsNil() {
		return exec.AsValue([]any{})
	}
	if !in.IsDict() {
		return exec.AsValue(errors.New("items: can only get item pairs from a mapping"))
	}
	out := []any{}
	for _, p := range dictPairs(in) {
		out = append(out, []any{p.Key, p.Value})
	}
	return exec.AsValue(out)
}

// filterDictSort is Jinja's dictsort(case_sensitive=False, by='key', reverse=False).
func filterDictSort(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if !in.IsDict() {
		return exec.AsValue(errors.New("dictsort: can only sort a mapping"))
	}
	kw := maps.Clone(params.KwArgs)
	for i, name := range []string{"case_sensitive", "by", "reverse"} {
		if i < len(params.Args) {
			kw[name] = params.Args[i]
		}
	}
	caseSensitive := kw["case_sensitive"] != nil && kw["case_sensitive"].IsTrue()
	reverse := kw["reverse"] != nil && kw["reverse"].IsTrue()
	byValue := false
	if by := kw["by"]; by != nil {
		switch by.String() {
		case "key":
		case "value":
			byValue = true
		default:
			return exec.AsValue(errors.New("dictsort: you can only sort by either 'key' or 'value'"))
		}
	}
	pairs := slices.Clone(dictPairs(in))
	sortKey := func(p *exec.Pair) *exec.Value {
		v := p.Key
		if byValue {
			v = p.Value
		}
		if !caseSensitive && v.IsString() {
			return exec.AsValue(strings.ToLower(v.String()))
		}
		return v
	}
	slices.SortStableFunc(pairs, func(a, b *exec.Pair) int {
		x, y := sortKey(a), sortKey(b)
		c := compareValues(x, y)
		if reverse {
			return -c
		}
		return c
	})
	out := make([]any, len(pairs))
	for i, p := range pairs {
		out[i] = []any{p.Key, p.Value}
	}
	return exec.AsValue(out)
}

// compareValues orders numbers by value and everything else by its text.
func compareValues(a, b *exec.Value) int {
	if a.IsNumber() && b.IsNumber() {
		x, y := a.Float(), b.Float()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(a.String(), b.String())
}

// stripMethod is str.strip / lstrip / rstrip: without an argument (or with
// None) it strips whitespace, else the characters of its argument.
func stripMethod(left, right bool) exec.Method[string] {
	return func(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
		if len(args.Args) > 1 || len(args.KwArgs) > 0 {
			return nil, errors.New("strip takes at most 1 argument")
		}
		cut := unicode.IsSpace
		if len(args.Args) == 1 && !args.Args[0].IsNil() {
			if !args.Args[0].IsString() {
				return nil, errors.New("strip arg must be None or str")
			}
			chars := args.Args[0].String()
			cut = func(r rune) bool { return strings.ContainsRune(chars, r) }
		}
		if left {
			self = strings.TrimLeftFunc(self, cut)
		}
		if right {
			self = strings.TrimRightFunc(self, cut)
		}
		return self, nil
	}
}

// replaceMethod is str.replace(old, new, count=-1).
func replaceMethod(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
	if len(args.Args) < 2 || len(args.Args) > 3 || len(args.KwArgs) > 0 {
		return nil, errors.New("replace takes 2 or 3 positional arguments")
	}
	if !args.Args[0].IsString() || !args.Args[1].IsString() {
		return nil, errors.New("replace: old and new must be strings")
	}
	n := -1
	if len(args.Args) == 3 {
		if !args.Args[2].IsInteger() {
			return nil, errors.New("replace: count must be an integer")
		}
		n = args.Args[2].Integer()
	}
	return strings.Replace(self, args.Args[0].String(), args.Args[1].String(), n), nil
}

// splitMethod is str.split(sep=None, maxsplit=-1): without a separator it
// splits on runs of whitespace and drops empty strings.
func splitMethod(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
	var sep *exec.Value
	maxSplit := -1
	for i, a := range args.Args {
		switch i {
		case 0:
			sep = a
		case 1:
			maxSplit = a.Integer()
		default:
			return nil, errors.New("split takes at most 2 arguments")
		}
	}
	for k, a := range args.KwArgs {
		switch k {
		case "sep":
			sep = a
		case "maxsplit":
			maxSplit = a.Integer()
		default:
			return nil, fmt.Errorf("split got an unexpected keyword argument %q", k)
		}
	}
	var parts []string
	if sep == nil || sep.IsNil() {
		rest := strings.TrimLeftFunc(self, unicode.IsSpace)
		for rest != "" {
			if maxSplit >= 0 && len(parts) == maxSplit {
				parts = append(parts, rest)
				break
			}
			end := strings.IndexFunc(rest, unicode.IsSpace)
			if end < 0 {
				parts = append(parts, rest)
				break
			}
			parts = append(parts, rest[:end])
			rest = strings.TrimLeftFunc(rest[end:], unicode.IsSpace)
		}
	} else {
		if !sep.IsString() || sep.String() == "" {
			return nil, errors.New("split: the separator must be a non-empty string")
		}
		n := -1
		if maxSplit >= 0 {
			n = maxSplit + 1
		}
		parts = strings.SplitN(self, sep.String(), n)
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

// dictMethod builds dict.items / keys / values that keep the dict's order.
func dictMethod(pick func(*exec.Pair) any) exec.Method[map[string]any] {
	return func(_ map[string]any, self *exec.Value, args *exec.VarArgs) (any, error) {
		if len(args.Args) > 0 || len(args.KwArgs) > 0 {
			return nil, errors.New("takes no arguments")
		}
		out := []any{}
		for _, p := range dictPairs(self) {
			out = append(out, pick(p))
		}
		return out, nil
	}
}

// generation is transformers' {% generation %}...{% endgeneration %}: it marks
// the assistant's part for return_assistant_tokens_mask and renders its body
// unchanged.
type generation struct {
	location *tokens.Token
	wrapper  *nodes.Wrapper
}

func (g *generation) Position() *tokens.Token { return g.location }
func (g *generation) String() string          { return "generation block" }
func (g *generation) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	return r.ExecuteWrapper(g.wrapper)
}

func generationParser(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	if !args.End() {
		return nil, args.Error("generation takes no arguments", args.Current())
	}
	location := p.Current()
	wrapper, end, err := p.WrapUntil("endgeneration")
	if err != nil {
		return nil, err
	}
	if !end.End() {
		return nil, end.Error("endgeneration takes no arguments", end.Current())
	}
	return &generation{location: location, wrapper: wrapper}, nil
}
