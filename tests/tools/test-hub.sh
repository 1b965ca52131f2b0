#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip pull and models against a loopback imitation of the HuggingFace
# hub (hub-server.py) serving the reference's tiny models: the hub cache's
# layout (refs, snapshot links to blobs named by sha256 or git blob id),
# only the files gst-clip reads, a cut connection resumed with Range, a
# corrupted file refused, a gated repository with and without HF_TOKEN, a
# repository with only a PyTorch pickle, @revision, HF_HUB_OFFLINE; then
# clipclassify (model=org/name) and the CLI (--model org/name) give the
# same results as from the folder.
source "$(dirname "$0")/lib.sh"
need_reference

# The OpenCLIP spelling of a repository: open_clip_config.json,
# open_clip_model.safetensors and the OpenAI vocabulary file.
openclip="$TMP/repo-openclip"
mkdir -p "$openclip"
cp "$REF/models/tiny-openai/config.json" "$openclip/open_clip_config.json"
cp "$REF/models/tiny-openai/model.safetensors" \
  "$openclip/open_clip_model.safetensors"
cp "$REF/vocab/bpe_simple_vocab_16e6.txt.gz" "$openclip/"
# Only a PyTorch pickle, as many older repositories have.
pickle="$TMP/repo-pickle"
mkdir -p "$pickle"
cp "$REF/models/tiny-hf/config.json" "$pickle/"
head -c 1000 /dev/urandom >"$pickle/pytorch_model.bin"

