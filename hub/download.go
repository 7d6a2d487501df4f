package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// fileMeta is what a HEAD on the resolve URL tells about a file.
type fileMeta struct {
	commit   string // X-Repo-Commit
	etag     string // X-Linked-Etag (LFS sha256) or ETag (git blob id)
	size     int64  // X-Linked-Size or Content-Length; -1 when unknown
	location string // where to GET the bytes (a CDN redirect, or the resolve URL)
}

// Download returns the local path of filename in repo at revision ("" means
// "main"), fetching it into the cache when needed. The path is inside the
// snapshot folder of the resolved commit.
func (c *Client) Download(ctx context.Context, repo, revision, filename string) (string, error) {
	p, _, err := c.download(ctx, repo, revision, filename)
	return p, err
}

func (c *Client) download(ctx context.Context, repo, revision, filename string) (path, commit string, err error) {
	if revision == "" {
		revision = "main"
	}
	if !IsRepoID(repo) {
		return "", "", fmt.Errorf("hub: invalid repository id %q", repo)
	}
	if err := checkRevision(revision); err != nil {
		return "", "", err
	}
	if err := checkFilename(filename); err != nil {
		return "", "", err
	}
	// A commit hash names immutable content: a cached copy needs no request.
	if commitRe.MatchString(revision) {
		if p := c.snapshotPath(repo, revision, filename); exists(p) {
			return p, revision, nil
		}
		if c.knownNoExist(repo, revision, filename) {
			return "", "", fmt.Errorf("hub: file %s not found in %s at revision %s: %w", filename, repo, revision, ErrNotFound)
		}
	}
	if c.Offline {
		return c.fromCache(repo, revision, filename, ErrOffline)
	}
	meta, err := c.head(ctx, repo, revision, filename)
	if err != nil {
		var tr *transportError
		if errors.As(err, &tr) && ctx.Err() == nil {
			// The Hub is unreachable: serve a cached copy if there is one,
			// as huggingface_hub does.
			if p, commit, cerr := c.fromCache(repo, revision, filename, err); cerr == nil {
				return p, commit, nil
			}
		}
		return "", "", err
	}
	pointer := c.snapshotPath(repo, meta.commit, filename)
	blob := filepath.Join(c.repoDir(repo), "blobs", meta.etag)
	if !exists(pointer) {
		if !exists(blob) {
			lock := filepath.Join(c.cacheDir(), ".locks", filepath.Base(c.repoDir(repo)), meta.etag+".lock")
			unlock, err := lockFile(ctx, lock)
			if err != nil {
				return "", "", fmt.Errorf("hub: locking %s: %w", lock, err)
			}
			// Another process may have finished it while we waited.
			if !exists(blob) {
				err = c.fetch(ctx, meta, blob, repo+"/"+filename)
			}
			unlock()
			if err != nil {
				return "", "", err
			}
		}
		if err := linkSnapshot(blob, pointer); err != nil {
			return "", "", fmt.Errorf("hub: linking %s: %w", pointer, err)
		}
	}
	if err := c.writeRef(repo, revision, meta.commit); err != nil {
		return "", "", fmt.Errorf("hub: writing ref %s of %s: %w", revision, repo, err)
	}
	return pointer, meta.commit, nil
}

