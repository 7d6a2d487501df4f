package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func testCommand() *Command {
	return &Command{
		Name:         "demo",
		Summary:      "does a demo",
		Synopsis:     "[TEXT...]",
		Details:      "Input: one item per line.",
		DefaultModel: "org/demo",
	}
}

func TestParseHelpGoesToStdoutAndExitsZero(t *testing.T) {
	c := testCommand()
	fs := c.NewFlagSet()
	model := c.ModelFlag(fs)
	var out, errb bytes.Buffer
	ok, code := c.Parse(fs, []string{"-h"}, &out, &errb)
	if ok || code != ExitOK {
		t.Fatalf("Parse(-h) = %v, %d; want false, 0", ok, code)
	}
	for _, want := range []string{"demo: does a demo", "demo [flags] [TEXT...]", "-model", "org/demo", "Input: one item per line."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	if errb.Len() != 0 {
		t.Errorf("help wrote to stderr: %q", errb.String())
	}
	if *model != "org/demo" {
		t.Errorf("default model = %q", *model)
	}
}

func TestParseBadFlagIsOneLine(t *testing.T) {
	c := testCommand()
	fs := c.NewFlagSet()
	var out, errb bytes.Buffer
	ok, code := c.Parse(fs, []string{"-nope"}, &out, &errb)
	if ok || code != ExitUsage {
		t.Fatalf("Parse(-nope) = %v, %d; want false, %d", ok, code, ExitUsage)
	}
	msg := errb.String()
	if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "demo: ") || !strings.Contains(msg, "-nope") {
		t.Errorf("stderr = %q; want one line naming the flag", msg)
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q; want nothing", out.String())
	}
}

func TestFailFoldsLines(t *testing.T) {
	c := testCommand()
	var errb bytes.Buffer
	if code := c.Fail(&errb, errors.New("first\nsecond\r\nthird\n")); code != ExitError {
		t.Fatalf("code = %d", code)
	}
	if got, want := errb.String(), "demo: first; second; third\n"; got != want {
		t.Errorf("Fail wrote %q, want %q", got, want)
	}
}

func TestInputs(t *testing.T) {
	ctx := context.Background()
	got, err := Inputs(ctx, []string{"a b", "c"}, strings.NewReader("ignored\n"))
	if err != nil || !reflect.DeepEqual(got, []string{"a b", "c"}) {
		t.Errorf("args: got %q, %v", got, err)
	}
	got, err = Inputs(ctx, nil, strings.NewReader("one\r\n\n  \ntwo words\nthree"))
	if err != nil || !reflect.DeepEqual(got, []string{"one", "two words", "three"}) {
		t.Errorf("stdin: got %q, %v", got, err)
	}
	if _, err := Inputs(ctx, nil, nil); err == nil {
		t.Error("nil stdin: want an error")
	}
}

func TestLinesTooLongNamesLine(t *testing.T) {
	in := "ok\n" + strings.Repeat("x", MaxLineBytes+10) + "\n"
	err := Lines(context.Background(), strings.NewReader(in), func(int, string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v; want it to name line 2", err)
	}
}

func TestLinesStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Lines(ctx, strings.NewReader("a\nb\nc\n"), func(int, string) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Errorf("n = %d, err = %v; want 1, context.Canceled", n, err)
	}
}

func TestResolveModel(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "config.json")
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	fetched := ""
	fetch := func(_ context.Context, id string) (string, error) {
		fetched = id
		if id == "org/ok" {
			return dir, nil
		}
		return "", errors.New("dial tcp: no route to host")
	}

	if got, err := resolveModel(ctx, dir, fetch); err != nil || got != dir || fetched != "" {
		t.Errorf("local folder: got %q, %v (fetched %q)", got, err, fetched)
	}
	if got, err := resolveModel(ctx, "org/ok", fetch); err != nil || got != dir || fetched != "org/ok" {
		t.Errorf("repo id: got %q, %v (fetched %q)", got, err, fetched)
	}
	cases := []struct{ model, want string }{
		{"", "-model is empty"},
		{file, "is a file"},
		{"./missing", "does not exist"},
		{filepath.Join(dir, "missing"), "does not exist"},
		{"org/down", "pass -model with a local model folder"},
	}
	for _, c := range cases {
		_, err := resolveModel(ctx, c.model, fetch)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("resolveModel(%q) err = %v; want it to contain %q", c.model, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("resolveModel(%q) err has a newline: %q", c.model, err)
		}
	}
}

func TestResolveModelOfflineHub(t *testing.T) {
	// Offline with an empty cache: the Hub path is taken but never dials.
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	_, err := ResolveModel(context.Background(), "sentence-transformers/all-MiniLM-L6-v2")
	if err == nil || !strings.Contains(err.Error(), "all-MiniLM-L6-v2") || !strings.Contains(err.Error(), "-model") {
		t.Errorf("err = %v; want it to name the repo and -model", err)
	}
}

func TestJSONLines(t *testing.T) {
	var b bytes.Buffer
	j := NewJSONLines(&b)
	if err := j.Write(map[string]string{"text": "<a&b>"}); err != nil {
		t.Fatal(err)
	}
	if err := j.Write([]int{1, 2}); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "{\"text\":\"<a&b>\"}\n[1,2]\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestBatches(t *testing.T) {
	ctx := context.Background()
	var got [][]string
	collect := func(b []string) error {
		got = append(got, append([]string(nil), b...))
		return nil
	}
	if err := Batches(ctx, nil, strings.NewReader("a\nb\n\nc\nd\ne\n"), 2, collect); err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"a", "b"}, {"c", "d"}, {"e"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("stdin batches %q, want %q", got, want)
	}
	got = nil
	if err := Batches(ctx, []string{"x", "y"}, nil, 5, collect); err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"x", "y"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("arg batches %q, want %q", got, want)
	}
	boom := errors.New("boom")
	calls := 0
	err := Batches(ctx, []string{"x", "y", "z", "w", "v"}, nil, 2, func([]string) error {
		if calls++; calls == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "inputs 3-4") {
		t.Errorf("err = %v, want boom naming inputs 3-4", err)
	}
	if err := Batches(ctx, []string{"x"}, nil, 0, collect); err == nil {
		t.Error("size 0: want an error")
	}
}
