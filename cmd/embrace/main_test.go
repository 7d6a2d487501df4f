package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
)

// runEmbrace runs the command in-process as main does.
func runEmbrace(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// tinyModel is the random-weight sentence-transformers model committed
// with the repository, so these tests need no fixtures.
var tinyModel = filepath.Join("..", "..", "pipeline", "testdata", "minilm-st")

func TestHelpOfEverySubcommand(t *testing.T) {
	code, out, _ := runEmbrace(t, "", "help")
	if code != 0 {
		t.Fatalf("embrace help exited %d", code)
	}
	for _, c := range subcommands() {
		if !strings.Contains(out, c.name) {
			t.Errorf("embrace help does not list %s:\n%s", c.name, out)
		}
		code, out, errs := runEmbrace(t, "", c.name, "-h")
		if code != 0 || errs != "" || !strings.Contains(out, "embrace "+c.name) || !strings.Contains(out, "Flags:") {
			t.Errorf("embrace %s -h: exit %d, stderr %q, stdout:\n%s", c.name, code, errs, out)
		}
		// "embrace help NAME" is the same text.
		if _, out2, _ := runEmbrace(t, "", "help", c.name); out2 != out {
			t.Errorf("embrace help %s differs from embrace %s -h", c.name, c.name)
		}
	}
	if code, _, errs := runEmbrace(t, ""); code != 2 || !strings.Contains(errs, "Commands:") {
		t.Errorf("embrace with no command: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runEmbrace(t, "", "bogus"); code != 2 || !strings.Contains(errs, `unknown command "bogus"`) {
		t.Errorf("embrace bogus: exit %d, stderr %q", code, errs)
	}
}

func TestEmbedTinyModel(t *testing.T) {
	code, out, errs := runEmbrace(t, "", "embed", "-model", tinyModel, "-json", "Hello world!", "Embrace runs transformers in Go.")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d output lines, want 2:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var v struct {
			Text      string    `json:"text"`
			Embedding []float32 `json:"embedding"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		var norm float64
		for _, x := range v.Embedding {
			norm += float64(x) * float64(x)
		}
		// The model ends with a Normalize module.
		if len(v.Embedding) != 32 || norm < 0.999 || norm > 1.001 {
			t.Errorf("%q: %d dims, squared norm %g; want 32 normalised", v.Text, len(v.Embedding), norm)
		}
	}
}

func TestTokenizeTinyModel(t *testing.T) {
	code, out, errs := runEmbrace(t, "", "tokenize", "-model", tinyModel, "-json", "Hello world")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var v struct {
		IDs    []int    `json:"ids"`
		Tokens []string `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if len(v.IDs) < 3 || len(v.IDs) != len(v.Tokens) || v.Tokens[0] != "[CLS]" || v.Tokens[len(v.Tokens)-1] != "[SEP]" {
		t.Errorf("tokens %q ids %v", v.Tokens, v.IDs)
	}
	// Decoding the ids gives the text back (the model lowercases).
	ids := strings.Trim(fmt.Sprint(v.IDs), "[]")
	code, out, errs = runEmbrace(t, "", "tokenize", "-model", tinyModel, "-decode", ids)
	if code != 0 || !strings.Contains(out, "hello world") {
		t.Errorf("decode %s: exit %d, %q %q", ids, code, out, errs)
	}
}

func TestServeFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-model", "x", "extra"}, {"-model", "x", "-max-inputs", "0"}, {"-model", "x", "-log-format", "xml"}, {"-nope"}, {"-model", "x", "-max-queue", "1"}, {"-model", "x", "-quantize", "q4"}, {"-model", "x", "-compute", "fp8"}} {
		if code, _, errs := runEmbrace(t, "", append([]string{"serve"}, args...)...); code == 0 || strings.Count(errs, "\n") != 1 {
			t.Errorf("embrace serve %q: exit %d, stderr %q", args, code, errs)
		}
	}
	t.Setenv("EMBRACE_API_KEY", "from-env")
	f, ok, _ := parseServeFlags([]string{"-model", "m", "-request-timeout", "0", "-max-waiting", "0"}, &bytes.Buffer{}, &bytes.Buffer{})
	if !ok || f.opt.APIKey != "from-env" {
		t.Errorf("EMBRACE_API_KEY not used: %q", f.opt.APIKey)
	}
	if f, ok, _ := parseServeFlags([]string{"-model", "m", "-quantize", "q8", "-compute", "bf16", "-keep-head"}, &bytes.Buffer{}, &bytes.Buffer{}); !ok ||
		f.opt.Load.Quantize != "q8" || f.opt.Load.Compute != "bf16" || !f.opt.Load.KeepHead {
		t.Errorf("load flags: %+v", f.opt.Load)
	}
	// A flag's 0 ("none") must reach serve.Options as a negative value,
	// since 0 there means the default.
	if f.opt.RequestTimeout >= 0 || f.opt.MaxWaiting >= 0 {
		t.Errorf("-request-timeout 0 / -max-waiting 0 became %v / %d", f.opt.RequestTimeout, f.opt.MaxWaiting)
	}
}

// TestDownload fetches the tiny model from a local fake Hub into a
// temporary Hugging Face cache: stdout is the snapshot folder, holding the
// files the model needs; a second run downloads nothing.
func TestDownload(t *testing.T) {
	hub := clitest.StartFakeHub(t, "org/tiny", tinyModel)
	code, out, errs := runEmbrace(t, "", "download", "org/tiny")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	snap := strings.TrimSpace(out)
	if !strings.HasPrefix(snap, hub.Cache) || !strings.Contains(snap, "models--org--tiny") {
		t.Errorf("snapshot folder %q is not in the cache %s", snap, hub.Cache)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json"} {
		if _, err := os.Stat(filepath.Join(snap, f)); err != nil {
			t.Errorf("snapshot lacks %s: %v", f, err)
		}
	}
	if code, out2, _ := runEmbrace(t, "", "download", "org/tiny"); code != 0 || out2 != out || hub.Gets("model.safetensors") != 1 {
		t.Errorf("second download: exit %d, %q, model.safetensors fetched %d times", code, out2, hub.Gets("model.safetensors"))
	}
	for _, args := range [][]string{{"download"}, {"download", "not a repo"}, {"download", "org/missing"}} {
		if code, _, errs := runEmbrace(t, "", args...); code == 0 || strings.Count(errs, "\n") != 1 {
			t.Errorf("embrace %q: exit %d, stderr %q", args, code, errs)
		}
	}
}
