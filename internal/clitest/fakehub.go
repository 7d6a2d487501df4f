package clitest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakeHub is a local stand-in for the Hugging Face Hub's resolve endpoint,
// serving one repository from a folder, so tests can run an example with
// `-model org/name` without the network: HEAD/GET on
// /{repo}/resolve/{revision}/{file} with X-Repo-Commit and ETag, and
// *.safetensors served the LFS way (X-Linked-Etag sha256, X-Linked-Size, a
// redirect to a blob URL).
type FakeHub struct {
	URL   string
	Cache string // the HF_HUB_CACHE the environment now points at

	repo   string
	commit string
	files  map[string][]byte

	mu   sync.Mutex
	gets map[string]int
}

// StartFakeHub serves every file under dir as repository repo, and points
// the Hugging Face environment variables (HF_ENDPOINT, HF_HUB_CACHE, HF_HOME,
// HF_TOKEN, HF_HUB_OFFLINE) at it and at a fresh cache for the rest of the
// test. It must not be used by parallel tests.
func StartFakeHub(t testing.TB, repo, dir string) *FakeHub {
	t.Helper()
	h := &FakeHub{repo: repo, files: map[string][]byte{}, gets: map[string]int{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatalf("fake hub: reading %s: %v", dir, err)
	}
	sum := sha1.Sum([]byte(repo))
	h.commit = hex.EncodeToString(sum[:])
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	home := t.TempDir()
	h.Cache = filepath.Join(home, "hub")
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", h.Cache)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	return h
}

// Gets returns how many times the bytes of file were downloaded.
func (h *FakeHub) Gets(file string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gets[file]
}

func (h *FakeHub) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	if sha, ok := strings.CutPrefix(path, "blobs/"); ok {
		h.serveBlob(w, r, sha)
		return
	}
	repo, rest, ok := strings.Cut(path, "/resolve/")
	if !ok || repo != h.repo {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rev, escFile, _ := strings.Cut(rest, "/")
	file, err := url.PathUnescape(escFile)
	if err != nil || (rev != "main" && rev != h.commit) {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", h.commit)
	data, ok := h.files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if strings.HasSuffix(file, ".safetensors") {
		sum := sha256.Sum256(data)
		hexSum := hex.EncodeToString(sum[:])
		w.Header().Set("X-Linked-Etag", `"`+hexSum+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
		// Absolute, as the Hub's CDN redirects are.
		w.Header().Set("Location", "http://"+r.Host+"/blobs/"+hexSum+"?name="+url.QueryEscape(file))
		w.WriteHeader(http.StatusFound)
		return
	}
	sum := sha1.Sum(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	h.count(r, file)
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(data)))
}

func (h *FakeHub) serveBlob(w http.ResponseWriter, r *http.Request, sha string) {
	name := r.URL.Query().Get("name")
	data, ok := h.files[name]
	sum := sha256.Sum256(data)
	if !ok || hex.EncodeToString(sum[:]) != sha {
		http.NotFound(w, r)
		return
	}
	h.count(r, name)
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(data)))
}

func (h *FakeHub) count(r *http.Request, file string) {
	if r.Method == http.MethodGet {
		h.mu.Lock()
		h.gets[file]++
		h.mu.Unlock()
	}
}

// CheckHubRun serves the fixture folder dir as repository repo on a fake
// Hub and checks that running the example with `-model repo` downloads it
// and prints exactly what `-model dir` prints. args are the other flags and
// inputs.
func CheckHubRun(t testing.TB, run RunFunc, dir, repo string, args ...string) {
	t.Helper()
	hub := StartFakeHub(t, repo, dir)
	local := Run(t, run, "", append([]string{"-model", dir}, args...)...)
	if local.Code != 0 {
		t.Fatalf("local folder: exit %d: %s", local.Code, local.Stderr)
	}
	got := Run(t, run, "", append([]string{"-model", repo}, args...)...)
	if got.Code != 0 || got.Stdout != local.Stdout {
		t.Fatalf("-model %s: exit %d, stdout %q, stderr %s; want the local folder's %q", repo, got.Code, got.Stdout, got.Stderr, local.Stdout)
	}
	if hub.Gets("config.json") != 1 {
		t.Errorf("config.json downloaded %d times, want once", hub.Gets("config.json"))
	}
	org, name, _ := strings.Cut(repo, "/")
	if _, err := os.Stat(filepath.Join(hub.Cache, "models--"+org+"--"+name, "snapshots")); err != nil {
		t.Errorf("no snapshot in the Hugging Face cache layout: %v", err)
	}
}
