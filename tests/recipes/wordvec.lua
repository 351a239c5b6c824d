-- wordvec.lua - the word-level attack resources from Lua (core/lua/lua_attackres.c)
-- on the committed fixture (tests/fixtures/attacks/: 2,000 words x 50 of the
-- counter-fitted GloVe file and its POS table): qr.wordvec, :neighbours with
-- each option, :pos, :has, :cos, :info, the stop words, qr.attack_resources,
-- and the refusals (a missing file named with the setup command, bad
-- options). Run from the repo root: qrun tests/recipes/wordvec.lua
local T = require("qr.qrtest")

local dir = "tests/fixtures/attacks/"
local wv = assert(qr.wordvec(dir .. "cf2k.qrwv"))   -- its cf2k.pos.tsv comes along

T.eq("wv-lua-1.1 size", #wv, 2000)
local info = wv:info()
T.eq("wv-lua-1.2 info", {words = info.words, dim = info.dim, pos_path = info.pos_path, served = info.served},
     {words = 2000, dim = 50, pos_path = dir .. "cf2k.pos.tsv", served = false})
T.ok("wv-lua-1.3 crc32 as hex", info.crc32:match("^%x%x%x%x%x%x%x%x$") ~= nil)
T.ok("wv-lua-1.4 tostring", tostring(wv):find("qr.Wordvec: " .. dir .. "cf2k.qrwv (2000 words x 50)", 1, true) ~= nil)

-- neighbours: defaults k = 50, min_cos = 0.5, by decreasing cosine
local nb = wv:neighbours("film")
T.eq("wv-lua-2.1 50 neighbours by default", #nb, 50)
local sorted, selfless, above = true, true, true
for i, h in ipairs(nb) do
  if i > 1 and h.cos > nb[i - 1].cos then sorted = false end
  if h.word == "film" then selfless = false end
  if h.cos < 0.5 then above = false end
end
T.ok("wv-lua-2.2 sorted, without the word, cos >= 0.5", sorted and selfless and above)
T.near("wv-lua-2.3 cos is the vectors' cosine", nb[1].cos, wv:cos("film", nb[1].word), 1e-6)
T.eq("wv-lua-2.4 k", #wv:neighbours("Film", {k = 3}), 3)
T.eq("wv-lua-2.5 min_cos 0.99 keeps few", #wv:neighbours("film", {k = 50, min_cos = 0.99}) < 50, true)
local nv = wv:neighbours("film", {k = 50, min_cos = -1, pos = "noun_verb"})
local ok = true
for _, h in ipairs(nv) do if not (h.pos:find("n") or h.pos:find("v")) then ok = false end end
T.ok("wv-lua-2.6 pos = noun_verb: nouns or verbs for 'film'", ok and #nv > 0)
T.eq("wv-lua-2.7 a word it lacks: none", wv:neighbours("qwertyzz"), {})
T.errors("wv-lua-2.8 unknown option", function() wv:neighbours("film", {n = 3}) end, "unknown option 'n'")
T.errors("wv-lua-2.9 bad pos", function() wv:neighbours("film", {pos = "verbs"}) end, "invalid option 'verbs'")
T.errors("wv-lua-2.10 k < 0", function() wv:neighbours("film", {k = -1}) end, "k = %-1")

T.eq("wv-lua-3.1 pos", wv:pos("film"), {noun = true, verb = true})
T.eq("wv-lua-3.2 pos of a function word", wv:pos("the"), {})
local p, msg = wv:pos("qwertyzz")
T.ok("wv-lua-3.3 pos of a word it lacks: nil, message", p == nil and msg:find("no word 'qwertyzz'", 1, true))
T.eq("wv-lua-3.4 has", {wv:has("The"), wv:has("qwertyzz")}, {true, false})
local bare = assert(qr.wordvec(dir .. "cf2k.qrwv", {pos = false}))
local bp, bmsg = bare:pos("film")
T.ok("wv-lua-3.5 no POS table: nil, message", bp == nil and bmsg:find("no POS table", 1, true))
T.errors("wv-lua-3.6 no POS table: a POS match raises", function() bare:neighbours("film", {pos = "same"}) end,
         "needs the POS table")
bare:close()
T.errors("wv-lua-3.7 closed", function() bare:has("film") end, "closed qr.Wordvec")

local sw = qr.stopwords()
T.eq("wv-lua-4.1 266 stop words", #sw, 266)
T.eq("wv-lua-4.2 first and last", {sw[1], sw[266]}, {"a", "yourselves"})
T.eq("wv-lua-4.3 is_stopword", {qr.is_stopword("The"), qr.is_stopword("film")}, {true, false})

local none, err = qr.wordvec(dir .. "missing.qrwv")
T.ok("wv-lua-5.1 a missing file: nil, message naming it and the setup command",
     none == nil and err:find(dir .. "missing.qrwv", 1, true) and err:find("scripts/setup_attacks.sh", 1, true))
local np, perr = qr.wordvec(dir .. "cf2k.qrwv", {pos = dir .. "missing.pos.tsv"})
T.ok("wv-lua-5.2 a missing POS table: nil, message naming it", np == nil and perr:find("missing.pos.tsv", 1, true))
T.errors("wv-lua-5.3 unknown option", function() qr.wordvec(dir .. "cf2k.qrwv", {posx = 1}) end, "unknown option")
T.ok("wv-lua-5.4 the cache folder", qr.attack_cache():match("/attacks$") ~= nil)

T.eq("wv-lua-6.1 nothing served before", qr.attack_resources(wv), nil)
T.eq("wv-lua-6.2 served", wv:info().served, true)
T.eq("wv-lua-6.3 attack_resources returns what was served", qr.attack_resources(nil) == wv, true)
qr.attack_resources(wv)
wv:close()   -- stops the serving
T.eq("wv-lua-6.4 closing the served one stops it", qr.attack_resources(nil), nil)

T.done()
