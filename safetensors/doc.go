// Package safetensors reads and writes the safetensors tensor file format
// (https://huggingface.co/docs/safetensors), the format Hugging Face uses to
// store model weights.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON that
// describe each tensor (dtype, shape and byte range), and the tensor bytes.
// [Open] maps the file into memory where the platform allows it, so opening
// costs the header only and [File.Tensor] returns views that alias the
// mapping without copying. Every header is validated before any tensor is
// handed out: bad lengths, offsets, dtypes and overlaps are reported as
// errors naming the file and the tensor.
//
// [OpenCheckpoint] opens a model folder, either a single model.safetensors
// or a sharded checkpoint described by model.safetensors.index.json.
// [Write] and [WriteFile] produce files the Python safetensors library reads
// back.
//
// A File or Checkpoint is safe for concurrent use by many goroutines; it
// must not be closed while views of its tensors are still in use.
package safetensors