// fromCache finds filename for revision in the cache, failing with cause
// (and a message naming the file) when it is not there.
func (c *Client) fromCache(repo, revision, filename string, cause error) (string, string, error) {
	commit, ok := c.cachedCommit(repo, revision)
	if !ok {
		return "", "", fmt.Errorf("hub: file %s of %s: revision %s is not in the cache %s: %w (%w)", filename, repo, revision, c.repoDir(repo), cause, ErrNotFound)
	}
	p := c.snapshotPath(repo, commit, filename)
	if exists(p) {
		return p, commit, nil
	}
	if c.knownNoExist(repo, commit, filename) {
		return "", "", fmt.Errorf("hub: file %s not found in %s at revision %s: %w", filename, repo, revision, ErrNotFound)
	}
	return "", "", fmt.Errorf("hub: file %s of %s (revision %s) is not in the cache at %s: %w (%w)", filename, repo, revision, p, cause, ErrNotFound)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// transportError marks failures to reach the Hub at all (as opposed to an
// HTTP answer), after which a cached copy may be served.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (c *Client) resolveURL(repo, revision, filename string) string {
	segs := strings.Split(filename, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.endpoint() + "/" + repo + "/resolve/" + url.PathEscape(revision) + "/" + strings.Join(segs, "/")
}

// newRequest builds a request carrying the token only to the endpoint's own
// host, never to a CDN it redirects to.
func (c *Client) newRequest(ctx context.Context, method, target string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("hub: bad URL: %w", err)
	}
	req.Header.Set("User-Agent", "embrace-go/hub")
	req.Header.Set("Accept-Encoding", "identity")
	if c.Token != "" {
		if ep, err := url.Parse(c.endpoint()); err == nil && ep.Host == req.URL.Host {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
	}
	return req, nil
}

// head asks the Hub about a file without fetching it. Relative redirects
// (renamed repositories) are followed; absolute ones (the CDN) are not, so
// the Hub's own X-Linked-* headers are read.
func (c *Client) head(ctx context.Context, repo, revision, filename string) (*fileMeta, error) {
	target := c.resolveURL(repo, revision, filename)
	req, err := c.newRequest(ctx, http.MethodHead, target)
	if err != nil {
		return nil, err
	}
	hc := *c.httpClient()
	hc.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		if loc, err := url.Parse(r.Response.Header.Get("Location")); err == nil && loc.IsAbs() {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("hub: %s %s: %w", repo, filename, ctx.Err())
		}
		return nil, &transportError{fmt.Errorf("hub: reaching %s: %w", c.endpoint(), err)}
	}
	resp.Body.Close()
	if err := c.statusError(resp, repo, revision, filename); err != nil {
		if resp.StatusCode == http.StatusNotFound && resp.Header.Get("X-Error-Code") != "RepoNotFound" && resp.Header.Get("X-Error-Code") != "RevisionNotFound" {
			// Remember the absence, so later and offline lookups skip it.
			if commit := resp.Header.Get("X-Repo-Commit"); commitRe.MatchString(commit) {
				c.markNoExist(repo, commit, filename)
			} else if commitRe.MatchString(revision) {
				c.markNoExist(repo, revision, filename)
			}
		}
		return nil, err
	}
	m := &fileMeta{commit: resp.Header.Get("X-Repo-Commit"), size: -1, location: target}
	if !commitRe.MatchString(m.commit) {
		return nil, fmt.Errorf("hub: %s %s: server sent no valid X-Repo-Commit header (is %s a Hugging Face Hub?)", repo, filename, c.endpoint())
	}
	m.etag = normalizeETag(resp.Header.Get("X-Linked-Etag"))
	if m.etag == "" {
		m.etag = normalizeETag(resp.Header.Get("ETag"))
	}
	if !safeNameRe.MatchString(m.etag) {
		return nil, fmt.Errorf("hub: %s %s: server sent no usable ETag", repo, filename)
	}
	sizeHdr := resp.Header.Get("X-Linked-Size")
	if sizeHdr == "" && resp.StatusCode/100 == 2 {
		sizeHdr = resp.Header.Get("Content-Length")
	}
	if n, err := strconv.ParseInt(sizeHdr, 10, 64); err == nil && n >= 0 {
		m.size = n
	}
	if resp.StatusCode/100 == 3 {
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			return nil, fmt.Errorf("hub: %s %s: bad redirect location: %w", repo, filename, err)
		}
		m.location = loc.String()
	}
	return m, nil
}

func normalizeETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

