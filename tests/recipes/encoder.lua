-- encoder.lua - recipe regression test for qr.sentence_encoder (the
-- attacks' sentence-similarity encoder, docs/ENCODER.md): the tiny random
-- BERT of tests/fixtures/encoder/tiny always, the real all-MiniLM-L6-v2
-- when scripts/fetch_encoder.sh has put it in the cache.
-- The numbers themselves are checked against transformers in
-- tests/test_encoder.c; this checks the binding.
-- Run from the repo root: qrun tests/recipes/encoder.lua
local T = require("qr.qrtest")

local function norm(v)
  local s = 0
  for _, x in ipairs(v) do s = s + x * x end
  return math.sqrt(s)
end

-- ---- the tiny model ----
local enc = assert(qr.sentence_encoder("tests/fixtures/encoder/tiny"))
local info = enc:info()
T.eq("enc-1.1", {info.dim, info.n_layer, info.n_head, info.max_len, info.normalize}, {32, 2, 4, 48, true})
T.ok("enc-1.2", tostring(enc):find("qr.SentenceEncoder", 1, true) ~= nil, tostring(enc))
T.eq("enc-1.3", enc:tokenize(""), {2, 3}) -- [CLS] [SEP] of the tiny vocabulary
T.ok("enc-1.4", math.type(enc:tokenize("the cat")[2]) == "integer")
T.eq("enc-1.5", #enc:tokenize(string.rep("the cat ", 100)), 48) -- cut to max_seq_length

local texts = {"The cat sat on the mat.", "A dog is running in the park!", "", "東京 and 北京"}
local vs = enc:embed(texts)
T.eq("enc-2.1", #vs, 4)
T.eq("enc-2.2", #vs[1], 32)
T.near("enc-2.3", norm(vs[2]), 1, 1e-6)
T.near("enc-2.4", norm(vs[3]), 1, 1e-6) -- the empty text pools [CLS] [SEP]
T.eq("enc-2.5", enc:embed({}), {})
-- a text, its vector, and the batched form agree
local s12 = enc:similarity(texts[1], texts[2])
T.near("enc-3.1", enc:similarity(texts[1], texts[1]), 1, 1e-6)
T.near("enc-3.2", enc:similarity(vs[1], texts[2]), s12, 1e-6)
T.near("enc-3.3", enc:similarity(vs[1], vs[2]), s12, 1e-6)
local sims = enc:similarities(texts[1], texts)
T.eq("enc-3.4", #sims, 4)
for i = 1, 4 do T.near("enc-3." .. (4 + i), sims[i], enc:similarity(vs[1], vs[i]), 1e-6) end
T.near("enc-3.9", enc:similarities(vs[1], {texts[2]})[1], s12, 1e-6)

-- misuse raises, a missing directory is nil + message
T.errors("enc-4.1", function() enc:embed("not a table") end, "table expected")
T.errors("enc-4.2", function() enc:embed({"ok", 7}) end, "element %[2%]: expected string")
T.errors("enc-4.3", function() enc:similarity({1, 2, 3}, "x") end, "a vector of 32 numbers")
T.errors("enc-4.4", function() enc:similarities("x", {false}) end, "element %[1%]")
local none, msg = qr.sentence_encoder("/no/such/encoder")
T.eq("enc-4.5", none, nil)
T.ok("enc-4.6", msg and msg:find("/no/such/encoder", 1, true) and msg:find("fetch_encoder.sh", 1, true), msg)
local bad, bmsg = qr.sentence_encoder("tests/fixtures/encoder")
T.eq("enc-4.7", bad, nil)
T.ok("enc-4.8", bmsg and bmsg:find("config.json", 1, true), bmsg)
enc:close()
enc:close()
T.ok("enc-4.9", tostring(enc):find("closed", 1, true) ~= nil)
T.errors("enc-4.10", function() enc:embed({"x"}) end, "closed qr.SentenceEncoder")

-- ---- the real model (the default directory), when fetched ----
local real, rmsg = qr.sentence_encoder()
if not real then
  T.ok("real-1.0", rmsg:find("fetch_encoder.sh", 1, true), rmsg)
  T.skip("real-1.1", rmsg)
else
  local ri = real:info()
  T.eq("real-1.1", {ri.dim, ri.n_layer, ri.n_head, ri.max_len, ri.n_vocab}, {384, 6, 12, 256, 30522})
  T.eq("real-1.2", real:tokenize("Hello, world!"), {101, 7592, 1010, 2088, 999, 102})
  local q = "What is the capital of France?"
  local s = real:similarities(q, {"Which city is the capital of France?", "The quick brown fox jumps over the lazy dog."})
  T.ok("real-1.3", s[1] > 0.9 and s[2] < 0.2, string.format("%.4f %.4f", s[1], s[2]))
  T.near("real-1.4", real:similarity(q, "Which city is the capital of France?"), s[1], 1e-6)
  real:close()
end

-- ---- the host service similarity (ABI 1.3), as an attack plugin calls it ----
do
  T.errors("enc-serve-1", function() qr.attack_similarity("a b", {"a c"}) end, "fetch_encoder.sh")
  local e2 = assert(qr.sentence_encoder("tests/fixtures/encoder/tiny"))
  T.eq("enc-serve-2", qr.attack_encoder(e2), nil)
  local texts = {"the red hat", "a blue hat", "", "the red hat"}
  local got, want = qr.attack_similarity("the red hat", texts), e2:similarities("the red hat", texts)
  local md = 0
  for i = 1, #texts do md = math.max(md, math.abs(got[i] - want[i])) end
  print(string.format("  similarity service vs enc:similarities: max diff %.3g (tolerance 1e-6)", md))
  T.ok("enc-serve-3", #got == 4 and md <= 1e-6, string.format("%d results, max diff %.3g", #got, md))
  T.near("enc-serve-4", got[4], 1.0, 1e-6)
  T.eq("enc-serve-5", qr.attack_similarity("x", {}), {})
  e2:close()
  T.errors("enc-serve-6", function() qr.attack_similarity("a", {"b"}) end, "was closed")
  T.eq("enc-serve-7", qr.attack_encoder(nil) ~= nil, true)
  T.errors("enc-serve-8", function() qr.attack_similarity("a", {"b"}) end, "no sentence encoder served")
  T.errors("enc-serve-9", function() qr.attack_similarity("a", {"b", 3 < 4}) end, "texts%[2%]")
end

T.done()
