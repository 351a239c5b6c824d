-- text.lua - recipe regression test for the text side of the qr module:
-- tokenizer, SQuAD loading/metric/CI, qr.opts, qr.json, and the default
-- model's tokenizer and generation (stop strings, max_new_tokens, batching).
-- Run from the repo root: qrun tests/recipes/text.lua
local T = require("qr.qrtest")

-- ---- tokenizer (GPT-2 files) ----
local dir = "tests/data/gpt2-tokenizer/"
local tok = assert(qr.tokenizer{vocab = dir .. "encoder.json", merges = dir .. "vocab.bpe"})
T.eq("tok-1.1", tok:encode("Hello world"), {15496, 995})
T.eq("tok-1.2", tok:decode({15496, 995}), "Hello world")
T.eq("tok-1.3", tok:n_vocab(), 50257)
T.eq("tok-1.4", tok:token_id("Hello"), 15496)
T.eq("tok-1.5", tok:token_str(995), "\u{120}world") -- "Ġworld"
T.eq("tok-1.6", tok:token_id("no such token, surely"), nil)
T.eq("tok-1.7", tok:bos(), 50256)
T.eq("tok-1.8", tok:eos(), 50256)
T.eq("tok-1.9", tok:encode(""), {})
T.ok("tok-1.10", math.type(tok:encode("a")[1]) == "integer", "ids are Lua integers")
T.ok("tok-1.11", tostring(tok):find("qr.Tokenizer", 1, true) ~= nil, tostring(tok))
T.eq("tok-1.12", tok:token_str(-1), nil)

-- every reference case in cases.jsonl: ids match and decode gives the text back
do
  local n, bad_enc, bad_dec, first = 0, 0, 0, nil
  for line in io.lines(dir .. "cases.jsonl") do
    if line:find("%S") then
      local c = qr.json.decode(line)
      n = n + 1
      local ids = tok:encode(c.text)
      local same = #ids == #c.ids
      for i = 1, #ids do same = same and ids[i] == c.ids[i] end
      if not same then bad_enc = bad_enc + 1; first = first or c.text end
      if tok:decode(c.ids) ~= c.text then bad_dec = bad_dec + 1 end
    end
  end
  T.ok("tok-2.1", n > 0, "cases.jsonl has no cases")
  T.eq("tok-2.2", bad_enc, 0)
  if bad_enc > 0 then print("  first mismatch: " .. T.show(first)) end
  T.eq("tok-2.3", bad_dec, 0)
end

-- close is idempotent; a closed tokenizer refuses use
do
  local t2 = assert(qr.tokenizer(dir .. "encoder.json", dir .. "vocab.bpe"))
  t2:close()
  t2:close()
  T.ok("tok-3.1", tostring(t2):find("closed", 1, true) ~= nil, tostring(t2))
  T.errors("tok-3.2", function() t2:encode("x") end, "closed qr.Tokenizer")
end

-- known ids for non-ASCII strings (from cases.jsonl), and the round trip
do
  local t3 = assert(qr.tokenizer{vocab = dir .. "encoder.json", merges = dir .. "vocab.bpe"})
  T.eq("tok-4.1", t3:encode("Unicode: café naïve résumé"),
       {3118, 291, 1098, 25, 40304, 41492, 40560, 16345, 2634})
  T.eq("tok-4.2", t3:encode("日本語のテキスト"), {33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302})
  T.eq("tok-4.3", t3:decode({33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302}), "日本語のテキスト")
  t3:close()
end

