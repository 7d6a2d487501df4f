// Package chat renders chat templates the way transformers'
// tokenizer.apply_chat_template(messages, tokenize=False) does.
//
// A chat template is a Jinja template shipped with a model (tokenizer_config.json's
// "chat_template", or chat_template.jinja). It is compiled once by [Parse] or
// [FromTokenizerConfig] and rendered by [Template.Render] with the conversation,
// the tokenizer's special tokens, add_generation_prompt, tools, documents and any
// other variables the template reads (enable_thinking, date_string, ...).
//
// The Jinja environment is the one transformers builds: a sandbox with
// trim_blocks and lstrip_blocks on, the loop controls (break, continue), the
// {% generation %} block, raise_exception(message), strftime_now(format) and a
// tojson filter that is json.dumps(x, ensure_ascii=False, indent, separators,
// sort_keys) with Python's number and string formatting. The engine underneath
// is github.com/nikolalohinski/gonja/v2; the differences from Python's jinja2
// that remain are listed in this package's README.md.
//
// Key order matters to the output (tojson, items()): values decoded from JSON
// (json.RawMessage, or structs, which are passed through encoding/json) keep
// their order, Go maps are read in sorted key order.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// DefaultMaxOutput is the output limit of a rendering when Options.MaxOutput
// is 0: 16 MiB, far above any prompt a model takes.
const DefaultMaxOutput = 16 << 20

// Message is one turn of a conversation, as a dict with "role" and "content"
// keys in the template. Fields holds any other key of the message (tool_calls,
// tool_call_id, name, reasoning_content, ...); a "content" or "role" entry in
// Fields replaces Content or Role, for content given as a list of parts
// ([]any of {"type": "text", "text": ...} maps) or as None (nil).
type Message struct {
	Role    string
	Content string
	Fields  map[string]any
}

// dict is the message as the template sees it: role, content, then the other
// fields in sorted order.
func (m Message) dict(depth int) (any, error) {
	d := &exec.Dict{Pairs: []*exec.Pair{}}
	add := func(k string, v any) error {
		c, err := convert(v, depth+1)
		if err != nil {
			return fmt.Errorf("message field %q: %w", k, err)
		}
		d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(c)})
		return nil
	}
	role, content := any(m.Role), any(m.Content)
	if v, ok := m.Fields["role"]; ok {
		role = v
	}
	if v, ok := m.Fields["content"]; ok {
		content = v
	}
	if err := add("role", role); err != nil {
		return nil, err
	}
	if err := add("content", content); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(m.Fields))
	for k := range m.Fields {
		if k != "role" && k != "content" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := add(k, m.Fields[k]); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// MessagesFromJSON decodes a JSON array of messages (the OpenAI chat format)
// keeping every field and the key order of nested objects such as tool call
// arguments.
func MessagesFromJSON(data []byte) ([]Message, error) {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("chat: messages: %w", err)
	}
	out := make([]Message, len(raw))
	for i, m := range raw {
		msg := Message{Fields: map[string]any{}}
		for k, v := range m {
			switch k {
			case "role":
				if err := json.Unmarshal(v, &msg.Role); err != nil {
					return nil, fmt.Errorf("chat: message %d: role: %w", i, err)
				}
			case "content":
				// A list of parts, or null (None), stays as it is.
				if string(v) == "null" || json.Unmarshal(v, &msg.Content) != nil {
					msg.Fields[k] = v
				}
			default:
				msg.Fields[k] = v
			}
		}
		out[i] = msg
	}
	return out, nil
}

// Options are the arguments of one rendering besides the messages.
type Options struct {
	// AddGenerationPrompt ends the prompt with the header of an assistant turn.
	AddGenerationPrompt bool
	// SpecialTokens (bos_token, eos_token, ...) override the template's own
	// (those FromTokenizerConfig read from the config).
	SpecialTokens map[string]string
	// Tools and Documents are passed as the variables tools and documents
	// (None when nil). Each element is usually a JSON-schema map, a struct or a
	// json.RawMessage.
	Tools, Documents []any
	// Vars are further variables (enable_thinking, date_string, ...); they
	// override the special tokens, as apply_chat_template's keyword arguments do.
	Vars map[string]any
	// Now is the clock of strftime_now; nil means time.Now.
	Now func() time.Time
	// MaxOutput bounds the rendered text in bytes; 0 means DefaultMaxOutput.
	MaxOutput int
}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	name    string
	source  string
	tmpl    *exec.Template
	special map[string]any
}

// RaiseError is the error Render returns when the template calls
// raise_exception(message), for example on roles that do not alternate.
type RaiseError struct {
	Template string // the template's name
	Message  string // the template's message
}

// Error names the template and gives its message.
func (e *RaiseError) Error() string {
	return fmt.Sprintf("chat template %q: %s", e.Template, e.Message)
}

// ErrOutputLimit is returned (wrapped) when a rendering exceeds its output limit.
var ErrOutputLimit = errors.New("chat: rendered text exceeds the output limit")

// templateKey is the single name the template is known by to the engine's
// loader; there is no other template to load.
const templateKey = "/chat_template"

