#!/bin/bash
# Round 8 (bench/README.md): the reference engines and /tmp/eb-new (go build -o /tmp/eb-new ./bench), 3 rounds at 1 and at 2 threads.
cd /work/main
for r in 1 2 3; do
  echo "## round $r threads 1"
  flock /tmp/bench.lock bash ../shared/reference-bench/measure.sh 1 peak membw ort
  flock /tmp/bench.lock /tmp/eb-new -threads 1 -json -time 2s '^membw/read$' '^peak/fma-f32$' '^gpt2/decode-(f32|bf16|q8)-ctx128$' '^smollm2-135m/decode-(f32|bf16)-ctx128$' '^llama-1b/decode-bf16-ctx128$' '^smollm2-135m/prefill-s128$' '^bert-base/b1s128(-bf16c)?$' '^minilm-l6/b8s128(-bf16c)?$'
done
for r in 1 2 3; do
  echo "## round $r threads 2"
  flock /tmp/bench.lock bash ../shared/reference-bench/measure.sh 2 peak ort
  flock /tmp/bench.lock /tmp/eb-new -threads 2 -json -time 2s '^peak/fma-f32$' '^smollm2-135m/prefill-s128$' '^bert-base/b1s128(-bf16c)?$' '^minilm-l6/b8s128(-bf16c)?$'
done
echo DONE