// statusError turns Hub error answers into errors naming the repository and
// file; it returns nil for success and redirects.
func (c *Client) statusError(resp *http.Response, repo, revision, filename string) error {
	code := resp.StatusCode
	if code/100 == 2 || code/100 == 3 {
		return nil
	}
	errCode := resp.Header.Get("X-Error-Code")
	switch {
	case errCode == "RepoNotFound":
		hint := ""
		if c.Token == "" {
			hint = " (if it is private or gated, set HF_TOKEN)"
		}
		return fmt.Errorf("hub: repository %s not found%s: %w", repo, hint, ErrNotFound)
	case errCode == "RevisionNotFound":
		return fmt.Errorf("hub: revision %s of %s not found: %w", revision, repo, ErrNotFound)
	case code == http.StatusUnauthorized || code == http.StatusForbidden || errCode == "GatedRepo":
		hint := "set HF_TOKEN to a token with access"
		if c.Token != "" {
			hint = "the token was refused or lacks access"
		}
		return fmt.Errorf("hub: access to %s in %s denied (HTTP %d; %s): %w", filename, repo, code, hint, ErrUnauthorized)
	case code == http.StatusNotFound:
		return fmt.Errorf("hub: file %s not found in %s at revision %s: %w", filename, repo, revision, ErrNotFound)
	}
	return fmt.Errorf("hub: %s %s of %s: HTTP %d", resp.Request.Method, filename, repo, code)
}

// fetch downloads meta's bytes to blob via blob.incomplete, resuming a
// previous partial download, and verifies size and sha256 before renaming.
func (c *Client) fetch(ctx context.Context, meta *fileMeta, blob, display string) error {
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	inc := blob + ".incomplete"
	f, err := os.OpenFile(inc, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	have := st.Size()
	if meta.size >= 0 && have > meta.size {
		have = 0
	}
	for attempt := 0; ; attempt++ {
		err = c.get(ctx, meta, f, &have, display)
		var restart *restartError
		if errors.As(err, &restart) && attempt == 0 {
			have = 0 // the partial file does not fit the server's answer
			continue
		}
		break
	}
	if err != nil {
		return err
	}
	if meta.size >= 0 && have != meta.size {
		f.Close()
		os.Remove(inc)
		return fmt.Errorf("hub: %s: got %d bytes, expected %d: %w", display, have, meta.size, ErrIntegrity)
	}
	if sha256Re.MatchString(meta.etag) {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, have)); err != nil {
			return fmt.Errorf("hub: hashing %s: %w", inc, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != meta.etag {
			f.Close()
			os.Remove(inc)
			return fmt.Errorf("hub: %s: sha256 %s does not match %s: %w", display, got, meta.etag, ErrIntegrity)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(inc, blob); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

type restartError struct{}

func (*restartError) Error() string { return "restart download" }

// get performs one GET from *have onwards, appending to f and advancing
// *have as bytes arrive (so an interrupted download keeps its progress).
func (c *Client) get(ctx context.Context, meta *fileMeta, f *os.File, have *int64, display string) error {
	req, err := c.newRequest(ctx, http.MethodGet, meta.location)
	if err != nil {
		return err
	}
	if *have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", *have))
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("hub: downloading %s: %w", display, ctx.Err())
		}
		return fmt.Errorf("hub: downloading %s: %w", display, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		var start int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start); err != nil || start != *have {
			return &restartError{}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && *have > 0:
		return &restartError{}
	case resp.StatusCode == http.StatusOK:
		*have = 0 // the server ignored the Range: start over
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("hub: downloading %s: access denied (HTTP %d): %w", display, resp.StatusCode, ErrUnauthorized)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("hub: downloading %s: %w (HTTP 404)", display, ErrNotFound)
	default:
		return fmt.Errorf("hub: downloading %s: HTTP %d", display, resp.StatusCode)
	}
	if err := f.Truncate(*have); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if _, err := f.Seek(*have, io.SeekStart); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	var body io.Reader = resp.Body
	if meta.size >= 0 {
		// One byte past the expected size is enough to detect an overlong
		// answer without storing it.
		body = io.LimitReader(body, meta.size-*have+1)
	}
	bar := newProgress(c.progressWriter(), display, meta.size, *have)
	n, err := io.Copy(f, io.TeeReader(body, bar))
	*have += n
	bar.done(err == nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("hub: downloading %s: %w", display, ctx.Err())
		}
		return fmt.Errorf("hub: downloading %s: %w", display, err)
	}
	return nil
}