// Parse compiles a chat template. name identifies it in errors (a model name,
// "default", "tool_use", ...). A syntax error says on which line it is.
func Parse(name, src string) (*Template, error) {
	loader, err := loaders.NewMemoryLoader(map[string]string{templateKey: src})
	if err != nil {
		return nil, fmt.Errorf("chat template %q: %w", name, err)
	}
	tmpl, err := func() (t *exec.Template, err error) {
		// The engine is third-party code: a panic on odd input becomes an error.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("the template engine failed: %v", r)
			}
		}()
		return exec.NewTemplate(templateKey, newConfig(), loader, environment)
	}()
	if err != nil {
		// The engine's message starts with the whole source; keep its cause.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		if strings.Contains(err.Error(), "(Line: 0 Col: 0") {
			if where := lexErrorLine(src); where != "" {
				err = fmt.Errorf("%w (%s)", err, where)
			}
		}
		return nil, fmt.Errorf("chat template %q: syntax error: %w", name, err)
	}
	if err := checkRecursion(tmpl.Root()); err != nil {
		return nil, fmt.Errorf("chat template %q: %w", name, err)
	}
	return &Template{name: name, source: src, tmpl: tmpl}, nil
}

// Name returns the template's name.
func (t *Template) Name() string { return t.name }

// Source returns the template's Jinja source.
func (t *Template) Source() string { return t.source }

// SpecialTokens returns the special tokens the template is rendered with by
// default (from tokenizer_config.json when the template came from there).
func (t *Template) SpecialTokens() map[string]any {
	out := make(map[string]any, len(t.special))
	for k, v := range t.special {
		out[k] = v
	}
	return out
}

// Render renders the conversation as apply_chat_template(messages,
// tokenize=False, add_generation_prompt=..., tools=..., documents=..., **vars)
// does.
func (t *Template) Render(messages []Message, opts Options) (string, error) {
	limit := opts.MaxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	r := &render{limit: limit}

	data := map[string]any{}
	for k, v := range t.special {
		data[k] = v
	}
	for k, v := range opts.SpecialTokens {
		data[k] = v
	}
	for k, v := range opts.Vars {
		c, err := convert(v, 0)
		if err != nil {
			return "", fmt.Errorf("chat template %q: variable %s: %w", t.name, k, err)
		}
		data[k] = c
	}
	msgs := make([]any, len(messages))
	for i, m := range messages {
		d, err := m.dict(0)
		if err != nil {
			return "", fmt.Errorf("chat template %q: message %d: %w", t.name, i, err)
		}
		msgs[i] = d
	}
	data["messages"] = msgs
	for name, list := range map[string][]any{"tools": opts.Tools, "documents": opts.Documents} {
		if list == nil {
			data[name] = nil
			continue
		}
		c, err := convert(list, 0)
		if err != nil {
			return "", fmt.Errorf("chat template %q: %s: %w", t.name, name, err)
		}
		data[name] = c
	}
	data["add_generation_prompt"] = opts.AddGenerationPrompt
	data["raise_exception"] = r.raiseException
	data["strftime_now"] = func(format string) string { return strftime(format, now()) }
	data["range"] = r.rangeFunc

	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("the template engine failed: %v", p)
			}
		}()
		return t.tmpl.Execute(r, exec.NewContext(data))
	}()
	switch {
	case r.raised != nil:
		r.raised.Template = t.name
		return "", r.raised
	case r.overflow:
		return "", fmt.Errorf("chat template %q: %w (%d bytes)", t.name, ErrOutputLimit, limit)
	case err != nil:
		return "", fmt.Errorf("chat template %q: %w", t.name, cleanError(err))
	}
	return r.out.String(), nil
}

// lexErrorLine says where the lexer stopped with an error, which the engine
// reports without a line ("Line: 0").
func lexErrorLine(src string) string {
	stream := tokens.LexAll(src, newConfig())
	for !stream.EOF() {
		if tok := stream.Current(); tok.Type == tokens.Error {
			pos := min(max(tok.Pos, 0), len(src))
			line := 1 + strings.Count(src[:pos], "\n")
			col := pos - strings.LastIndexByte(src[:pos], '\n')
			return fmt.Sprintf("at line %d, column %d", line, col)
		}
		stream.Next()
	}
	return ""
}

// cleanError drops the engine's "unable to execute template" prefix.
func cleanError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "unable to execute template: ")
	return errors.New(msg)
}

// checkRecursion refuses macros that call themselves, directly or through
// other macros: the engine runs them on the Go stack with no depth limit, so a
// recursion without end would crash the program instead of failing.
func checkRecursion(root *nodes.Template) error {
	calls := map[string][]string{}
	for name, m := range root.Macros {
		seen := map[string]bool{}
		walkCalls(m.Wrapper, func(callee string) {
			if _, ok := root.Macros[callee]; ok && !seen[callee] {
				seen[callee] = true
				calls[name] = append(calls[name], callee)
			}
		}, map[seenKey]bool{})
	}
	names := make([]string, 0, len(calls))
	for n := range calls {
		names = append(names, n)
	}
	slices.Sort(names)
	state := map[string]int{} // 1: on the current path, 2: done
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("recursive macro calls are not supported (%s)", strings.Join(append(path, n), " -> "))
		case 2:
			return nil
		}
		state[n] = 1
		for _, c := range calls[n] {
			if err := visit(c, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return err
		}
	}
	return nil
}
