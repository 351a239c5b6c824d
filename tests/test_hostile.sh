#!/usr/bin/env bash
# test_hostile.sh - one hand-made hostile file per parser (issue 13), each
# refused with a message naming the file and the bound it broke, a
# non-zero exit and no abort, under a 2 GiB address-space limit (ulimit -v;
# off in a sanitizer build, which reserves terabytes of shadow memory).
. "$(dirname "$0")/harness.sh" "$@"
limit_kb=$((2 * 1024 * 1024))
ulim=(bash -c 'ulimit -v "$1" && shift && exec "$@"' _ "$limit_kb")
ldd "$QRUN" 2>/dev/null | grep -q libasan && ulim=()

# the files
printf 'GGUF\003\000\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000\000\000\000' >"$T/huge.gguf"
mkdir -p "$T/st"
printf '\000\000\000\000\000\000\000\020{}' >"$T/st/model.safetensors" # header length 2^60
printf '{"model_type": "gpt2", "n_layer": 1, "n_embd": 8, "n_head": 2, "vocab_size": 10, "n_positions": 8}' \
    >"$T/st/config.json"
head -c 1000000 /dev/zero | tr '\0' '[' >"$T/deep.json"
printf '{"a": 900000000, "b": 1}' >"$T/v.json"
printf 'a b\n' >"$T/m.txt"
hdr='{"x":{"dtype":"F32","shape":[1073741824,1073741824],"data_offsets":[0,4]}}'
{ printf "\\$(printf %03o ${#hdr})\\000\\000\\000\\000\\000\\000\\000"; printf '%s' "$hdr"; printf '\000\000\000\000'; } \
    >"$T/ad.safetensors"
printf 'while true do end\n' >"$T/cfg.lua"
printf 'local s = "x" for i = 1, 64 do s = s .. s end return s\n' >"$T/cfg2.lua"

# hostile ID LUA NEEDLE...: the chunk must raise (assert) a message holding every needle
hostile() {
  local id=$1 code=$2
  shift 2
  run "${ulim[@]}" "$QRUN" -e "$code"
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
    fail "$id" "exit $rc, want a refusal (1..127); stderr: $err"
    return
  fi
  for n in "$@"; do expect_in "$id ($n)" "$err" "$n"; done
}
tiny='qr.model_new{arch="gpt2", n_layer=1, n_embd=8, n_head=2, n_vocab=10, n_ctx=8}'
hostile hostile-1 "assert(qr.model('$T/huge.gguf'))" "$T/huge.gguf" "tensor count 1099511627776 is impossible for a file of 24 bytes"
hostile hostile-2 "assert(qr.model('$T/st'))" "$T/st/model.safetensors" "header length 1152921504606846976 exceeds the 2 bytes after it"
hostile hostile-3 "assert(qr.squad.load('$T/deep.json'))" "$T/deep.json" "invalid JSON"
hostile hostile-4 "assert(qr.tokenizer{vocab='$T/v.json', merges='$T/m.txt'})" "$T/v.json" 'entry "a"' "[0, 2)"
hostile hostile-5 "local m = $tiny; m:lora{rank=2, slots=1}; assert(m:load_adapters('$T/ad.safetensors'))" \
    "$T/ad.safetensors" "data_offsets span 4 bytes"
hostile hostile-6 "assert(require('qr.precision').load('$T/cfg.lua', $tiny))" "$T/cfg.lua" "ran over 1000000 Lua instructions"
hostile hostile-7 "assert(require('qr.precision').load('$T/cfg2.lua', $tiny))" "$T/cfg2.lua" "KiB of memory"
finish
