package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadResult summarises one burst of requests.
type loadResult struct {
	n, errs, rejected int
	wall              time.Duration
	lat               []time.Duration
	firstErr          string
}

func (r loadResult) perSecond() float64 { return float64(r.n-r.errs-r.rejected) / r.wall.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d requests in %s: %.0f req/s, p50 %s, p99 %s, %d errors, %d deliberate 429s",
		r.n, r.wall.Round(time.Millisecond), r.perSecond(), r.pct(0.5).Round(10*time.Microsecond), r.pct(0.99).Round(10*time.Microsecond), r.errs, r.rejected)
}

// burst fires n requests at once (all goroutines start together) and
// measures each one; do returns the status and an error text for failures.
func burst(n int, do func(i int) (int, string)) loadResult {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		res      = loadResult{n: n, lat: make([]time.Duration, 0, n)}
		startGun = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			t0 := time.Now()
			code, msg := do(i)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case code == http.StatusTooManyRequests:
				res.rejected++
			case code != http.StatusOK:
				res.errs++
				if res.firstErr == "" {
					res.firstErr = fmt.Sprintf("%d %s", code, msg)
				}
			default:
				res.lat = append(res.lat, d)
			}
		}()
	}
	t0 := time.Now()
	close(startGun)
	wg.Wait()
	res.wall = time.Since(t0)
	return res
}

func loadClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second},
		Timeout:   60 * time.Second,
	}
}

var loadWords = strings.Fields("the quick brown fox jumps over the lazy dog while a cat sleeps on a mat in Paris")

// embedText is the i-th small input of the load tests (3 to 7 words).
func embedText(i int) string { return strings.Join(loadWords[i%7:i%7+3+i%5], " ") }

func embedBurst(c *http.Client, base string, n int) loadResult {
	return burst(n, func(i int) (int, string) {
		text := embedText(i)
		body, _ := json.Marshal(map[string]any{"input": text, "model": "m"})
		resp, err := c.Post(base+"/v1/embeddings", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 && !bytes.Contains(b, []byte(`"embedding":[`)) {
			return 0, "no embedding in " + string(b)
		}
		return resp.StatusCode, string(b)
	})
}

func streamBurst(c *http.Client, base string, n int) loadResult {
	return burst(n, func(i int) (int, string) {
		body, _ := json.Marshal(map[string]any{"prompt": "Once upon a time", "max_tokens": 24, "seed": i, "stream": true})
		resp, err := c.Post(base+"/v1/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		sc := bufio.NewScanner(resp.Body)
		events, done := 0, false
		for sc.Scan() {
			if line := sc.Text(); line == "data: [DONE]" {
				done = true
			} else if strings.HasPrefix(line, "data: {\"id\"") {
				events++
			} else if line != "" {
				return 0, "unexpected line " + line
			}
		}
		if !done || events < 2 {
			return 0, fmt.Sprintf("stream ended without [DONE] after %d events", events)
		}
		return 200, ""
	})
}

// TestLoad drives real fixture models over loopback: a burst of 2,000
// concurrent small embedding requests (with dynamic batching, then without)
// while 50 streamed completions run on a GPT-2 server. No errors are allowed
// besides 429s, memory stays bounded, and after shutdown no goroutine is left.
// -short (and -race) shrink it to 200 requests and 10 streams.
func TestLoad(t *testing.T) {
	root := filepath.Join(fixtures(t), "models")
	nEmbed, nStream := 2000, 50
	if testing.Short() || raceEnabled {
		nEmbed, nStream = 200, 10
	}
	before, _ := ourGoroutines()
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	phase := time.Now()
	client := loadClient(nEmbed + nStream)
	serve := func(opt Options) (string, func()) {
		ctx, stop := context.WithCancel(context.Background())
		base, done := startRun(t, ctx, opt, 30*time.Second)
		waitReady(t, base)
		return base, func() {
			// Connections the client dialed but never used count as busy
			// for 5 s in http.Server.Shutdown; close them first.
			client.CloseIdleConnections()
			stop()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("server did not shut down")
			}
			t.Logf("server %s stopped at %s", opt.Model, time.Since(phase).Round(time.Millisecond))
		}
	}

	embedBase, stopEmbed := serve(Options{Model: filepath.Join(root, "minilm-st")})
	genBase, stopGen := serve(Options{Model: filepath.Join(root, "gpt2"), MaxConcurrent: 8})

	embedBurst(client, embedBase, 50) // warm up connections and code paths
	var streams loadResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		streams = streamBurst(client, genBase, nStream)
	}()
	mixed := embedBurst(client, embedBase, nEmbed)
	wg.Wait()
	stopGen()

	// The batching gain, each side alone on the machine.
	nGain := nEmbed / 2
	batched := embedBurst(client, embedBase, nGain)
	var metrics string
	if resp, err := client.Get(embedBase + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
	}
	stopEmbed()

	unbatchedBase, stopUnbatched := serve(Options{Model: filepath.Join(root, "minilm-st"), MaxBatchSize: 1})
	embedBurst(client, unbatchedBase, 50)
	unbatched := embedBurst(client, unbatchedBase, nGain)
	stopUnbatched()

	client.CloseIdleConnections()
	close(stopSampling)
	sampler.Wait()

	t.Logf("embeddings while %d streams run: %s", nStream, mixed)
	t.Logf("embeddings, dynamic batching: %s", batched)
	t.Logf("embeddings, no batching:      %s", unbatched)
	t.Logf("batching gain: %.2fx throughput", batched.perSecond()/unbatched.perSecond())
	t.Logf("streamed completions (alongside the first embedding burst): %s", streams)
	t.Logf("peak heap in use: %.1f MiB", float64(peak.Load())/(1<<20))
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "embrace_batch_size_sum") || strings.HasPrefix(line, "embrace_batch_size_count") {
			t.Log(line)
		}
	}
	for name, r := range map[string]loadResult{"mixed": mixed, "batched": batched, "unbatched": unbatched, "streams": streams} {
		if r.errs > 0 {
			t.Errorf("%s: %d errors, first: %s", name, r.errs, r.firstErr)
		}
		if r.n-r.rejected-r.errs == 0 {
			t.Errorf("%s: nothing succeeded", name)
		}
	}
	if peak.Load() > 1<<30 {
		t.Errorf("peak heap %d MiB, want under 1 GiB", peak.Load()>>20)
	}
	settleGoroutines(t, before)
}
