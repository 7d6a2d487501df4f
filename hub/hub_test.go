package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDownloadCacheLayout(t *testing.T) {
	h := newFakeHub(t)
	weights := strings.Repeat("W", 5000)
	r := h.addRepo("org/model", map[string]string{"config.json": `{"a":1}`, "model.safetensors": weights}, "model.safetensors")
	c := h.client(t)
	ctx := context.Background()

	p, err := c.Download(ctx, "org/model", "", "config.json")
	if err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(c.CacheDir, "models--org--model")
	if want := filepath.Join(repoDir, "snapshots", r.commit, "config.json"); p != want {
		t.Errorf("path %s, want %s", p, want)
	}
	if readFile(t, p) != `{"a":1}` {
		t.Error("config content")
	}
	if got := readFile(t, filepath.Join(repoDir, "refs", "main")); got != r.commit {
		t.Errorf("refs/main = %q", got)
	}
	link, err := os.Readlink(p)
	if err != nil || filepath.IsAbs(link) || !strings.HasPrefix(link, filepath.Join("..", "..", "blobs")) {
		t.Errorf("snapshot entry is not a relative symlink to blobs: %q %v", link, err)
	}

	p, err = c.Download(ctx, "org/model", "main", "model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(weights))
	blob := filepath.Join(repoDir, "blobs", hex.EncodeToString(sum[:]))
	if readFile(t, blob) != weights || readFile(t, p) != weights {
		t.Error("LFS blob content wrong or not named by sha256")
	}
	if h.cdnAuth != 0 {
		t.Error("request to CDN carried Authorization")
	}
	// A second download, and one by commit, make no GET.
	for _, rev := range []string{"main", r.commit} {
		if p2, err := c.Download(ctx, "org/model", rev, "model.safetensors"); err != nil || p2 != p {
			t.Errorf("rev %s: %s, %v", rev, p2, err)
		}
	}
	if h.gets["model.safetensors"] != 1 {
		t.Errorf("GETs = %d, want 1", h.gets["model.safetensors"])
	}
	matches, _ := filepath.Glob(filepath.Join(repoDir, "blobs", "*.incomplete"))
	if len(matches) != 0 {
		t.Errorf("leftover %v", matches)
	}
}

func TestDownloadErrors(t *testing.T) {
	h := newFakeHub(t)
	h.addRepo("org/model", map[string]string{"config.json": "{}"})
	priv := h.addRepo("org/private", map[string]string{"config.json": "{}"})
	priv.private = true
	ctx := context.Background()
	c := h.client(t)

	_, err := c.Download(ctx, "org/model", "main", "missing.json")
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
	_, err = c.Download(ctx, "org/nope", "main", "config.json")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "org/nope") {
		t.Errorf("missing repo: %v", err)
	}
	_, err = c.Download(ctx, "org/model", "v9", "config.json")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "revision v9") {
		t.Errorf("missing revision: %v", err)
	}
	_, err = c.Download(ctx, "org/private", "main", "config.json")
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("private without token: %v", err)
	}
	c.Token = "hf_wrongSECRET"
	_, err = c.Download(ctx, "org/private", "main", "config.json")
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), c.Token) {
		t.Errorf("private with wrong token: %v", err)
	}
	c.Token = h.token
	if _, err := c.Download(ctx, "org/private", "main", "config.json"); err != nil {
		t.Errorf("private with token: %v", err)
	}
	for _, bad := range [][3]string{
		{"../etc", "main", "config.json"}, {"org/model", "main", "../../x"}, {"org/model", "main", "/abs"},
		{"org/model", "../x", "config.json"}, {"org/model", "main", `a\b`}, {"a--b/c", "main", "x"},
	} {
		if _, err := c.Download(ctx, bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("Download%v succeeded", bad)
		}
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	h := newFakeHub(t)
	c := h.client(t)
	c.Token = h.token
	var progress bytes.Buffer
	c.Progress = &progress
	_, err := c.Download(context.Background(), "org/absent", "main", "config.json")
	c.Endpoint = "http://127.0.0.1:1" // unreachable
	_, err2 := c.Download(context.Background(), "org/absent", "main", "config.json")
	for _, e := range []error{err, err2} {
		if e == nil || strings.Contains(e.Error(), h.token) {
			t.Errorf("error %v (nil or leaks token)", e)
		}
	}
	if strings.Contains(progress.String(), h.token) {
		t.Error("progress output leaks token")
	}
}

