package modernbert

import (
	"testing"

	"github.com/embrace-go/embrace/internal/encodertest"
	"github.com/embrace-go/embrace/models/arch"
)

// F16 and BF16 checkpoints (kept half in memory) give what their values
// widened to float32 give.
func TestHalfPrecision(t *testing.T) {
	dir := tinyCheckpoint(t, "ModernBertForMaskedLM", variants[0])
	in := &arch.EncoderInput{Batch: 1, Seq: 12, InputIDs: []int{1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 2}}
	encodertest.CheckHalfPrecision(t, dir, in, func(d string) (arch.Encoder, error) { return Load(d) })
}
