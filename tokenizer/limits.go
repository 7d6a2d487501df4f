package tokenizer

import "fmt"

// MaxSequenceLength bounds every length a tokenizer file or a caller can
// ask for: the fixed padding length, pad_to_multiple_of, the truncation
// max_length and stride. It is far above any model's positions (the
// longest contexts are a few hundred thousand tokens) yet small enough
// that padding to it allocates tens of megabytes, not gigabytes, so a
// corrupt or hostile value fails at load time instead of exhausting
// memory on the first Encode. Compare Padding() and Truncation() with
// the model's own position limit for a tighter check.
const MaxSequenceLength = 1 << 20

// checkSize checks a tokenizer.json size field against 0 and
// MaxSequenceLength; name is the field's path in the file.
func checkSize(name string, v int) error {
	if v < 0 {
		return fmt.Errorf("tokenizer: tokenizer.json: %s %d is negative", name, v)
	}
	if v > MaxSequenceLength {
		return fmt.Errorf("tokenizer: tokenizer.json: %s %d exceeds the limit of %d", name, v, MaxSequenceLength)
	}
	return nil
}