SERVER_PID=
start_server () {
  rm -f "$TMP/port"
  python3 "$(dirname "$0")/hub-server.py" --port-file "$TMP/port" \
    --log "$TMP/log" --token secret --renamed test/old-name=test/tiny-hf "$@" \
    "test/tiny-hf=$REF/models/tiny-hf" "test/openclip=$openclip" \
    "test/pickle=$pickle" "test/gated=$REF/models/tiny-hf:gated" &
  SERVER_PID=$!
  local i
  for i in $(seq 300); do
    [ -s "$TMP/port" ] && break
    kill -0 "$SERVER_PID" || fail "the hub server did not start"
    sleep 0.1
  done
  [ -s "$TMP/port" ] || fail "the hub server wrote no port"
  export HF_ENDPOINT="http://127.0.0.1:$(cat "$TMP/port")"
}
stop_server () {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
trap 'stop_server; rm -rf "$TMP"' EXIT

# Nothing from the user's own setup: no token of a login, no cache.
export HF_HUB_CACHE="$TMP/cache" HF_HOME="$TMP/hf-home"
unset HF_TOKEN HF_TOKEN_PATH HF_HUB_OFFLINE
: >"$TMP/log"
start_server --cut model.safetensors

# --- pull: the hub's layout, only what gst-clip reads, a cut resumed.
expect_status 0 pull test/tiny-hf
repo="$HF_HUB_CACHE/models--test--tiny-hf"
commit=$(cat "$repo/refs/main")
[[ $commit =~ ^[0-9a-f]{40}$ ]] || fail "refs/main is not a commit: '$commit'"
snapshot="$repo/snapshots/$commit"
grep -qxF "$snapshot" "$TMP/out" || fail "pull did not print the snapshot: $(cat "$TMP/out")"
ls "$snapshot" | sort >"$TMP/files"
printf '%s\n' config.json merges.txt model.safetensors preprocessor_config.json \
  vocab.json | diff - "$TMP/files" || fail "pull fetched other files than gst-clip reads"
sha=$(sha256sum "$REF/models/tiny-hf/model.safetensors" | cut -d' ' -f1)
[ "$(readlink "$snapshot/model.safetensors")" = "../../blobs/$sha" ] ||
  fail "model.safetensors is not a relative link to blobs/<sha256>: $(readlink "$snapshot/model.safetensors")"
git_id=$(python3 -c '
import hashlib, sys
d = open(sys.argv[1], "rb").read()
print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' "$REF/models/tiny-hf/config.json")
[ "$(readlink "$snapshot/config.json")" = "../../blobs/$git_id" ] ||
  fail "config.json is not a relative link to blobs/<git blob id>"
for f in $(cat "$TMP/files"); do
  cmp "$snapshot/$f" "$REF/models/tiny-hf/$f" || fail "$f differs from the served file"
done
ls "$repo/blobs" | grep -q incomplete && fail "an .incomplete blob was left"
grep -q "^GET /lfs/$sha.* bytes=[1-9][0-9]*- " "$TMP/log" ||
  fail "the cut download was not resumed with Range: $(cat "$TMP/log")"
grep -q "resuming" "$TMP/err" || fail "pull did not say it resumed: $(cat "$TMP/err")"
echo "ok: pull test/tiny-hf: hub layout, 5 files, cut resumed with Range"

# A second pull downloads nothing again.
: >"$TMP/log"
expect_status 0 pull test/tiny-hf
grep -q '^GET /lfs/' "$TMP/log" && fail "a second pull downloaded the weights again"
echo "ok: a second pull finds the blobs in the cache"

# A partial blob longer than the file (not a prefix of it) is started again.
rm "$repo/blobs/$sha"
cat "$REF/models/tiny-hf/model.safetensors" "$REF/models/tiny-hf/vocab.json" \
  >"$repo/blobs/$sha.incomplete"
expect_status 0 pull test/tiny-hf
cmp "$repo/blobs/$sha" "$REF/models/tiny-hf/model.safetensors" ||
  fail "an over-long partial blob was not replaced"
echo "ok: an over-long partial blob is downloaded again"

# On a terminal, a progress bar on stderr.
if command -v script >/dev/null; then
  rm "$repo/blobs/$sha"
  script -qec "$(printf '%q ' "$GST_CLIP" pull test/tiny-hf)" /dev/null \
    >"$TMP/tty.out" 2>&1 || fail "pull on a terminal failed: $(cat "$TMP/tty.out")"
  grep -qE 'model\.safetensors +\[#* *\] +[0-9]+%' "$TMP/tty.out" ||
    fail "no progress bar on a terminal: $(cat -v "$TMP/tty.out")"
  echo "ok: a progress bar on a terminal"
fi

# --- the CLI by name gives what the folder gives.
texts=(--text "a photo of a dog." --text "a diagram")
images=(--image "$REF/images/shapes_640x480.png")
"$GST_CLIP" embed --model "$REF/models/tiny-hf" --backend cpu "${texts[@]}" \
  "${images[@]}" >"$TMP/by-folder"
for name in test/tiny-hf hf-hub:test/tiny-hf "test/tiny-hf@$commit"; do
  "$GST_CLIP" embed --model "$name" --backend cpu "${texts[@]}" "${images[@]}" \
    >"$TMP/by-name"
  cmp "$TMP/by-folder" "$TMP/by-name" || fail "embed --model $name differs from the folder"
done
echo "ok: embed --model test/tiny-hf (also hf-hub:, @commit) = the folder, bit for bit"

# --- the element by name gives what the folder gives.
if command -v gst-launch-1.0 >/dev/null && gst-inspect-1.0 clipclassify >/dev/null 2>&1; then
  for model in "$REF/models/tiny-hf" test/tiny-hf; do
    out="$TMP/element-$(echo "$model" | tr / _).jsonl"
    gst-launch-1.0 -q videotestsrc num-buffers=3 pattern=smpte \
      ! video/x-raw,width=160,height=120 ! videoconvert \
      ! clipclassify "model=$model" backend=cpu mode=sync labels=dog,cat,diagram \
      ! clipexport format=jsonl "location=$out" ! fakesink ||
      fail "clipclassify model=$model failed"
  done
  [ -s "$TMP/element-test_tiny-hf.jsonl" ] || fail "clipclassify model=test/tiny-hf wrote nothing"
  cmp "$TMP/element-test_tiny-hf.jsonl" "$TMP/element-$(echo "$REF/models/tiny-hf" | tr / _).jsonl" ||
    fail "clipclassify model=test/tiny-hf differs from the folder"
  echo "ok: clipclassify model=test/tiny-hf = the folder"
elif [ "${CI:-}" = true ]; then
  fail "clipclassify is not found (GST_PLUGIN_PATH) under CI=true"
else
  echo "SKIP (part): clipclassify not found; the element by name is not checked" >&2
fi

# --- a hub name as the vocabulary of a new model, and as the model that
# training starts from (its snapshot's vocabulary goes with it).
"$GST_CLIP" random-model --arch tiny --vocab test/tiny-hf --out "$TMP/random" \
  >/dev/null || fail "random-model --vocab test/tiny-hf failed"
cmp "$TMP/random/vocab.json" "$REF/models/tiny-hf/vocab.json" ||
  fail "random-model --vocab test/tiny-hf did not copy its vocab.json"
mkdir "$TMP/data"
cp "$REF/images/gradient_320x240.png" "$REF/images/shapes_640x480.png" "$TMP/data/"
printf 'gradient_320x240.png\ta gradient\nshapes_640x480.png\tsome shapes\n' \
  >"$TMP/data/captions.txt"
printf '[train]\nbatch=2\nsteps=1\n' >"$TMP/ft.ini"
"$GST_CLIP" train --config "$TMP/ft.ini" --data "$TMP/data" --model test/tiny-hf \
  --out "$TMP/ft" --threads 2 >"$TMP/ft.log" 2>&1 ||
  fail "train --model test/tiny-hf failed: $(cat "$TMP/ft.log")"
cmp "$TMP/ft/merges.txt" "$REF/models/tiny-hf/merges.txt" ||
  fail "train --model test/tiny-hf did not keep the model's vocabulary"
echo "ok: random-model --vocab and train --model take hub names"

# --- the OpenCLIP spelling: open_clip_* files and the OpenAI vocabulary,
# after a 404 for each HF name; a partial blob left by an earlier run is
# resumed.
osha=$(sha256sum "$openclip/open_clip_model.safetensors" | cut -d' ' -f1)
orepo="$HF_HUB_CACHE/models--test--openclip"
mkdir -p "$orepo/blobs"
head -c 100000 "$openclip/open_clip_model.safetensors" \
  >"$orepo/blobs/$osha.incomplete"
: >"$TMP/log"
expect_status 0 pull test/openclip
grep -q "^GET /lfs/$osha.* bytes=100000- " "$TMP/log" ||
  fail "the partial blob was not resumed at byte 100000: $(cat "$TMP/log")"
grep -q "^HEAD /test/openclip/resolve/[0-9a-f]*/config.json " "$TMP/log" ||
  fail "config.json (the HF name, a 404 here) was not asked for"
ocommit=$(cat "$orepo/refs/main")
ls "$orepo/snapshots/$ocommit" | sort | tr '\n' ' ' |
  grep -qx 'bpe_simple_vocab_16e6.txt.gz open_clip_config.json open_clip_model.safetensors ' ||
  fail "test/openclip: unexpected files: $(ls "$orepo/snapshots/$ocommit")"
"$GST_CLIP" embed --model test/openclip --backend cpu "${texts[@]}" >"$TMP/openclip"
"$GST_CLIP" embed --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --backend cpu "${texts[@]}" >"$TMP/openai-folder"
cmp "$TMP/openclip" "$TMP/openai-folder" || fail "test/openclip differs from its folder"
echo "ok: pull test/openclip: OpenCLIP files, a partial blob resumed"

# --- @revision: its own ref and snapshot.
expect_status 0 pull test/tiny-hf@v1.0
v1=$(cat "$repo/refs/v1.0")
[ "$v1" != "$commit" ] && [ -d "$repo/snapshots/$v1" ] ||
  fail "pull @v1.0 did not write refs/v1.0 and its snapshot"
"$GST_CLIP" embed --model test/tiny-hf@v1.0 --backend cpu "${texts[@]}" \
  "${images[@]}" >"$TMP/by-rev"
cmp "$TMP/by-folder" "$TMP/by-rev" || fail "--model test/tiny-hf@v1.0 differs"
echo "ok: pull and --model test/tiny-hf@v1.0"

# --- errors: 404 repository, gated, pickle only, corrupted bytes.
expect_error 1 pull test/missing -- "test/missing" "HF_TOKEN"
expect_error 1 pull test/gated -- "gated" "HF_TOKEN"
HF_TOKEN=wrong expect_error 1 pull test/gated -- "has no access"
: >"$TMP/log"
# The hub spelled "localhost" here: its blob redirects (to 127.0.0.1) are
# another host, like the hub's storage, which must not get the token.
HF_ENDPOINT="http://localhost:$(cat "$TMP/port")" HF_TOKEN=secret \
  expect_status 0 pull test/gated
grep -q '^HEAD /test/gated/resolve/main/model.safetensors - auth$' "$TMP/log" ||
  fail "HF_TOKEN was not sent as Authorization"
grep -q '^GET /lfs/.* -$' "$TMP/log" && ! grep -q '^GET /lfs/.* auth$' "$TMP/log" ||
  fail "the token went to the blob storage: $(cat "$TMP/log")"
echo "ok: HF_TOKEN opens the gated repository, and goes to the hub only"
# The token a login saved, when HF_TOKEN is not set.
printf 'secret\n' >"$TMP/token"
rm -rf "$HF_HUB_CACHE/models--test--gated"
: >"$TMP/log"
HF_TOKEN_PATH="$TMP/token" expect_status 0 pull test/gated
grep -q ' auth$' "$TMP/log" || fail "the saved token was not sent"
echo "ok: the saved login token (HF_TOKEN_PATH) opens the gated repository"
# A renamed repository: the hub's relative redirect is followed.
expect_status 0 pull test/old-name
[ -d "$HF_HUB_CACHE/models--test--old-name/snapshots/$commit" ] ||
  fail "pull of a renamed repository did not store it under the name asked for"
echo "ok: a renamed repository's relative redirect is followed"
expect_error 1 pull test/pickle -- "pytorch_model.bin" "safetensors"
[ ! -e "$HF_HUB_CACHE/models--test--pickle" ] ||
  fail "pull test/pickle downloaded something: $(find "$HF_HUB_CACHE/models--test--pickle")"
expect_error 1 pull test/tiny-hf@no-such-branch -- "no such revision"
expect_error 2 pull not-a-name -- "not a hub model name"
expect_error 1 embed --model test/not-pulled --text x -- \
  "not in the HuggingFace cache" "$HF_HUB_CACHE/models--test--not-pulled" \
  "run gst-clip pull test/not-pulled"

stop_server
rm -rf "$HF_HUB_CACHE/models--test--tiny-hf/blobs"
start_server --corrupt merges.txt
expect_error 1 pull test/tiny-hf -- "merges.txt" "git blob id"
ls "$repo/blobs" | grep -q incomplete && fail "the corrupted download was left as .incomplete"
echo "ok: corrupted bytes are refused and removed"
stop_server
# Without X-Linked-Size, an over-long partial blob gets a 416 for its Range
# and is started again.
start_server --no-size
rm -f "$repo/blobs/$sha"
cat "$REF/models/tiny-hf/model.safetensors" "$REF/models/tiny-hf/vocab.json" \
  >"$repo/blobs/$sha.incomplete"
expect_status 0 pull test/tiny-hf
cmp "$repo/blobs/$sha" "$REF/models/tiny-hf/model.safetensors" ||
  fail "after a 416, the blob was not downloaded again"
echo "ok: a 416 for an over-long partial blob starts it again"

# --- HF_HUB_OFFLINE: no request at all.
: >"$TMP/log"
HF_HUB_OFFLINE=1 expect_error 1 pull test/other -- "HF_HUB_OFFLINE" \
  "not in the HuggingFace cache"
HF_HUB_OFFLINE=1 expect_status 0 pull test/tiny-hf
[ ! -s "$TMP/log" ] || fail "HF_HUB_OFFLINE=1 still made requests: $(cat "$TMP/log")"
echo "ok: HF_HUB_OFFLINE=1 uses the cache and never the network"

# --- models: what can be used, and why not the rest.
prepo="$HF_HUB_CACHE/models--test--pickle/snapshots/$(printf 'a%.0s' $(seq 40))"
mkdir -p "$prepo"
cp "$pickle/config.json" "$pickle/pytorch_model.bin" "$prepo/"
mkdir -p "$HF_HUB_CACHE/models--test--notclip/snapshots/$(printf 'b%.0s' $(seq 40))"
echo '{"model_type": "bert"}' \
  >"$HF_HUB_CACHE/models--test--notclip/snapshots/$(printf 'b%.0s' $(seq 40))/config.json"
cp "$REF/models/tiny-hf/model.safetensors" \
  "$HF_HUB_CACHE/models--test--notclip/snapshots/$(printf 'b%.0s' $(seq 40))/"
expect_status 0 models
cat "$TMP/out"
grep -qE "^test/tiny-hf +main +${commit:0:12} .* HF$" "$TMP/out" || fail "models: no test/tiny-hf main line"
grep -qE "^test/tiny-hf +v1.0 +${v1:0:12} " "$TMP/out" || fail "models: no test/tiny-hf v1.0 line"
grep -qE "^test/openclip +main .* OpenCLIP$" "$TMP/out" || fail "models: no test/openclip line"
grep -qE "^test/gated +main " "$TMP/out" || fail "models: no test/gated line"
grep -q "^test/pickle (-, aaaaaaaaaaaa): only pytorch_model.bin" "$TMP/out" ||
  fail "models: the pickle-only model's reason is missing"
grep -q "^test/notclip (-, bbbbbbbbbbbb): " "$TMP/out" || fail "models: no reason for test/notclip"
echo "ok: models lists usable snapshots and says why not the others"
HF_HUB_CACHE="$TMP/empty" expect_status 0 models
grep -q "No model gst-clip can use in $TMP/empty" "$TMP/out" || fail "models on an empty cache"
echo "ok: all hub tests passed"
