-- bert_attack.lua - the BERT-Attack-style plugin: candidates from a causal
-- LM served by the host (lm_candidates), on SmolLM2 (the suite's default
-- model; skipped without it) with toy victims whose score depends on known
-- words; the sentence constraint on the tiny random encoder fixture.
local T = require("qr.qrtest")
local wv = assert(qr.wordvec(qr.source_dir .. "/tests/fixtures/attacks/cf2k.qrwv")) -- the stop words come with it
qr.attack_resources(wv)
T.errors("ba-1.1 no LM served", function()
  qr.attack("bert_attack", {sim = -1}):perturb("Which team won the game", function() return 1 end, 2)
end, "qr.attack_lm")
local path = qr.default_model()
if not path then
  T.skip("ba-2", "the default model is not there (scripts/fetch_model.sh)")
  T.done()
end
local lm = assert(qr.model(path))
qr.attack_lm(lm)
local text = "Which team won the game"
local function words(s) local t = {} for x in s:gmatch("[%a][%a'%-]*") do t[#t + 1] = x end return t end
local calls = 0
local function victim(c) calls = calls + 1 return c:find("%f[%a]team%f[%A]") and 1 or 0.2 end
local out = qr.attack("bert_attack", {sim = -1, k = 8}):perturb(text, victim, 5)
local ow, tw = words(out), words(text)
print(string.format("  bert_attack: %q -> %q in %d queries", text, out, calls))
T.eq("ba-2.1 the word count", #ow, #tw)
T.ok("ba-2.2 team (the vulnerable word) replaced", ow[2] ~= "team", out)
local s = text:find("team", 1, true)
local cands = {}
for _, c in ipairs(qr.attack_lm_candidates(text, s - 1, 4, 8)) do cands[c.word] = true end
T.ok("ba-2.3 by one of the LM's candidates", cands[ow[2]] == true, tostring(ow[2]))
T.ok("ba-2.4 stop words kept", ow[1] == "Which" and ow[3] == "won" and ow[4] == "the", out)
-- at most 40% of the words (5 words: 2), whatever the budget
local o3 = qr.attack("bert_attack", {sim = -1, k = 4}):perturb(text, function(c) return #c end, 10)
local n3 = 0
for i, w in ipairs(words(o3)) do if w ~= tw[i] then n3 = n3 + 1 end end
T.ok("ba-3.1 at most floor(0.4 x 5) = 2 words replaced", n3 <= 2, o3)
-- deterministic
T.eq("ba-4.1", qr.attack("bert_attack", {sim = -1, k = 4}):perturb(text, victim, 2),
  qr.attack("bert_attack", {sim = -1, k = 4}):perturb(text, victim, 2))
-- the sentence constraint: with sim = 1 nothing different passes
local enc = assert(qr.sentence_encoder(qr.source_dir .. "/tests/fixtures/encoder/tiny"))
qr.attack_encoder(enc)
local o5 = qr.attack("bert_attack", {sim = 1, k = 4}):perturb(text, victim, 2)
T.ok("ba-5.1", o5 == text or qr.attack_similarity(text, {o5})[1] >= 1 - 1e-6, o5)
T.errors("ba-6.1", function() qr.attack("bert_attack", {max_frac = 2}) end, "max_frac")
-- batched (ABI 1.4): the same candidates asked in the same order and the
-- same text as one query at a time, the sentence constraint off and on
do
  local A = require("attack_toy")
  T.eq("ba-7.1 bert_attack has perturb_batch", qr.attack("bert_attack"):batched(), true)
  local runs, same, biggest, bad = 0, 0, 0, nil
  -- one option set: the sentence constraint on, batches of 4 (a batch boundary inside a word's candidates).
  -- Each run asks the LM for every word's candidates; with two sets this test took 365 s of CI's ASan suite
  for _, opts in ipairs{{sim = 0.1, k = 6, batch = 4}} do
    for edits = 2, 2 do
      local sq, bt = A.both(qr.attack("bert_attack", opts), text, edits, 0, {"team", "game"})
      runs = runs + 1
      local ok = sq.out == bt.out and T.show(sq.v.log) == T.show(bt.v.log) and #bt.v.sizes > 0
      same = same + (ok and 1 or 0)
      biggest = math.max(biggest, A.largest(bt.v))
      if not ok and not bad then bad = string.format("edits %d: %q vs %q", edits, sq.out, bt.out) end
    end
  end
  T.eq("ba-7.2 batched == sequential: text and queries (" .. runs .. " runs)", same, runs)
  if bad then print("  first difference: " .. bad) end
  T.ok("ba-7.3 a word's candidates go in one batch", biggest > 1, "largest batch " .. biggest)
  print(string.format("  bert_attack: %d runs batched == sequential, largest batch %d", runs, biggest))
end
-- the candidates' loglik (scored together through their common prefix) is
-- the whole text's log-likelihood that one forward per candidate computes
do
  local tok = lm.tokenizer
  local cs = qr.attack_lm_candidates(text, s - 1, 4, 8)
  local worst = 0
  for _, c in ipairs(cs) do
    local full = "\n" .. text:sub(1, s - 1) .. c.word .. text:sub(s + 4)
    local ids = tok:encode(full)
    local tg = {}
    for i = 1, #ids do tg[i] = ids[i + 1] or -1 end
    local direct = -lm:proxy({{ids = ids, targets = tg}}).nll * (#ids - 1)
    worst = math.max(worst, math.abs(direct - c.loglik))
  end
  print(string.format("  lm_candidates loglik vs one forward each: max |diff| %.2e nats over %d (tolerance 1e-3)", worst, #cs))
  T.ok("ba-8.1 loglik = the whole text's log-likelihood (|diff| <= 1e-3 nats)", #cs > 0 and worst <= 1e-3,
    string.format("%.3e", worst))
end
qr.attack_lm(nil)
qr.attack_encoder(nil)
qr.attack_resources(nil)
T.done()