func TestRelativeRedirect(t *testing.T) {
	h := newFakeHub(t)
	h.addRepo("org/new-name", map[string]string{"config.json": "{}"})
	h.renamed["org/old-name"] = "org/new-name"
	c := h.client(t)
	p, err := c.Download(context.Background(), "org/old-name", "main", "config.json")
	if err != nil || readFile(t, p) != "{}" {
		t.Fatalf("renamed repo: %v", err)
	}
	if !strings.Contains(p, "models--org--old-name") {
		t.Errorf("cached under %s, want the requested id", p)
	}
}

func TestIntegrityCheck(t *testing.T) {
	h := newFakeHub(t)
	content := strings.Repeat("abc", 1000)
	h.addRepo("org/model", map[string]string{"model.safetensors": content}, "model.safetensors")
	sum := sha256.Sum256([]byte(content))
	h.corrupt[hex.EncodeToString(sum[:])] = true
	c := h.client(t)
	_, err := c.Download(context.Background(), "org/model", "main", "model.safetensors")
	if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("corrupt download: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(c.CacheDir, "models--org--model", "blobs"))
	if len(entries) != 0 {
		t.Errorf("corrupt download left %v", entries)
	}
	// Once the CDN is fixed the download succeeds.
	h.corrupt = map[string]bool{}
	if _, err := c.Download(context.Background(), "org/model", "main", "model.safetensors"); err != nil {
		t.Error(err)
	}
}

func TestResumeAndCancel(t *testing.T) {
	h := newFakeHub(t)
	content := strings.Repeat("0123456789", 10000)
	h.addRepo("org/model", map[string]string{"model.safetensors": content}, "model.safetensors")
	sum := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(sum[:])
	h.stall[sha] = true
	c := h.client(t)

	// The server sends half and hangs; cancelling must return promptly and
	// keep the partial file.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Download(ctx, "org/model", "main", "model.safetensors")
		done <- err
	}()
	inc := filepath.Join(c.CacheDir, "models--org--model", "blobs", sha+".incomplete")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, err := os.Stat(inc); err == nil && st.Size() >= int64(len(content)/2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("partial download never appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled download: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Download did not return after cancel")
	}

	h.mu.Lock()
	h.stall = map[string]bool{}
	h.mu.Unlock()
	p, err := c.Download(context.Background(), "org/model", "main", "model.safetensors")
	if err != nil || readFile(t, p) != content {
		t.Fatalf("resumed download: %v", err)
	}
	if len(h.ranges) != 1 || h.ranges[0] != "bytes=50000-" {
		t.Errorf("Range requests %v, want one from byte 50000", h.ranges)
	}
}

func TestResumeGarbagePartial(t *testing.T) {
	h := newFakeHub(t)
	content := strings.Repeat("z", 3000)
	h.addRepo("org/model", map[string]string{"model.safetensors": content}, "model.safetensors")
	sum := sha256.Sum256([]byte(content))
	c := h.client(t)
	blobs := filepath.Join(c.CacheDir, "models--org--model", "blobs")
	os.MkdirAll(blobs, 0o755)
	// A partial file longer than the real one is discarded.
	os.WriteFile(filepath.Join(blobs, hex.EncodeToString(sum[:])+".incomplete"), bytes.Repeat([]byte("q"), 5000), 0o644)
	p, err := c.Download(context.Background(), "org/model", "main", "model.safetensors")
	if err != nil || readFile(t, p) != content {
		t.Fatalf("download over oversized partial: %v", err)
	}
}

