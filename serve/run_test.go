package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// startRun serves opt (with its loader, when set) on a loopback port until
// ctx ends, as the embrace command does, and returns its base URL and a
// channel with Run's result.
func startRun(t testing.TB, ctx context.Context, opt Options, shutdown time.Duration) (string, <-chan error) {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h, err := NewHandler(opt)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln, shutdown) }()
	return "http://" + ln.Addr().String(), done
}

// waitReady polls /health until the model is loaded.
func waitReady(t testing.TB, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("server never became ready")
}

// ourGoroutines counts goroutines, leaving out the tensor package's worker
// pool, which the library starts once per process and keeps by design.
func ourGoroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.TrimSpace(g) == "" || strings.Contains(g, "tensor.(*workerPool)") {
			continue
		}
		n++
		ours = append(ours, g)
	}
	return n, strings.Join(ours, "\n\n")
}

// settleGoroutines waits for the goroutine count to fall to at most n.
func settleGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, stacks := ourGoroutines()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutine leak: %d running, want <= %d\n%s", got, n, stacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunLoadFailureExits(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, d := startRun(t, context.Background(), Options{Model: "m", load: fakeLoader(nil)}, time.Second)
		done <- <-d
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "fake load failure") {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not exit after the model failed to load")
	}
}

// TestGracefulShutdown stops the server (as SIGINT/SIGTERM do) while a
// stream is in flight: the stream finishes, new connections are refused and
// no goroutine is left behind.
func TestGracefulShutdown(t *testing.T) {
	before, _ := ourGoroutines()
	m := fakeModel()
	m.Generator.(*fakeGenerator).delay = 10 * time.Millisecond
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	base, done := startRun(t, ctx, Options{Model: "fake", load: fakeLoader(m)}, 5*time.Second)
	waitReady(t, base)

	j, _ := json.Marshal(map[string]any{"prompt": "x", "max_tokens": 30, "stream": true})
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	resp, err := client.Post(base+"/v1/completions", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	stop() // the signal
	rest, err := io.ReadAll(br)
	resp.Body.Close()
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Fatalf("in-flight stream cut short: %v\n%s", err, rest)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
	if _, err := client.Get(base + "/health"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
	tr.CloseIdleConnections()
	settleGoroutines(t, before)
}

// TestShutdownDeadline: a request that outlives -shutdown-timeout is cut off
// and run still returns.
func TestShutdownDeadline(t *testing.T) {
	m := fakeModel()
	m.Generator.(*fakeGenerator).delay = 50 * time.Millisecond
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	base, done := startRun(t, ctx, Options{Model: "fake", load: fakeLoader(m)}, 100*time.Millisecond)
	waitReady(t, base)
	j, _ := json.Marshal(map[string]any{"prompt": "x", "max_tokens": 60, "stream": true})
	resp, err := http.Post(base+"/v1/completions", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	stop()
	start := time.Now()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after the shutdown deadline")
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("shutdown took %s with a 100ms deadline", time.Since(start))
	}
}

// TestOneLoadAndCloseWhileLoading: a second Load is refused without
// touching the served model, and a model whose loading ends after Close is
// closed rather than leaked.
func TestOneLoadAndCloseWhileLoading(t *testing.T) {
	h, err := NewHandler(Options{Model: "fake", load: fakeLoader(fakeModel()), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("second Load: %v", err)
	}
	h.Close()

	release := make(chan struct{})
	closed := make(chan struct{})
	slow := func(context.Context, string, loadOptions) (*backend, error) {
		<-release
		m := fakeModel()
		m.Close = func() error { close(closed); return nil }
		return m, nil
	}
	h2, err := NewHandler(Options{Model: "fake", load: slow, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h2.Load(context.Background()) }()
	h2.Close()
	close(release)
	if err := <-done; err == nil {
		t.Error("Load after Close succeeded")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("the model loaded after Close was not closed")
	}
}

func TestOptionsChecked(t *testing.T) {
	for _, o := range []Options{{}, {Model: "m", MaxInputs: 10, MaxQueue: 5}, {Model: "m", MaxInputTokens: -1}} {
		if _, err := NewHandler(o); err == nil {
			t.Errorf("NewHandler(%+v) succeeded", o)
		}
	}
}
