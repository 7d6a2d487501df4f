package hub

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	repoIDRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$`)
	commitRe   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	sha256Re   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	safeNameRe = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$`)
)

// IsRepoID reports whether s is a valid Hub repository id: "name" or
// "org/name", letters, digits, '-', '_' and '.', no "--" or "..", at most 96
// characters, not ending in '-' or '.'.
func IsRepoID(s string) bool {
	if len(s) > 96 || !repoIDRe.MatchString(s) || strings.Contains(s, "--") || strings.Contains(s, "..") {
		return false
	}
	for _, part := range strings.Split(s, "/") {
		if strings.HasSuffix(part, "-") || strings.HasSuffix(part, ".") {
			return false
		}
	}
	return true
}

// checkFilename refuses names that could leave the snapshot folder.
func checkFilename(name string) error {
	if name == "" || strings.Contains(name, "\\") || path.IsAbs(name) || !filepath.IsLocal(filepath.FromSlash(name)) || path.Clean(name) != name {
		return fmt.Errorf("hub: invalid file name %q: must be a relative path inside the repository", name)
	}
	return nil
}

// checkRevision refuses revisions that cannot be a ref file name.
func checkRevision(rev string) error {
	if rev == "" || strings.Contains(rev, "\\") || strings.HasPrefix(rev, "/") || strings.Contains(rev, "..") || !filepath.IsLocal(filepath.FromSlash(rev)) {
		return fmt.Errorf("hub: invalid revision %q", rev)
	}
	return nil
}

// repoDir is the cache folder of a model repository.
func (c *Client) repoDir(repo string) string {
	return filepath.Join(c.cacheDir(), "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// cachedCommit returns the commit a revision resolves to in the cache: the
// revision itself when it is a commit hash, else the content of its ref.
func (c *Client) cachedCommit(repo, revision string) (string, bool) {
	if commitRe.MatchString(revision) {
		return revision, true
	}
	b, err := os.ReadFile(filepath.Join(c.repoDir(repo), "refs", filepath.FromSlash(revision)))
	if err != nil {
		return "", false
	}
	commit := strings.TrimSpace(string(b))
	return commit, commitRe.MatchString(commit)
}

// snapshotPath is where file lives in the snapshot of commit.
func (c *Client) snapshotPath(repo, commit, file string) string {
	return filepath.Join(c.repoDir(repo), "snapshots", commit, filepath.FromSlash(file))
}

// writeRef records that revision pointed to commit, atomically.
func (c *Client) writeRef(repo, revision, commit string) error {
	if revision == commit {
		return nil
	}
	p := filepath.Join(c.repoDir(repo), "refs", filepath.FromSlash(revision))
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	return writeFileAtomic(p, []byte(commit))
}

func writeFileAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// linkSnapshot points the snapshot file at its blob with a relative symlink
// (as huggingface_hub does), falling back to a hard link or a copy where
// symlinks are not available.
func linkSnapshot(blob, pointer string) error {
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(pointer), blob)
	if err != nil {
		return err
	}
	// A unique temporary name: concurrent downloaders may link the same file.
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := pointer + ".tmp-" + hex.EncodeToString(rnd[:])
	if err := os.Symlink(rel, tmp); err != nil {
		if err := os.Link(blob, tmp); err != nil {
			if err := copyFile(blob, tmp); err != nil {
				return err
			}
		}
	}
	// Rename replaces a stale pointer atomically.
	if err := os.Rename(tmp, pointer); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// markNoExist records that file is absent at commit, as huggingface_hub's
// .no_exist folder does, so offline lookups can tell "absent" from "not
// fetched".
func (c *Client) markNoExist(repo, commit, file string) {
	p := filepath.Join(c.repoDir(repo), ".no_exist", commit, filepath.FromSlash(file))
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
}

func (c *Client) knownNoExist(repo, commit, file string) bool {
	_, err := os.Stat(filepath.Join(c.repoDir(repo), ".no_exist", commit, filepath.FromSlash(file)))
	return err == nil
}
