package hub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRepo is one repository of the fake Hub.
type fakeRepo struct {
	commit   string
	branches map[string]string // branch or tag -> commit
	files    map[string][]byte
	lfs      map[string]bool // files served through the CDN with X-Linked-*
	private  bool
}

// fakeHub behaves like the Hub's resolve endpoint: HEAD/GET on
// /{repo}/resolve/{revision}/{file}, X-Repo-Commit, ETag / X-Linked-Etag /
// X-Linked-Size, 302 to a CDN on another host for LFS files, 401/404 with
// X-Error-Code, and Range requests (http.ServeContent).
type fakeHub struct {
	t       *testing.T
	srv     *httptest.Server
	cdn     *httptest.Server
	token   string
	mu      sync.Mutex
	repos   map[string]*fakeRepo
	renamed map[string]string // old repo id -> new
	gets    map[string]int    // file path -> GETs of its bytes
	ranges  []string          // Range headers seen by the CDN
	cdnAuth int               // CDN requests that carried Authorization
	corrupt map[string]bool   // sha256 -> serve wrong bytes
	stall   map[string]bool   // sha256 -> send half, then hang
	blobs   map[string][]byte // sha256 -> content
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{t: t, token: "hf_SECRETtoken123", repos: map[string]*fakeRepo{}, renamed: map[string]string{},
		gets: map[string]int{}, corrupt: map[string]bool{}, stall: map[string]bool{}, blobs: map[string][]byte{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	t.Cleanup(func() { h.srv.Close(); h.cdn.Close() })
	return h
}

func (h *fakeHub) addRepo(id string, files map[string]string, lfs ...string) *fakeRepo {
	sum := sha1.Sum([]byte(id + fmt.Sprint(len(files))))
	r := &fakeRepo{commit: hex.EncodeToString(sum[:]), files: map[string][]byte{}, lfs: map[string]bool{}}
	r.branches = map[string]string{"main": r.commit}
	for k, v := range files {
		r.files[k] = []byte(v)
	}
	for _, f := range lfs {
		r.lfs[f] = true
		s := sha256.Sum256(r.files[f])
		h.blobs[hex.EncodeToString(s[:])] = r.files[f]
	}
	h.mu.Lock()
	h.repos[id] = r
	h.mu.Unlock()
	return r
}

func (h *fakeHub) client(t *testing.T) *Client {
	return &Client{Endpoint: h.srv.URL, CacheDir: t.TempDir(), Progress: nilWriter{}}
}

type nilWriter struct{}

func (nilWriter) Write(b []byte) (int, error) { return len(b), nil }

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	repoID, rest, ok := strings.Cut(path, "/resolve/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if to, ok := h.renamed[repoID]; ok {
		w.Header().Set("Location", "/"+to+"/resolve/"+rest)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	escRev, escFile, _ := strings.Cut(rest, "/")
	rev, _ := url.PathUnescape(escRev)
	file, _ := url.PathUnescape(escFile)
	authed := r.Header.Get("Authorization") == "Bearer "+h.token
	h.mu.Lock()
	repo := h.repos[repoID]
	h.mu.Unlock()
	if repo == nil {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if repo.private && !authed {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	commit := repo.branches[rev]
	if commit == "" && rev == repo.commit {
		commit = rev
	}
	if commit == "" {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	data, ok := repo.files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if repo.lfs[file] {
		sum := sha256.Sum256(data)
		hexSum := hex.EncodeToString(sum[:])
		w.Header().Set("X-Linked-Etag", `"`+hexSum+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
		w.Header().Set("ETag", `W/"lfs-pointer"`)
		w.Header().Set("Location", h.cdn.URL+"/blob/"+hexSum+"?name="+url.QueryEscape(file))
		w.WriteHeader(http.StatusFound)
		return
	}
	sum := sha1.Sum(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	if r.Method == http.MethodGet {
		h.mu.Lock()
		h.gets[file]++
		h.mu.Unlock()
	}
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(data)))
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	sha := strings.TrimPrefix(r.URL.Path, "/blob/")
	h.mu.Lock()
	data, ok := h.blobs[sha]
	if r.Header.Get("Authorization") != "" {
		h.cdnAuth++
	}
	if rg := r.Header.Get("Range"); rg != "" {
		h.ranges = append(h.ranges, rg)
	}
	if r.Method == http.MethodGet {
		h.gets[r.URL.Query().Get("name")]++
	}
	corrupt, stall := h.corrupt[sha], h.stall[sha]
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if corrupt {
		data = []byte(strings.Repeat("x", len(data)))
	}
	if stall {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(data)))
}
