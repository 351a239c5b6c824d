-- textfooler.lua - the textfooler attack plugin on the committed 2,000-word
-- fixture of the counter-fitted embedding (tests/fixtures/attacks/cf2k.*)
-- and the tiny random sentence encoder (tests/fixtures/encoder/tiny), with
-- toy victims whose score depends on known words.
local T = require("qr.qrtest")
local wv = assert(qr.wordvec(qr.source_dir .. "/tests/fixtures/attacks/cf2k.qrwv"))
local enc = assert(qr.sentence_encoder(qr.source_dir .. "/tests/fixtures/encoder/tiny"))

-- no resources served: refused naming what is missing
T.errors("tf-1.1", function() qr.attack("textfooler"):perturb("the movie was good", function() return 1 end, 2) end,
  "setup_attacks.sh")
qr.attack_resources(wv)
T.errors("tf-1.2", function()
  qr.attack("textfooler"):perturb("the movie was good", function() return 1 end, 2)
end, "fetch_encoder.sh")
qr.attack_encoder(enc)

local function words(s) local t = {} for x in s:gmatch("[%a][%a'%-]*") do t[#t + 1] = x end return t end
local text = "The team won the game in the city"
-- the victim: confident while "game" is there (the known vulnerable word),
-- a little less for every other change; counts its queries ("won" is one of
-- TextFooler's stop words: the "won" of "won't")
local function victim()
  local v = {n = 0}
  function v.fn(c)
    v.n = v.n + 1
    local s = c:find("%f[%a]game%f[%A]") and 1.0 or 0.1
    for _, w in ipairs{"team", "won", "city"} do if not c:find(w, 1, true) then s = s - 0.01 end end
    return s
  end
  return v
end
local v = victim()
local out = qr.attack("textfooler", {sim = -1}):perturb(text, v.fn, 1)
local ow, tw = words(out), words(text)
T.eq("tf-2.1 one word replaced: the vulnerable one", #ow, #tw)
local changed = {}
for i = 1, #tw do if ow[i] ~= tw[i] then changed[#changed + 1] = i end end
T.eq("tf-2.2", changed, {5})
local cands = {}
for _, c in ipairs(wv:neighbours("game", {k = 50, min_cos = 0.5, pos = "noun_verb"})) do cands[c.word] = true end
T.ok("tf-2.3 the replacement is one of game's candidates", cands[ow[5]] == true, tostring(ow[5]))
T.eq("tf-2.4 won, a stop word, is kept", ow[3], "won")
print(string.format("  textfooler: %q -> %q in %d queries", text, out, v.n))
-- stop words never edited: "the", "in" stay whatever the victim wants
local v2 = {fn = function(c) return (c:find("The ", 1, true) and 0.5 or 0) + (c:find(" in ", 1, true) and 0.5 or 0) end}
local out2 = qr.attack("textfooler", {sim = -1}):perturb(text, v2.fn, 8)
local w2 = words(out2)
T.ok("tf-3.1 stop words kept", w2[1] == "The" and w2[4] == "the" and w2[6] == "in" and w2[7] == "the", out2)
-- the budget bounds the words replaced
for b = 0, 3 do
  local o = qr.attack("textfooler", {sim = -1}):perturb(text, function(c) return #c end, b)
  local n, ww = 0, words(o)
  for i = 1, math.min(#ww, #tw) do if ww[i] ~= tw[i] then n = n + 1 end end
  T.ok("tf-4." .. b .. " at most " .. b .. " replaced", n <= b, o)
end
-- the sentence constraint: an impossible threshold leaves the text; every
-- accepted edit's window passes the threshold (checked through the service)
local o5 = qr.attack("textfooler", {sim = 1}):perturb(text, victim().fn, 3)
local s5 = qr.attack_similarity(text, {o5})[1]
T.ok("tf-5.1 sim = 1 keeps only windows identical in the encoder's eyes", o5 == text or s5 >= 1 - 1e-6, o5)
local thr = 0.5
local o6 = qr.attack("textfooler", {sim = thr, window = 101}):perturb(text, victim().fn, 1)
if o6 ~= text then
  T.ok("tf-5.2 the accepted edit passes the threshold", qr.attack_similarity(text, {o6})[1] >= thr, o6)
else
  T.ok("tf-5.2 nothing passed the threshold", true)
end
-- deterministic
T.eq("tf-6.1", qr.attack("textfooler", {sim = -1}):perturb(text, victim().fn, 2),
  qr.attack("textfooler", {sim = -1}):perturb(text, victim().fn, 2))
-- capitalisation kept
local o7 = qr.attack("textfooler", {sim = -1}):perturb("Game over", function(c) return c:find("Game", 1, true) and 1 or 0 end, 1)
T.ok("tf-7.1 a capitalised word is replaced by a capitalised one", o7 ~= "Game over" and o7:match("^%u%l") ~= nil, o7)
-- batched (ABI 1.4): the same candidates asked in the same order and the
-- same text as one query at a time, with the sentence constraint off and on
do
  local A = require("attack_toy")
  T.eq("tf-9.1 textfooler has perturb_batch", qr.attack("textfooler"):batched(), true)
  local runs, same, biggest, bad = 0, 0, 0, nil
  local texts = {text, "The big team played a good game in the old city", "Game over"}
  for _, tx in ipairs(texts) do
    for _, opts in ipairs{{sim = -1}, {sim = 0.5, window = 101}, {sim = -1, k = 5, batch = 2}} do
      for edits = 1, 3 do
        local sq, bt = A.both(qr.attack("textfooler", opts), tx, edits, 0, {"game", "team", "city", "Game"})
        runs = runs + 1
        local ok = sq.out == bt.out and T.show(sq.v.log) == T.show(bt.v.log) and #sq.v.sizes == 0 and #bt.v.sizes > 0
        same = same + (ok and 1 or 0)
        biggest = math.max(biggest, A.largest(bt.v))
        if not ok and not bad then bad = string.format("%q edits %d: %q vs %q", tx, edits, sq.out, bt.out) end
      end
    end
  end
  T.eq("tf-9.2 batched == sequential: text and queries (" .. runs .. " runs)", same, runs)
  if bad then print("  first difference: " .. bad) end
  T.ok("tf-9.3 a word's neighbours go in one batch", biggest > 5, "largest batch " .. biggest)
  print(string.format("  textfooler: %d runs batched == sequential, largest batch %d", runs, biggest))
end
-- bad options
T.errors("tf-8.1", function() qr.attack("textfooler", {k = 0}) end, "k")
T.errors("tf-8.2", function() qr.attack("textfooler", {pos = "verb"}) end, "pos")
T.errors("tf-8.3", function() qr.attack("textfooler", {sim = 2}) end, "sim")
T.errors("tf-8.4", function() qr.attack("textfooler", {nope = 1}) end, "nope")
qr.attack_resources(nil)
qr.attack_encoder(nil)
T.done()
