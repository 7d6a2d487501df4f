package models

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/internal/testmodel"
	"github.com/embrace-go/embrace/models/arch"
)

// TestThreadsOption loads a model of every architecture with Threads 1 and
// checks that no call splits its work over the worker pool (and that with
// Threads 0 some call does). The committed test models cover bert, gpt2 and
// llama (qwen2); mpnet and modernbert come from the shared fixtures when
// they are there.
func TestThreadsOption(t *testing.T) {
	dirs := []string{
		"../pipeline/testdata/bert-cls",
		"gpt2/testdata/gpt2-tiny",
		"../pipeline/testdata/qwen2-chat",
	}
	fx := os.Getenv("EMBRACE_SHARED_FIXTURES")
	if fx == "" {
		fx = "../../shared/fixtures"
	}
	haveFixtures := true
	for _, name := range []string{"mpnet-mlm", "modernbert-mlm"} {
		d := filepath.Join(fx, "models", name)
		if _, err := os.Stat(filepath.Join(d, "config.json")); err != nil {
			t.Logf("%s not checked: not in $EMBRACE_SHARED_FIXTURES or ../shared/fixtures", name)
			haveFixtures = false
			continue
		}
		dirs = append(dirs, d)
	}
	// Every registered architecture must be among them.
	covered := map[string]bool{}
	for _, dir := range dirs {
		f, err := hfdir.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := Lookup(f.Config.ModelType); ok {
			covered[r.Name] = true
		}
	}
	for _, r := range registry() {
		if !covered[r.Name] && haveFixtures {
			t.Errorf("architecture %s has no model in TestThreadsOption", r.Name)
		}
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			testmodel.CheckThreads(t, func(t *testing.T, threads int) {
				m, err := Load(dir, &arch.LoadOptions{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				runBoth(t, m)
			})
		})
	}
}

// runBoth makes the calls a model offers on a batch of two sequences of 40
// tokens: an encoding, or a prefill and three decoding steps.
func runBoth(t *testing.T, m arch.Model) {
	ctx := context.Background()
	const b, s = 2, 40
	ids := make([]int, b*s)
	for i := range ids {
		ids[i] = 5 + i%23
	}
	if e, ok := m.(arch.Encoder); ok {
		if _, err := e.Encode(ctx, &arch.EncoderInput{Batch: b, Seq: s, InputIDs: ids}, arch.EncodeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if lm, ok := m.(arch.CausalLM); ok {
		c, err := lm.NewCache(b, 64)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lm.Forward(ctx, c, &arch.DecoderInput{IDs: ids}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := lm.Forward(ctx, c, &arch.DecoderInput{IDs: ids[:b]}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