-- ---- SQuAD ----
local ex, info = qr.squad.load("datasets/squad/tiny.json")
T.eq("squad-1.1", #ex, 80)
T.eq("squad-1.2", ex[1].title, "Super_Bowl_50")
T.eq("squad-1.3", ex[1].question, "Which NFL team represented the AFC at Super Bowl 50?")
T.eq("squad-1.4", ex[1].answers, {"Denver Broncos", "Denver Broncos", "Denver Broncos"})
T.eq("squad-1.5", ex[1].id, "56be4db0acb8001400a502ec")
T.ok("squad-1.6", ex[1].context:sub(1, 13) == "Super Bowl 50", ex[1].context:sub(1, 20))
T.eq("squad-1.7", info.skipped, 0)
do -- every answer sits where answer_start (code points) says
  local bad = 0
  for _, e in ipairs(ex) do
    for a, text in ipairs(e.answers) do
      local b = utf8.offset(e.context, e.answer_starts[a] + 1)
      if e.context:sub(b, b + #text - 1) ~= text then bad = bad + 1 end
    end
  end
  T.eq("squad-1.8", bad, 0)
end

local function score(pred, answers)
  local em, f1 = qr.squad.score(pred, answers)
  return {em, f1}
end
T.near("squad-2.1", score("Denver Broncos", {"Denver Broncos"}), {1, 1}, 1e-12)
T.near("squad-2.2", score("the Denver Broncos!", {"Denver Broncos"}), {1, 1}, 1e-12)
T.near("squad-2.3", score("Broncos", {"Denver Broncos"}), {0, 2 / 3}, 1e-12)
T.near("squad-2.4", score("Carolina", {"Denver Broncos"}), {0, 0}, 1e-12)
T.near("squad-2.5", score("Panthers", {"Denver Broncos", "Carolina Panthers"}), {0, 2 / 3}, 1e-12)
T.near("squad-2.6", score("Denver Broncos", "Denver Broncos"), {1, 1}, 1e-12)
T.near("squad-2.7", score("Santa Clara, California", {"Santa Clara"}), {0, 2 * (1 * 2/3) / (1 + 2/3)}, 1e-12)

do
  local lo, hi = qr.squad.ci({1, 1, 1, 1})
  T.near("squad-3.1", {lo, hi}, {1, 1}, 1e-12)
  local v = {}
  for i = 1, 200 do v[i] = (i % 4 == 0) and 1 or 0 end -- mean 0.25
  local lo1, hi1 = qr.squad.ci(v, {iters = 500, seed = 7, level = 0.9})
  local lo2, hi2 = qr.squad.ci(v, {iters = 500, seed = 7, level = 0.9})
  T.ok("squad-3.2", lo1 < 0.25 and 0.25 < hi1 and hi1 - lo1 < 0.2,
       string.format("interval [%g, %g] should bracket 0.25 and be narrow", lo1, hi1))
  T.near("squad-3.3", {lo1, hi1}, {lo2, hi2}, 0) -- same seed, same interval
end

-- ---- qr.opts ----
local spec = {
  {"model", nil, "model path"},
  {"limit", 100, "number of examples"},
  {"temp", 0.7, "temperature"},
  {"verbose", false, "print more"},
  {"out-dir", "out", "where results go"},
}
do
  local o = qr.opts(spec, {})
  T.eq("opts-1.1", {o.model, o.limit, o.temp, o.verbose, o.out_dir, o["out-dir"]},
       {nil, 100, 0.7, false, "out", "out"})
  o = qr.opts(spec, {"--limit=5", "--temp=1", "--verbose", "--out-dir=x", "--model=m.gguf", "pos1", "--", "--pos2"})
  T.eq("opts-1.2", {o.model, o.limit, o.temp, o.verbose, o.out_dir, o["out-dir"]},
       {"m.gguf", 5, 1.0, true, "x", "x"})
  T.eq("opts-1.3", math.type(o.limit), "integer")
  T.eq("opts-1.4", math.type(o.temp), "float")
  T.eq("opts-1.5", {o[1], o[2]}, {"pos1", "--pos2"})
  T.eq("opts-1.6", qr.opts(spec, {"--verbose", "--no-verbose"}).verbose, false)
  T.eq("opts-1.7", qr.opts(spec, {"--verbose=false"}).verbose, false)
  T.eq("opts-1.8", qr.opts(spec, {"--out_dir=y"}).out_dir, "y")
  T.eq("opts-1.9", qr.opts(spec, {"--limit=-3"}).limit, -3)
  T.eq("opts-1.10", qr.opts(spec, {"--model="}).model, "")
  T.eq("opts-1.11", qr.opts({{"n", nil, "typed", type = "integer"}}, {"--n=4"}).n, 4)
end
T.errors("opts-2.1", function() qr.opts(spec, {"--nope=1"}) end, "unknown option '--nope'")
T.errors("opts-2.2", function() qr.opts(spec, {"--limit=abc"}) end, "option --limit: expected integer, got 'abc'")
T.errors("opts-2.3", function() qr.opts(spec, {"--limit=1.5"}) end, "--limit: expected integer")
T.errors("opts-2.4", function() qr.opts(spec, {"--limit"}) end, "--limit: expected --limit=<integer>")
T.errors("opts-2.5", function() qr.opts(spec, {"--temp=warm"}) end, "--temp: expected number")
T.errors("opts-2.6", function() qr.opts(spec, {"--verbose=maybe"}) end, "--verbose: expected boolean")
T.errors("opts-2.7", function() qr.opts(spec, {"--no-limit"}) end, "unknown option '--no-limit'")
T.errors("opts-2.8", function() qr.opts(spec, {"-x"}) end, "unknown option '-x'")
T.errors("opts-2.9", function() qr.opts({{"a", {}, "bad default"}}, {}) end, "default must be")

-- ---- qr.json ----
do
  local v = {name = "x\"y\n\u{e9}", n = 3, f = 2.5, t = true, list = {1, 2, {a = "b"}}, empty = {}}
  local s = qr.json.encode(v)
  T.eq("json-1.1", qr.json.decode(s), v)
  T.eq("json-1.2", qr.json.encode({b = 1, a = 2}), '{"a":2,"b":1}') -- keys sorted
  T.eq("json-1.3", qr.json.encode({1, 2, 3}), "[1,2,3]")
  T.eq("json-1.4", qr.json.decode(qr.json.encode(v, {indent = true})), v)
  T.ok("json-1.5", qr.json.encode(v, {indent = true}):find("\n", 1, true) ~= nil, "indent adds newlines")
  T.eq("json-1.6", math.type(qr.json.decode("[7]")[1]), "integer")
  T.eq("json-1.7", qr.json.decode("[1, null, 3]")[2], qr.json.null)
  T.eq("json-1.8", qr.json.encode({qr.json.null}), "[null]")
  T.eq("json-1.9", qr.json.decode(' "\\u00e9" '), "\u{e9}")
  T.eq("json-1.10", qr.json.encode({[1] = "a", [3] = "c"}), '{"1":"a","3":"c"}')
  -- JSON text is UTF-8: a stray byte (half a character, as a byte-level tokenizer can generate) becomes U+FFFD;
  -- valid text, surrogate-free, passes unchanged
  T.eq("json-1.11", qr.json.encode({"a\xff b", "\xe2\x82", "caf\u{e9} \u{1F600}", ["k\xc3"] = 1}),
    '{"1":"a\u{FFFD} b","2":"\u{FFFD}\u{FFFD}","3":"caf\u{e9} \u{1F600}","k\u{FFFD}":1}')
  T.eq("json-1.12", qr.json.encode("\xed\xa0\x80"), '"\u{FFFD}\u{FFFD}\u{FFFD}"') -- an encoded surrogate is not UTF-8
  -- numbers read back bit for bit (cJSON's printer took %.15g when it read back within an epsilon: an ulp lost),
  -- in the shortest of 15, 16, 17 digits; integers exactly, beyond 2^53 too
  do
    local s, bad, first = 12345, 0, nil
    for i = 1, 20000 do
      s = (s * 6364136223846793005 + 1442695040888963407) -- wraps: a 64-bit LCG
      local x = (((s >> 11) | 1) / 2 ^ 53) * 10.0 ^ ((s & 0x3f) - 32) * ((s & 0x40) ~= 0 and -1 or 1)
      local y = qr.json.decode(qr.json.encode({x}))[1]
      if y ~= x then bad, first = bad + 1, first or string.format("%.17g -> %.17g", x, y) end
    end
    T.ok("json-1.13", bad == 0, string.format("%d of 20000 doubles changed on a round trip (%s)", bad, first))
  end
  T.eq("json-1.14", qr.json.decode(qr.json.encode({0.025196269277044298}))[1], 0.025196269277044298)
  T.eq("json-1.15", qr.json.encode({0.1, 1 / 3, 2.5, 1e300, 2 ^ 62 | 0, -7}),
    "[0.1,0.3333333333333333,2.5,1e+300,4611686018427387904,-7]")

  local path = os.tmpname()
  T.eq("json-2.1", qr.json.write(path, v), true)
  T.eq("json-2.2", qr.json.read(path), v)
  os.remove(path)
end

-- ---- misc ----
T.eq("misc-1.1", qr.version, "0.1.0")
T.ok("misc-1.2", type(qr.now()) == "number" and qr.now() >= 0, "qr.now is a number")
do
  local t0 = qr.now()
  T.ok("misc-1.3", qr.now() >= t0, "qr.now is monotonic")
end
T.eq("misc-1.4", qr.getenv("QRUN_SURELY_UNSET_VAR"), nil)
T.eq("misc-1.5", qr.getenv("QRUN_SURELY_UNSET_VAR", "dflt"), "dflt")
T.eq("misc-1.6", type(qr.isatty()), "boolean")
T.eq("misc-1.7", qr.sha256("datasets/squad/tiny.json"),
     "29368a21b715b59f788dc11326b4b6f66a63845c938e15215bbb21681618f333")
T.eq("misc-1.8", require("qr"), qr)

-- ---- the default model (SmolLM2): tokenizer and generation ----
-- scripts/setup.sh always fetches the model, so a missing one is a failure.
local mpath, merr = qr.default_model()
local model
if mpath then model, merr = qr.model(mpath) end
T.ok("model-1.0", model ~= nil, "the default model is needed (scripts/setup.sh or scripts/fetch_model.sh, "
  .. "or QRUN_MODEL): " .. tostring(merr))
if model then
  local mt = model.tokenizer
  T.ok("model-1.1", mt ~= nil and tostring(mt):find("qr.Tokenizer", 1, true) ~= nil, tostring(mt))
  T.ok("model-1.2", rawequal(model.tokenizer, mt), "model.tokenizer is one object")

  -- ids from tests/fixtures/smollm2_tokenizer.jsonl (Hugging Face's tokenizer)
  T.eq("mtok-1.1", mt:encode("Hello world"), {19556, 905})
  T.eq("mtok-1.2", mt:encode("Unicode: café naïve résumé"), {3706, 15817, 42, 37366, 15486, 46494, 412, 2756, 5422, 2756})
  T.eq("mtok-1.3", mt:encode("Łódź, Kraków and Gdańsk"),
       {144, 219, 7342, 84, 144, 135, 28, 45727, 7342, 103, 284, 452, 4933, 41146, 5746})
  -- decode(encode(s)) == s
  local strings = {"Hello world", " leading and trailing  ", "Tabs\tand\nnewlines\n\n",
    "Unicode: café naïve résumé", "日本語のテキスト", "Ελληνικά και Русский текст", "Emoji 🙂 and ©®™",
    "Łódź, Kraków and Gdańsk", "x = y + 3 * (z - 1)", ""}
  for i, str in ipairs(strings) do
    T.eq("mtok-2." .. i, mt:decode(mt:encode(str)), str)
  end

  -- generation (greedy). eos = false so the lengths do not depend on when
  -- the model would have ended its answer.
  local prompt = "<|im_start|>user\nWrite a sentence about the sea.<|im_end|>\n<|im_start|>assistant\n"
  local texts, info = model:generate({prompt}, {max_new_tokens = 16, eos = false})
  local full = texts[1]
  T.eq("gen-1.1", #info.ids[1], 16)
  T.eq("gen-1.2", info.stopped[1], "length")
  T.eq("gen-1.3", mt:decode(info.ids[1]), full)
  T.ok("gen-1.4", #full >= 12, "16 tokens give at least 12 bytes of text, got " .. T.show(full))
  T.eq("gen-1.5", {math.type(info.prefill_tokens), math.type(info.decode_tokens)}, {"integer", "integer"})

  -- max_new_tokens
  local t5, i5 = model:generate({prompt}, {max_new_tokens = 5, eos = false})
  T.eq("gen-2.1", #i5.ids[1], 5)
  T.eq("gen-2.2", i5.stopped[1], "length")
  T.eq("gen-2.3", i5.ids[1], {table.unpack(info.ids[1], 1, 5)}) -- the same greedy start
  T.eq("gen-2.4", t5[1], mt:decode(i5.ids[1]))
  local _, i1 = model:generate({prompt}, {max_new_tokens = 1, eos = false})
  T.eq("gen-2.5", {#i1.ids[1], i1.stopped[1]}, {1, "length"})
  T.errors("gen-2.6", function() model:generate({prompt}, {max_new_tokens = 0}) end,
    "opts.max_new_tokens = 0: expected 1..")
  T.errors("gen-2.7", function() model:generate({prompt}, {batch = 0}) end, "opts.batch = 0: expected >= 1")
  local t0, i0 = model:generate({}, {max_new_tokens = 4})
  T.eq("gen-2.8", {#t0, #i0.ids}, {0, 0}) -- no prompts: nothing to do, no error

  -- stop strings: a piece of the unstopped text, taken from its second
  -- half; the result is the text before its first occurrence
  if #full >= 12 then
    local k = #full // 2
    local stop = full:sub(k, k + 2)
    local cut = full:sub(1, full:find(stop, 1, true) - 1)
    local ts, is = model:generate({prompt}, {max_new_tokens = 16, eos = false, stop = stop})
    T.eq("stop-1.1", ts[1], cut)
    T.eq("stop-1.2", is.stopped[1], "stop")
    T.ok("stop-1.3", #is.ids[1] < 16, "stopped early: " .. #is.ids[1] .. " tokens")
    T.ok("stop-1.4", not ts[1]:find(stop, 1, true), "the stop string is not in the text: " .. T.show(ts[1]))
    -- an array: the earliest match of any of them wins; unmatched ones are ignored
    local later = full:sub(#full - 1)
    local ta, ia = model:generate({prompt}, {max_new_tokens = 16, eos = false,
      stop = {"\u{1}never\u{1}", later, stop}})
    local want = full:sub(1, math.min(full:find(stop, 1, true), full:find(later, 1, true)) - 1)
    T.eq("stop-1.5", {ta[1], ia.stopped[1]}, {want, "stop"})
    -- a stop string never produced: runs to max_new_tokens
    local tn, inn = model:generate({prompt}, {max_new_tokens = 16, eos = false, stop = {"\u{1}never\u{1}"}})
    T.eq("stop-1.6", {tn[1], inn.stopped[1]}, {full, "length"})
  end

  -- a batch of 3 prompts of different lengths equals each generated alone
  local prompts = {
    "The capital of France is",
    "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a small village by the river, there lived",
  }
  local opts = {max_new_tokens = 8, eos = false, batch = 3}
  local tb, ib = model:generate(prompts, opts)
  T.eq("batch-1.1", {#tb, #ib.ids, #ib.stopped}, {3, 3, 3})
  for i, p in ipairs(prompts) do
    local ta1, ia1 = model:generate({p}, opts)
    T.eq("batch-1." .. (i + 1), {tb[i], ib.ids[i]}, {ta1[1], ia1.ids[1]})
  end
  -- two groups (batch = 2) give the same as one
  local t2g = model:generate(prompts, {max_new_tokens = 8, eos = false, batch = 2})
  T.eq("batch-1.5", t2g, tb)
  -- token-id prompts give the same as the strings they encode
  local tids = model:generate({mt:encode(prompts[1])}, opts)
  T.eq("batch-1.6", tids[1], tb[1])
end

T.done()
