package tokenizer

import "errors"

// ErrUnsupported is wrapped by every error about a tokenizer.json or legacy
// feature this package does not implement (its message reads
// "unsupported: ..."). It matches the standard library's
// errors.ErrUnsupported, as the model packages' unsupported errors do, so
// errors.Is(err, errors.ErrUnsupported) finds every one of them.
var ErrUnsupported error = unsupported{}

type unsupported struct{}

func (unsupported) Error() string { return "unsupported" }

// Is makes errors.Is(err, errors.ErrUnsupported) true.
func (unsupported) Is(target error) bool { return target == errors.ErrUnsupported }
