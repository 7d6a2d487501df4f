package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// referenceNow is the clock render_reference.py renders with.
var referenceNow = time.Date(2024, 7, 26, 9, 5, 3, 0, time.UTC)

type refTemplate struct {
	Source        string            `json:"source"`
	SpecialTokens map[string]string `json:"special_tokens"`
	Template      string            `json:"template"`
}

type refCase struct {
	Name                string                     `json:"name"`
	Template            *string                    `json:"template"`
	Source              string                     `json:"source"`
	Messages            json.RawMessage            `json:"messages"`
	AddGenerationPrompt bool                       `json:"add_generation_prompt"`
	Tools               []json.RawMessage          `json:"tools"`
	Documents           []json.RawMessage          `json:"documents"`
	Vars                map[string]json.RawMessage `json:"vars"`
	SpecialTokens       map[string]string          `json:"special_tokens"`
	Rendered            *string                    `json:"rendered"`
	Error               string                     `json:"error"`
	ErrorKind           string                     `json:"error_kind"`
}

func loadReference(t *testing.T) (map[string]refTemplate, []refCase) {
	t.Helper()
	var templates map[string]refTemplate
	var cases []refCase
	for file, into := range map[string]any{"testdata/templates.json": &templates, "testdata/cases.json": &cases} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return templates, cases
}

func rawList(l []json.RawMessage) []any {
	if l == nil {
		return nil
	}
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = v
	}
	return out
}

// TestReferenceCases renders every case of testdata/cases.json (real model
// templates and one-feature templates) and compares with what Python's jinja2,
// configured as transformers configures it, gave (render_reference.py).
func TestReferenceCases(t *testing.T) {
	templates, cases := loadReference(t)
	if len(cases) < 50 {
		t.Fatalf("only %d cases", len(cases))
	}
	parsed := map[string]*Template{}
	for name, rt := range templates {
		tmpl, err := Parse(name, rt.Template)
		if err != nil {
			t.Fatalf("Parse(%s): %v", name, err)
		}
		parsed[name] = tmpl
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			problem := checkCase(t, c, templates, parsed)
			reason, known := knownDifferences[c.Name]
			switch {
			case known && problem == "":
				t.Fatalf("renders as jinja2 does now: drop it from knownDifferences (%s)", reason)
			case known:
				t.Skipf("known difference from jinja2 (%s): %s", reason, problem)
			case problem != "":
				t.Fatal(problem)
			}
		})
	}
}

// checkCase renders one case and says how the result differs from jinja2's,
// or returns "" when it is the same.
func checkCase(t *testing.T, c refCase, templates map[string]refTemplate, parsed map[string]*Template) string {
	opts := Options{
		AddGenerationPrompt: c.AddGenerationPrompt,
		Tools:               rawList(c.Tools),
		Documents:           rawList(c.Documents),
		SpecialTokens:       map[string]string{},
		Vars:                map[string]any{},
		Now:                 func() time.Time { return referenceNow },
	}
	var tmpl *Template
	if c.Template != nil {
		tmpl = parsed[*c.Template]
		for k, v := range templates[*c.Template].SpecialTokens {
			opts.SpecialTokens[k] = v
		}
	} else {
		var err error
		tmpl, err = Parse(c.Name, c.Source)
		switch {
		case c.ErrorKind == "syntax" && err == nil:
			return "Parse succeeded, jinja2 says " + c.Error
		case c.ErrorKind == "syntax":
			t.Logf("syntax error as expected: %v", err)
			return ""
		case err != nil:
			return "Parse: " + err.Error()
		}
	}
	for k, v := range c.SpecialTokens {
		opts.SpecialTokens[k] = v
	}
	for k, v := range c.Vars {
		opts.Vars[k] = v
	}
	msgs, err := MessagesFromJSON(c.Messages)
	if err != nil {
		return err.Error()
	}
	got, err := tmpl.Render(msgs, opts)
	switch {
	case c.Rendered != nil && err != nil:
		return "Render: " + err.Error()
	case c.Rendered != nil && got != *c.Rendered:
		return fmt.Sprintf("rendered text differs\n got: %q\nwant: %q", got, *c.Rendered)
	case c.Rendered == nil && err == nil:
		return fmt.Sprintf("Render gave %q, jinja2 fails with %s", got, c.Error)
	case c.ErrorKind == "raise":
		var re *RaiseError
		if !errors.As(err, &re) || re.Message != c.Error || !strings.Contains(err.Error(), c.Error) {
			return fmt.Sprintf("error %v, want raise_exception(%q)", err, c.Error)
		}
	case c.Rendered == nil:
		t.Logf("fails as jinja2 does: %v (jinja2: %s)", err, c.Error)
	}
	return ""
}

// knownDifferences are the reference cases the engine renders differently from
// jinja2, with the reason; see README.md.
var knownDifferences = map[string]string{
	"inline/tojson-bigint":     "integers beyond int64 become floats",
	"inline/print-none":        "None prints as an empty string",
	"inline/print-tuple":       "tuples print as lists",
	"inline/int-power":         "int ** int gives a float",
	"inline/floordiv-negative": "// truncates toward zero instead of flooring",
	"inline/set-tuple-unpack":  "{% set a, b = ... %} is a syntax error",
	"inline/none-is-defined":   "None is not defined (the engine has no undefined distinct from None)",
}
