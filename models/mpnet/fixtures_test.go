package mpnet

import (
	"path/filepath"
	"testing"

	"github.com/embrace-go/embrace/internal/encodertest"
)

// Every <tag>.output.* of each fixture of this architecture matches its
// reference.safetensors at real positions within 1e-4 + 1e-4·|ref|.
func TestFixtures(t *testing.T) {
	for _, dir := range encodertest.Fixtures(t, "mpnet") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			encodertest.CheckReference(t, dir, m)
		})
	}
}
