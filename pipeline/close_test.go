package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/embrace-go/embrace/models/arch"
)

// Close while Embed calls run: each call succeeds or returns ErrClosed, none
// touches the unmapped weights (run with -race); calls after Close fail
// with ErrClosed.
func TestCloseDuringCalls(t *testing.T) {
	ctx := context.Background()
	e, err := NewSentenceEmbedder(ctx, "testdata/minilm-st", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				if _, err := e.Embed(ctx, []string{"hello world", "a second text"}); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-done; !errors.Is(err, arch.ErrClosed) {
			t.Errorf("Embed during Close: %v", err)
		}
	}
	if _, err := e.Embed(ctx, []string{"after"}); !errors.Is(err, arch.ErrClosed) {
		t.Errorf("Embed after Close: %v", err)
	}
}
