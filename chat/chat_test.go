package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Template {
	t.Helper()
	tmpl, err := Parse("test", src)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func mustRender(t *testing.T, tmpl *Template, msgs []Message, opts Options) string {
	t.Helper()
	got, err := tmpl.Render(msgs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestSyntaxErrorSaysWhere(t *testing.T) {
	for src, where := range map[string]string{
		"line one\n{% if x %}\nno end": "Line: 3",           // parser error
		"line one\nline two\n{{ x }\n": "at line 3, column", // lexer error
		"{% for %}":                    `"for"`,             // some argument errors name only the statement
	} {
		_, err := Parse("broken", src)
		if err == nil {
			t.Fatalf("%q: no error", src)
		}
		msg := err.Error()
		if !strings.Contains(msg, `"broken"`) || !strings.Contains(msg, "syntax error") || !strings.Contains(msg, where) {
			t.Fatalf("%q: error %q does not name the template and %q", src, msg, where)
		}
		if strings.Contains(msg, "line one") {
			t.Fatalf("error %q repeats the template source", msg)
		}
	}
}

func TestRaiseException(t *testing.T) {
	tmpl := mustParse(t, "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}")
	got := mustRender(t, tmpl, []Message{{Role: "user", Content: "hi"}}, Options{})
	if got != "hi" {
		t.Fatalf("got %q", got)
	}
	_, err := tmpl.Render([]Message{{Role: "system", Content: "x"}}, Options{})
	var re *RaiseError
	if !errors.As(err, &re) || re.Message != "System role not supported" || re.Template != "test" {
		t.Fatalf("got %v, want a RaiseError with the template's message", err)
	}
}

func TestOutputLimit(t *testing.T) {
	tmpl := mustParse(t, "{% for i in range(100000) %}{{ messages[0].content }}{% endfor %}")
	msgs := []Message{{Role: "user", Content: strings.Repeat("x", 100)}}
	_, err := tmpl.Render(msgs, Options{MaxOutput: 1 << 20})
	if !errors.Is(err, ErrOutputLimit) {
		t.Fatalf("got %v, want ErrOutputLimit", err)
	}
	// The same template within the default limit renders everything.
	got := mustRender(t, tmpl, msgs, Options{})
	if len(got) != 100000*100 {
		t.Fatalf("got %d bytes", len(got))
	}
}

func TestRangeBounds(t *testing.T) {
	for _, src := range []string{
		"{% for i in range(100001) %}{% endfor %}",
		"{% for i in range(0, 10000000, 2) %}{% endfor %}",
		"{% set a = range(100000) %}{% set b = range(100000) %}{% set c = range(1) %}",
		"{% for i in range(10) %}{% for j in range(30000) %}{% endfor %}{% endfor %}",
	} {
		start := time.Now()
		_, err := mustParse(t, src).Render(nil, Options{})
		if err == nil || !strings.Contains(err.Error(), "range") {
			t.Fatalf("%s: got %v, want a range error", src, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%s: took %v", src, d)
		}
	}
	got := mustRender(t, mustParse(t, "{{ range(3) | list }} {{ range(5, 0, -2) | join(',') }} {{ range(0) | length }}"), nil, Options{})
	if got != "[0, 1, 2] 5,3,1 0" {
		t.Fatalf("got %q", got)
	}
}

func TestRecursiveMacrosRefused(t *testing.T) {
	for _, src := range []string{
		"{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
		"{% macro a() %}{% for x in [1] %}{% if x %}{{ b() }}{% endif %}{% endfor %}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
	} {
		_, err := Parse("rec", src)
		if err == nil || !strings.Contains(err.Error(), "recursive macro") {
			t.Fatalf("%s: got %v, want a recursion error", src, err)
		}
	}
	tmpl := mustParse(t, "{% macro b(x) %}[{{ x }}]{% endmacro %}{% macro a(x) %}{{ b(x) }}{{ b(x) }}{% endmacro %}{{ a(1) }}")
	if got := mustRender(t, tmpl, nil, Options{}); got != "[1][1]" {
		t.Fatalf("got %q", got)
	}
}

func TestNoOtherTemplates(t *testing.T) {
	for _, src := range []string{
		"{% include '/etc/passwd' %}",
		"{% import 'x.jinja' as x %}",
		"{% extends 'base' %}",
		"{% from 'x' import y %}",
	} {
		if _, err := Parse("t", src); err == nil {
			t.Fatalf("%s: parsed", src)
		}
	}
}

func TestKeyOrder(t *testing.T) {
	tmpl := mustParse(t, "{{ messages[0].tool_calls | tojson }}|{{ tools[0] | tojson }}|{% for k, v in tools[1].items() %}{{ k }}{% endfor %}")
	type params struct {
		Zeta  string `json:"zeta"`
		Alpha int    `json:"alpha"`
	}
	msgs := []Message{{Role: "assistant", Fields: map[string]any{
		"tool_calls": []any{map[string]any{"name": "f", "arguments": json.RawMessage(`{"z": 1, "a": [true, null]}`)}},
	}}}
	got := mustRender(t, tmpl, msgs, Options{Tools: []any{params{Zeta: "z", Alpha: 2}, map[string]any{"b": 1, "a": 2}}})
	// The map is read in sorted order; JSON and structs keep theirs.
	want := `[{"arguments": {"z": 1, "a": [true, null]}, "name": "f"}]|{"zeta": "z", "alpha": 2}|ab`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestMessages(t *testing.T) {
	msgs, err := MessagesFromJSON([]byte(`[
		{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
		{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "look", "arguments": {"b": 2, "a": 1}}}]},
		{"role": "tool", "content": "a cat", "tool_call_id": "c1"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := mustParse(t, `{% for m in messages %}{{ m.role }}:{% if m.content is string %}{{ m.content }}{% elif m.content is none %}<none>{% else %}{% for p in m.content %}{{ p.text if p.type == 'text' else '<' ~ p.type ~ '>' }}{% endfor %}{% endif %}{% if m.tool_calls %}{{ m.tool_calls[0].function.arguments | tojson }}{% endif %}{{ m.tool_call_id | default('') }};{% endfor %}`)
	got := mustRender(t, tmpl, msgs, Options{})
	want := `user:<image>What is this?;assistant:<none>{"b": 2, "a": 1};tool:a catc1;`
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if _, err := MessagesFromJSON([]byte(`{"role": "user"}`)); err == nil {
		t.Fatal("an object is not a list of messages")
	}
}

func TestVariablesPrecedence(t *testing.T) {
	tmpl, err := FromTokenizerConfig([]byte(`{"chat_template": "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ enable_thinking }}|{{ add_generation_prompt }}", "bos_token": "<s>", "eos_token": {"content": "</s>", "lstrip": false}, "pad_token": null}`), "")
	if err != nil {
		t.Fatal(err)
	}
	got := mustRender(t, tmpl, nil, Options{})
	if got != "<s>|</s>||False" && got != "<s>|</s>||" {
		// enable_thinking is undefined: empty, like jinja2.
		if got != "<s>|</s>|||False" {
			t.Fatalf("got %q", got)
		}
	}
	got = mustRender(t, tmpl, nil, Options{
		AddGenerationPrompt: true,
		SpecialTokens:       map[string]string{"bos_token": "<B>"},
		Vars:                map[string]any{"eos_token": "<E>", "enable_thinking": false},
	})
	if got != "<B>|<E>||False|True" {
		t.Fatalf("got %q", got)
	}
}

func TestFromTokenizerConfig(t *testing.T) {
	list := `{"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}], "additional_special_tokens": ["<a>", {"content": "<b>"}]}`
	for _, c := range []struct{ config, name, want, err string }{
		{`{"chat_template": "S"}`, "", "S", ""},
		{list, "", "D", ""},
		{list, "tool_use", "T", ""},
		{list, "rag", "", "no chat template named \"rag\": it has default, tool_use"},
		{`{"chat_template": [{"name": "a", "template": "A"}, {"name": "b", "template": "B"}]}`, "", "", "none is named \"default\": choose one of a, b"},
		{`{"bos_token": "<s>"}`, "", "", "no chat template"},
		{`{"chat_template": 3}`, "", "", "neither a string nor a list"},
		{`{"chat_template": "x", "bos_token": 1}`, "", "", "bos_token"},
		{`not json`, "", "", "tokenizer_config.json"},
		{`{"chat_template": "{% if %}"}`, "", "", "syntax error"},
	} {
		tmpl, err := FromTokenizerConfig([]byte(c.config), c.name)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("%s %q: got %v, want an error with %q", c.config, c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s %q: %v", c.config, c.name, err)
		}
		if got := mustRender(t, tmpl, nil, Options{}); got != c.want {
			t.Fatalf("%s %q: got %q, want %q", c.config, c.name, got, c.want)
		}
	}
	tmpl, err := FromTokenizerConfig([]byte(list), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tmpl.SpecialTokens()["additional_special_tokens"]); got != "[<a> <b>]" {
		t.Fatalf("additional_special_tokens: %s", got)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tokenizer_config.json", `{"chat_template": "config {{ eos_token }}", "eos_token": "</s>"}`)
	tmpl, err := LoadDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRender(t, tmpl, nil, Options{}); got != "config </s>" {
		t.Fatalf("got %q", got)
	}
	write("chat_template.jinja", "file {{ eos_token }}\n")
	write("additional_chat_templates/tool_use.jinja", "tools {{ tools | length }}")
	for name, want := range map[string]string{"": "file </s>", "tool_use": "tools 1"} {
		tmpl, err := LoadDir(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustRender(t, tmpl, nil, Options{Tools: []any{map[string]any{}}}); got != want {
			t.Fatalf("%q: got %q, want %q", name, got, want)
		}
	}
	if _, err := LoadDir(filepath.Join(dir, "missing"), ""); err == nil {
		t.Fatal("a folder without templates loaded")
	}
}

func TestConcurrentRender(t *testing.T) {
	tmpl := mustParse(t, "{% macro role(r) %}<{{ r }}>{% endmacro %}{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ role(m.role) }}{{ m.content | trim }}{% endfor %}{{ ns.n }}{{ strftime_now('%Y') }}{% if add_generation_prompt %}<assistant>{% endif %}")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				n := (g+i)%5 + 1
				msgs := make([]Message, n)
				want := ""
				for j := range msgs {
					msgs[j] = Message{Role: "user", Content: fmt.Sprintf(" %d-%d ", g, j)}
					want += fmt.Sprintf("<user>%d-%d", g, j)
				}
				year := 2000 + g
				want += fmt.Sprintf("%d%d", n, year)
				if i%2 == 0 {
					want += "<assistant>"
				}
				got, err := tmpl.Render(msgs, Options{AddGenerationPrompt: i%2 == 0, Now: func() time.Time { return time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC) }})
				if err != nil || got != want {
					errs <- fmt.Errorf("goroutine %d: got %q, %v; want %q", g, got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestStrftime(t *testing.T) {
	tm := time.Date(2025, 3, 4, 15, 6, 7, 890000000, time.FixedZone("CET", 3600))
	for format, want := range map[string]string{
		"%d %b %Y":        "04 Mar 2025",
		"%A %B %-d, %Y":   "Tuesday March 4, 2025",
		"%H:%M:%S.%f %z":  "15:06:07.890000 +0100",
		"%I%p %j %y %a":   "03PM 063 25 Tue",
		"%F %T %% %Q":     "2025-03-04 15:06:07 % %Q",
		"%e|%Z|trailing%": " 4|CET|trailing%",
	} {
		if got := strftime(format, tm); got != want {
			t.Errorf("strftime(%q) = %q, want %q", format, got, want)
		}
	}
}

func TestPyFloat(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", 0.5: "0.5", 1e-7: "1e-07", 1e20: "1e+20", 1.5e16: "1.5e+16", 1e16: "1e+16",
		123456789012345.6: "123456789012345.6", 0.0001: "0.0001", 0.00001: "1e-05", -2.5: "-2.5", 1e15: "1000000000000000.0",
	} {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestDeepValuesRefused(t *testing.T) {
	v := any("leaf")
	for range maxDepth + 10 {
		v = []any{v}
	}
	_, err := mustParse(t, "{{ tools | length }}").Render(nil, Options{Tools: []any{v}})
	if err == nil || !strings.Contains(err.Error(), "levels deep") {
		t.Fatalf("got %v", err)
	}
	deep := strings.Repeat("[", maxDepth+10) + strings.Repeat("]", maxDepth+10)
	_, err = mustParse(t, "{{ tools | length }}").Render(nil, Options{Tools: []any{json.RawMessage(deep)}})
	if err == nil || !strings.Contains(err.Error(), "levels deep") {
		t.Fatalf("got %v", err)
	}
	if _, err := mustParse(t, "x").Render(nil, Options{Vars: map[string]any{"bad": json.RawMessage(`{"a": }`)}}); err == nil {
		t.Fatal("invalid JSON accepted")
	}
	if _, err := mustParse(t, "x").Render(nil, Options{Vars: map[string]any{"ch": make(chan int)}}); err == nil {
		t.Fatal("a channel accepted")
	}
}

func TestGenerationBlock(t *testing.T) {
	tmpl := mustParse(t, "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}")
	got := mustRender(t, tmpl, []Message{{Role: "user", Content: "q"}, {Role: "assistant", Content: "a"}}, Options{})
	if got != "q|a|" {
		t.Fatalf("got %q", got)
	}
	if _, err := Parse("t", "{% generation %}x"); err == nil {
		t.Fatal("an unclosed generation block parsed")
	}
}