func TestConcurrentDownloadsFetchOnce(t *testing.T) {
	h := newFakeHub(t)
	content := strings.Repeat("C", 200000)
	h.addRepo("org/model", map[string]string{"model.safetensors": content}, "model.safetensors")
	cache := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate clients share the cache like separate processes.
			c := &Client{Endpoint: h.srv.URL, CacheDir: cache, Progress: nilWriter{}}
			p, err := c.Download(context.Background(), "org/model", "main", "model.safetensors")
			if err == nil && readFile(t, p) != content {
				err = errors.New("wrong content")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if h.gets["model.safetensors"] != 1 {
		t.Errorf("blob fetched %d times", h.gets["model.safetensors"])
	}
}

func TestOffline(t *testing.T) {
	h := newFakeHub(t)
	r := h.addRepo("org/model", map[string]string{"config.json": "{}"})
	c := h.client(t)
	if _, err := c.Download(context.Background(), "org/model", "main", "config.json"); err != nil {
		t.Fatal(err)
	}
	c.Offline = true
	c.Endpoint = "http://127.0.0.1:1"
	p, err := c.Download(context.Background(), "org/model", "main", "config.json")
	if err != nil || !strings.Contains(p, r.commit) {
		t.Errorf("offline cached: %s %v", p, err)
	}
	_, err = c.Download(context.Background(), "org/model", "main", "tokenizer.json")
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("offline missing file: %v", err)
	}
	_, err = c.Download(context.Background(), "org/other", "main", "config.json")
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("offline missing repo: %v", err)
	}
	// Online but unreachable: the cached copy is served.
	c.Offline = false
	if p2, err := c.Download(context.Background(), "org/model", "main", "config.json"); err != nil || p2 != p {
		t.Errorf("unreachable hub with cache: %s %v", p2, err)
	}
}

func TestProgress(t *testing.T) {
	h := newFakeHub(t)
	h.addRepo("org/model", map[string]string{"model.safetensors": strings.Repeat("p", 4096)}, "model.safetensors")
	c := h.client(t)
	var buf bytes.Buffer
	c.Progress = &buf
	if _, err := c.Download(context.Background(), "org/model", "main", "model.safetensors"); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "org/model/model.safetensors") || !strings.Contains(out, "100%") || !strings.HasSuffix(out, "\n") {
		t.Errorf("progress output %q", out)
	}
}

func TestNewClientEnv(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_ENDPOINT", "https://mirror.example/")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", "")
	t.Setenv("HF_HUB_OFFLINE", "1")
	os.WriteFile(filepath.Join(home, "token"), []byte("hf_fromfile\n"), 0o600)
	c := NewClient()
	if c.CacheDir != filepath.Join(home, "hub") || c.Endpoint != "https://mirror.example" || !c.Offline || c.Token != "hf_fromfile" {
		t.Errorf("client %+v", *c)
	}
	t.Setenv("HF_HUB_CACHE", "/x/cache")
	t.Setenv("HF_TOKEN", "hf_env")
	t.Setenv("HF_HUB_OFFLINE", "0")
	c = NewClient()
	if c.CacheDir != "/x/cache" || c.Token != "hf_env" || c.Offline {
		t.Errorf("client %+v", *c)
	}
	t.Setenv("HF_HOME", "")
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if c := NewClient(); c.CacheDir != filepath.Join("/xdg", "huggingface", "hub") {
		t.Errorf("XDG cache %s", c.CacheDir)
	}
}

func TestIsRepoID(t *testing.T) {
	for _, s := range []string{"gpt2", "bert-base-uncased", "openai-community/gpt2", "sentence-transformers/all-MiniLM-L6-v2", "a/b.c_d"} {
		if !IsRepoID(s) {
			t.Errorf("IsRepoID(%q) = false", s)
		}
	}
	for _, s := range []string{"", "/x", "a/b/c", "a--b/c", "a/..", "./x", "a/b-", "x y", strings.Repeat("a", 97), "../x", "C:\\x"} {
		if IsRepoID(s) {
			t.Errorf("IsRepoID(%q) = true", s)
		}
	}
}
