#!/usr/bin/env bash
# test_hostile.sh - one hand-made hostile file per parser (issue 13: GGUF,
# safetensors, SQuAD, tokenizer, adapters, configuration, model metadata,
# word vectors, checkpoint, sentence-encoder config), each
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
# files built with Lua's string.pack (the suite needs no Python)
mk() { "$QRUN" -e "local f = assert(io.open('$1', 'wb')); f:write($2); f:close()"; }
# a model GGUF whose metadata asks for 10^9 layers of 2^30 wide, and holds no tensor
mkdir -p "$T/ck"
mk "$T/m.gguf" "(function()
  local function s(x) return string.pack('<s8', x) end
  local function u(k, v) return s(k) .. string.pack('<I4I4', 4, v) end
  local function arr(k, xs) local t = {s(k), string.pack('<I4I4I8', 9, 8, #xs)}
    for _, x in ipairs(xs) do t[#t + 1] = s(x) end return table.concat(t) end
  local kv = {s('general.architecture') .. string.pack('<I4', 8) .. s('llama'), u('llama.block_count', 1000000000),
    u('llama.embedding_length', 1 << 30), u('llama.attention.head_count', 8), u('llama.feed_forward_length', 1 << 30),
    u('llama.context_length', 1 << 30), u('llama.attention.head_count_kv', 8),
    s('tokenizer.ggml.model') .. string.pack('<I4', 8) .. s('gpt2'), arr('tokenizer.ggml.tokens', {'a', 'b'}),
    arr('tokenizer.ggml.merges', {'a b'})}
  return 'GGUF' .. string.pack('<I4I8I8', 3, 0, #kv) .. table.concat(kv) end)()"
# a word-vector file claiming 4e9 words in a 4-byte word block
mk "$T/h.qrwv" "'QRWV' .. string.pack('<I4I4I4I8I4I4', 1, 4000000000, 50, 4, 0, 0) .. 'ab\\0\\0'"
# a training checkpoint whose header length is 2^31 in a 24-byte file
mk "$T/ck/checkpoint" "'QRTRAIN\\0' .. string.pack('<I4I4I8', 1, 1 << 31, 0)"
# a sentence encoder whose config.json asks for a 2^30-wide model
mkdir -p "$T/enc"
cp -r tests/fixtures/encoder/tiny/. "$T/enc/"
sed -i 's/"hidden_size": *[0-9]*/"hidden_size": 1073741824/' "$T/enc/config.json"
hostile hostile-8 "assert(qr.model('$T/m.gguf'))" "$T/m.gguf" "needs 8.07e+27 weights but the file's tensors hold only 0"
hostile hostile-9 "assert(qr.wordvec('$T/h.qrwv'))" "$T/h.qrwv" "n_words = 4000000000: a 4-byte word block holds at most 2 words"
hostile hostile-10 "local P = require('qr.precision'); local m = $tiny; m:quantize{weight = 'minmax', act = 'minmax'}
  local c = P.load('fp,w8a8', m); m:lora{rank = 2, slots = P.assign_adapters(c)}
  assert(qr.train{model = m, configs = c, data = {{ids = {1, 2, 3, 4}, targets = {2, 3, 4, -1}}}, steps = 1, batch = 1,
    seq = 8, run_dir = '$T/ck', progress = false})" "$T/ck/checkpoint" "header length 2147483648 exceeds the file (24 bytes)"
hostile hostile-11 "assert(qr.sentence_encoder('$T/enc'))" "$T/enc/config.json" '"hidden_size": expected an integer in [1, 65536]'
finish
