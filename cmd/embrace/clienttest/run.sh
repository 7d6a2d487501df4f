#!/usr/bin/env bash
# Builds the embrace command, starts "embrace serve" on free loopback ports with the fixture models
# (minilm-st for embeddings, gpt2 for completions, llama for chat), and runs test.mjs with the
# official openai npm client against them. Exits non-zero on any failure;
# prints one line and exits 0 when node/npm or the fixtures are missing.
#
#   bash cmd/embrace/clienttest/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "serve client test: skipped (node and npm not found)"
  exit 0
fi
fixtures=${EMBRACE_SHARED_FIXTURES:-$root/../shared/fixtures}
if [ ! -d "$fixtures/models/minilm-st" ] || [ ! -d "$fixtures/models/gpt2" ]; then
  echo "serve client test: skipped (fixtures not found: set EMBRACE_SHARED_FIXTURES or put them at ../shared/fixtures)"
  exit 0
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/embrace" ./cmd/embrace)

export API_KEY="clienttest-$RANDOM$RANDOM"
# start NAME MODEL: starts a server on a free port; sets the URL in $url.
start() {
  local log="$tmp/$1.log"
  EMBRACE_API_KEY="$API_KEY" "$tmp/embrace" serve -model "$2" -addr 127.0.0.1:0 2>"$log" &
  pids+=($!)
  for _ in $(seq 1 200); do
    if grep -q 'msg="model loaded"' "$log"; then
      url="http://$(grep -o 'msg=listening addr=[0-9.:]*' "$log" | head -1 | sed 's/.*addr=//')"
      return 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "serve client test: the $1 server exited:"; cat "$log"; return 1
    fi
    sleep 0.05
  done
  echo "serve client test: the $1 server did not load in 10 s:"; cat "$log"; return 1
}
start embed "$fixtures/models/minilm-st"; EMBED_URL=$url
start gen "$fixtures/models/gpt2"; GEN_URL=$url
export EMBED_URL GEN_URL
# A model with a chat template, when the fixtures have it.
if [ -d "$fixtures/models/llama" ]; then
  start chat "$fixtures/models/llama"; CHAT_URL=$url
  export CHAT_URL
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error
node test.mjs
