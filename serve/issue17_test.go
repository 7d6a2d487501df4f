package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// metricsText scrapes /metrics.
func metricsText(t testing.TB, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSlowBodyTimesOut: a body that trickles in past the server's read
// timeout is answered 408 (it used to be a 200 with an empty body: the
// timeout read as a client that had left), and the metrics count it.
func TestSlowBodyTimesOut(t *testing.T) {
	h, err := NewHandler(Options{Model: "fake", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), load: fakeLoader(fakeModel())})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	defer h.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"input": "hello"}`
	fmt.Fprintf(conn, "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:5])
	// The rest never comes; the server's read deadline passes.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("a body cut off by the read timeout got %d %q, want 408", resp.StatusCode, b)
		}
		if !resp.Close {
			t.Errorf("408 without Connection: close")
		}
	} else if !strings.Contains(err.Error(), "EOF") {
		// The connection closed without any answer is acceptable too.
		t.Fatalf("reading the answer: %v", err)
	}
	m := metricsText(t, srv.URL)
	if !strings.Contains(m, `embrace_requests_total{route="/v1/embeddings",code="408"} 1`) {
		t.Errorf("the timed-out request is not counted as a 408:\n%s", m)
	}
}

// TestAbandonedStreamCountsTokens: a stream the client abandons still adds
// the tokens generated so far to embrace_generated_tokens_total (it stayed
// 0: only finished completions were counted).
func TestAbandonedStreamCountsTokens(t *testing.T) {
	m := fakeModel()
	gen := m.Generator.(*fakeGenerator)
	gen.delay = 20 * time.Millisecond
	ts := newTestServer(t, Options{}, m)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions",
		strings.NewReader(`{"prompt": "x", "max_tokens": 50, "stream": true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	events := 0
	for events < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			events++
		}
	}
	cancel() // the client leaves mid-stream
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for gen.canceled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the generation did not stop after the client left")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var text string
	for time.Now().Before(deadline) {
		text = metricsText(t, ts.URL)
		if strings.Contains(text, `embrace_requests_total{route="/v1/completions"`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var n int
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "embrace_generated_tokens_total "); ok {
			fmt.Sscan(v, &n)
		}
	}
	if n < 3 {
		t.Errorf("embrace_generated_tokens_total = %d after a stream abandoned at its 3rd piece, want >= 3\n%s", n, text)
	}
}

// TestMalformedChunkedBody: a body whose chunked framing is broken is the
// client's error, a 400 (it was an empty 200 too).
func TestMalformedChunkedBody(t *testing.T) {
	ts := newTestServer(t, Options{}, fakeModel())
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, resp.StatusCode, b, 400, "reading the request body")
}
