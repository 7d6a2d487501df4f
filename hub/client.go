// Package hub downloads model files from the Hugging Face Hub into the
// standard Hugging Face cache, so that Go and Python share one cache.
//
// The cache layout is the one huggingface_hub uses:
//
//	$HF_HUB_CACHE/models--org--name/
//		blobs/<etag>                  file contents, named by ETag (sha256 for LFS files)
//		snapshots/<commit>/<file>     relative symlinks to the blobs
//		refs/<revision>               the commit a branch or tag pointed to
//
// Downloads go to blobs/<etag>.incomplete, are resumed with Range requests,
// checked against the LFS sha256, and renamed into place; a lock file keeps
// two processes from fetching the same blob at once.
//
// The package imports nothing else of Embrace: files in, paths out.
package hub

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// DefaultEndpoint is the Hub used when HF_ENDPOINT is unset.
const DefaultEndpoint = "https://huggingface.co"

// Errors matched with errors.Is against what this package returns.
var (
	// ErrNotFound: the repository, revision or file does not exist (or is
	// not in the cache when offline). It also matches fs.ErrNotExist.
	ErrNotFound = &notFound{}
	// ErrUnauthorized: the Hub refused access (401/403, gated or private
	// repository); set HF_TOKEN.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrOffline: the file is needed but offline mode forbids fetching it.
	ErrOffline = errors.New("offline mode (HF_HUB_OFFLINE)")
	// ErrIntegrity: a download did not match its announced size or sha256.
	ErrIntegrity = errors.New("download failed integrity check")
	// ErrUnsupported: the repository holds only weights this project cannot
	// read (pytorch_model.bin).
	ErrUnsupported error = unsupported{}
)

type notFound struct{}

func (*notFound) Error() string        { return "not found" }
func (*notFound) Is(target error) bool { return target == fs.ErrNotExist }

// Client fetches files from a Hub endpoint into a cache folder. Its fields
// must not change while downloads are running; one Client may serve many
// goroutines.
type Client struct {
	// Endpoint is the Hub's base URL (HF_ENDPOINT, default DefaultEndpoint).
	Endpoint string
	// Token is sent as a bearer token to the endpoint's host (HF_TOKEN).
	// It never appears in errors or logs.
	Token string
	// CacheDir is the hub cache ($HF_HUB_CACHE, $HF_HOME/hub, or
	// ~/.cache/huggingface/hub).
	CacheDir string
	// Offline serves files from the cache only (HF_HUB_OFFLINE=1).
	Offline bool
	// HTTP is the HTTP client; nil means http.DefaultClient.
	HTTP *http.Client
	// Progress receives a progress bar for each download. Nil means
	// standard error when it is a terminal and nothing otherwise; set
	// io.Discard to silence it.
	Progress io.Writer
}

// NewClient returns a Client configured from the environment variables
// huggingface_hub reads: HF_ENDPOINT, HF_TOKEN (else the token file saved by
// `huggingface-cli login`), HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME, and
// HF_HUB_OFFLINE.
func NewClient() *Client {
	c := &Client{
		Endpoint: strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/"),
		Token:    os.Getenv("HF_TOKEN"),
		CacheDir: os.Getenv("HF_HUB_CACHE"),
		Offline:  truthy(os.Getenv("HF_HUB_OFFLINE")),
	}
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	home := hfHome()
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(home, "hub")
	}
	if c.Token == "" {
		tokenPath := os.Getenv("HF_TOKEN_PATH")
		if tokenPath == "" {
			tokenPath = filepath.Join(home, "token")
		}
		if b, err := os.ReadFile(tokenPath); err == nil {
			c.Token = strings.TrimSpace(string(b))
		}
	}
	return c
}

// hfHome is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface.
func hfHome() string {
	if h := os.Getenv("HF_HOME"); h != "" {
		return h
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "huggingface")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "huggingface")
}

func truthy(s string) bool {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) endpoint() string {
	if c.Endpoint == "" {
		return DefaultEndpoint
	}
	return strings.TrimRight(c.Endpoint, "/")
}

func (c *Client) cacheDir() string {
	if c.CacheDir == "" {
		return filepath.Join(hfHome(), "hub")
	}
	return c.CacheDir
}

type unsupported struct{}

func (unsupported) Error() string { return "unsupported" }

// Is makes errors.Is(err, errors.ErrUnsupported) true, as for the other
// packages' unsupported errors.
func (unsupported) Is(target error) bool { return target == errors.ErrUnsupported }
