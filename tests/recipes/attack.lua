-- attack.lua - attacks from Lua: qr.attack(name, opts):perturb(text,
-- query_fn, budget, seed) with the `typo` plugin and toy query functions
-- (score = fraction of target words still intact): deterministic for a
-- seed, the budget bounds the words edited, the query is called with
-- candidate strings, an error in query_fn ends the attack and is raised
-- again unchanged (a string or any value), bad options and arguments are
-- refused naming them, and close() (even from inside query_fn). Batched
-- queries (ABI 1.4): the batched attack asks the victim exactly what the
-- sequential one asks, in the same order, and returns the same text;
-- attack_eval's budget is never exceeded by a batch that it ends inside;
-- errors in query_batch_fn; a plugin built against ABI 1.3 loads and runs
-- one query at a time.
-- Run from the repo root: qrun tests/recipes/attack.lua
local T = require("qr.qrtest")
local A = require("attack_toy")

local text = "The Denver Broncos won Super Bowl 50, beating the Carolina Panthers."

-- query_fn scoring the fraction of `targets` found intact; calls counted
local function scorer(targets)
  local s = {calls = 0, nonstring = 0}
  function s.fn(cand)
    s.calls = s.calls + 1
    if type(cand) ~= "string" then s.nonstring = s.nonstring + 1 end
    local k = 0
    for _, w in ipairs(targets) do
      if tostring(cand):find(w, 1, true) then k = k + 1 end
    end
    return k / #targets
  end
  return s
end

-- the words of s (typo's words: runs of ASCII letters/digits and UTF-8 bytes)
local function words(s)
  local w = {}
  for x in s:gmatch("[%w\128-\255]+") do w[#w + 1] = x end
  return w
end

-- how many words of a differ from b's (same word count), or nil
local function edited_words(a, b)
  local wa, wb = words(a), words(b)
  if #wa ~= #wb then return nil end
  local n = 0
  for i = 1, #wa do
    if wa[i] ~= wb[i] then n = n + 1 end
  end
  return n
end

-- ---- the object ----
local a = qr.attack("typo")
T.eq("attack-1.1", a:name(), "typo")
T.ok("attack-1.2", tostring(a):find("qr.Attack: typo", 1, true), tostring(a))
T.ok("attack-1.3", qr.attack("typo", {tries = 3}) ~= nil)

-- ---- perturb ----
do
  local targets = {"Denver", "Broncos", "Carolina", "Panthers"}
  local s = scorer(targets)
  local out = a:perturb(text, s.fn, 2, 7)
  print("typo, budget 2, seed 7: " .. out)
  T.ok("perturb-1.1", type(out) == "string" and out ~= text, tostring(out))
  T.ok("perturb-1.2", s.calls > 0 and s.nonstring == 0, "calls " .. s.calls .. ", non-strings " .. s.nonstring)
  T.eq("perturb-1.3", edited_words(text, out), 2) -- the budget, exactly: each edit breaks a target
  local intact = 0
  for _, w in ipairs(targets) do
    if out:find(w, 1, true) then intact = intact + 1 end
  end
  T.eq("perturb-1.4", intact, 2)
  -- deterministic for a seed
  local s2 = scorer(targets)
  T.eq("perturb-2.1", a:perturb(text, s2.fn, 2, 7), out)
  T.eq("perturb-2.2", s2.calls, s.calls)
  -- the seed matters (some seed of ten gives another text)
  local other = 0
  for seed = 1, 10 do
    if a:perturb(text, scorer(targets).fn, 2, seed) ~= out then other = other + 1 end
  end
  T.ok("perturb-2.3", other > 0, "ten seeds all gave " .. out)
  -- the budget bounds the edits, whatever it is
  for budget = 0, 4 do
    local o = a:perturb(text, scorer(targets).fn, budget, 3)
    local n = edited_words(text, o)
    T.ok("perturb-3." .. (budget + 1), n ~= nil and n <= budget,
      string.format("budget %d: %s words edited in %q", budget, tostring(n), o))
  end
  -- budget 0: unchanged, no query
  local s0 = scorer(targets)
  T.eq("perturb-4.1", a:perturb(text, s0.fn, 0, 1), text)
  T.eq("perturb-4.2", s0.calls, 0)
  -- seed defaults to 0
  T.eq("perturb-4.3", a:perturb(text, scorer(targets).fn, 1), a:perturb(text, scorer(targets).fn, 1, 0))
end

-- ---- errors in query_fn ----
do
  local calls = 0
  local msg = T.errors("qerr-1.1", function()
    a:perturb(text, function(cand)
      calls = calls + 1
      if calls == 3 then error("victim exploded on call " .. calls) end
      return 1
    end, 2, 1)
  end, "victim exploded on call 3")
  T.ok("qerr-1.2", msg and msg:find("attack.lua", 1, true), "the error keeps its position: " .. tostring(msg))
  T.eq("qerr-1.3", calls, 3) -- not called again after the error
  -- any error value comes back as it was
  local obj = {code = 42}
  local ok, err = pcall(function() return a:perturb(text, function() error(obj) end, 1, 1) end)
  T.ok("qerr-2.1", not ok and err == obj, "got " .. T.show(err))
  -- a query_fn that does not return a number
  T.errors("qerr-3.1", function() a:perturb(text, function() return nil end, 1, 1) end,
    "attack 'typo': query_fn returned nil, expected a number")
  T.errors("qerr-3.2", function() a:perturb(text, function() return "high" end, 1, 1) end,
    "query_fn returned string")
  -- the attack works after all that
  T.ok("qerr-4.1", a:perturb(text, scorer({"Denver"}).fn, 1, 42):find("Denver", 1, true) == nil)
end

-- ---- bad options and arguments ----
T.errors("arg-1.1", function() qr.attack("typo", {bogus = 1}) end, "attack 'typo': unknown option 'bogus' (options: tries, batch)")
T.errors("arg-1.2", function() qr.attack("typo", {tries = 0}) end, "attack 'typo': option tries: expected an integer in [1, 64], got 0")
T.errors("arg-1.3", function() qr.attack("nope") end, "no attack plugin named 'nope' %(known: bert_attack, textfooler, typo%)")
T.errors("arg-1.4", function() qr.attack("typo", {tries = {}}) end, "option 'tries': expected a string, number or boolean")
T.errors("arg-2.1", function() a:perturb(text, scorer({"Denver"}).fn, -1, 1) end, "budget -1: expected >= 0")
T.errors("arg-2.2", function() a:perturb(text, "not a function", 1, 1) end, "bad argument #2 to 'perturb' (function expected")
T.errors("arg-2.3", function() a:perturb("a\0b", scorer({"a"}).fn, 1, 1) end, "text contains a NUL byte")
T.errors("arg-2.4", function() a:perturb(text, scorer({"a"}).fn, 1.5, 1) end, "number has no integer representation")

-- ---- close ----
do
  local b = qr.attack("typo")
  b:close()
  T.errors("close-1.1", function() b:perturb(text, scorer({"Denver"}).fn, 1, 1) end, "attempt to use a closed qr.Attack")
  T.ok("close-1.2", tostring(b):find("closed", 1, true), tostring(b))
  b:close() -- twice is fine
  -- closed from inside its own query_fn: the attack runs to its end
  local c = qr.attack("typo")
  local s = scorer({"Denver"})
  local out = c:perturb(text, function(cand)
    c:close()
    collectgarbage()
    return s.fn(cand)
  end, 1, 42)
  T.ok("close-2.1", type(out) == "string" and not out:find("Denver", 1, true), tostring(out))
  T.ok("close-2.2", tostring(c):find("closed", 1, true), tostring(c))
  do
    local d <close> = qr.attack("typo")
    T.ok("close-3.1", d:perturb(text, scorer({"Denver"}).fn, 1, 42) ~= text)
  end
end

-- the published edits (Pruthi et al. 2019): words of 4+ characters only,
-- first and last characters kept, one edit each: an adjacent inner swap, an
-- inner QWERTY-neighbour substitution, an inner deletion, an insertion
do
  local rows = {"qwertyuiop", "asdfghjkl", "zxcvbnm"}
  local function nbrs(c)
    c = c:lower()
    for r, row in ipairs(rows) do
      local col = row:find(c, 1, true)
      if col then
        local set = {}
        local function add(rr, cc)
          local rw = rows[rr]
          if rw and cc >= 1 and cc <= #rw then set[rw:sub(cc, cc)] = true end
        end
        add(r, col - 1); add(r, col + 1); add(r - 1, col); add(r - 1, col + 1); add(r + 1, col - 1); add(r + 1, col)
        return set
      end
    end
    return {}
  end
  local function one_edit(a, b) -- a published edit of a into b?
    if #a < 4 or a:sub(1, 1) ~= b:sub(1, 1) or a:sub(-1) ~= b:sub(-1) then return false end
    if #b == #a - 1 then -- deletion of an inner character
      for p = 2, #a - 1 do if a:sub(1, p - 1) .. a:sub(p + 1) == b then return true end end
    elseif #b == #a + 1 then -- insertion between two characters
      for p = 2, #a do if b:sub(1, p - 1) .. b:sub(p + 1) == a and b:sub(p, p):match("%l") then return true end end
    elseif #b == #a then
      local diff = {}
      for p = 1, #a do if a:sub(p, p) ~= b:sub(p, p) then diff[#diff + 1] = p end end
      if #diff == 2 and diff[2] == diff[1] + 1 and a:sub(diff[1], diff[1]) == b:sub(diff[2], diff[2])
         and a:sub(diff[2], diff[2]) == b:sub(diff[1], diff[1]) then return true end
      if #diff == 1 then
        local o, n = a:sub(diff[1], diff[1]), b:sub(diff[1], diff[1])
        return nbrs(o)[n:lower()] == true and ((o:match("%u") ~= nil) == (n:match("%u") ~= nil))
      end
    end
    return false
  end
  local src = "The cat sat on a mat with Mississippi and Carolina near Denver today"
  local ws = words(src)
  local intact = function(c)
    local k, cw = 0, words(c)
    for i = 1, #ws do if cw[i] == ws[i] then k = k + 1 end end
    local h = 0 -- a deterministic tie-break, so every kind of edit gets to win
    for j = 1, #c do h = (h * 31 + c:byte(j)) % 1000003 end
    return k / #ws - h / 1e9
  end
  local bad, edits, kinds = {}, 0, {}
  for seed = 1, 200 do
    local out = qr.attack("typo", {tries = 2}):perturb(src, intact, 6, seed)
    local ow = words(out)
    if #ow ~= #ws then bad[#bad + 1] = "word count: " .. out end
    for i = 1, math.min(#ws, #ow) do
      if ow[i] ~= ws[i] then
        edits = edits + 1
        if not one_edit(ws[i], ow[i]) then bad[#bad + 1] = ws[i] .. " -> " .. ow[i] end
        kinds[#ow[i] - #ws[i]] = true
      end
    end
  end
  T.ok("typo-pub-1", #bad == 0, table.concat(bad, "; "))
  T.ok("typo-pub-2", edits > 200, "only " .. edits .. " edits in 200 runs")
  T.ok("typo-pub-3", kinds[-1] and kinds[0] and kinds[1], "not every edit kind seen")
  print(string.format("  typo: %d edited words over 200 seeds, every one a published edit of a 4+ letter word", edits))
end

-- ---- batched queries (ABI 1.4) ----
do
  T.eq("batch-1.1 typo has perturb_batch", qr.attack("typo"):batched(), true)
  -- batched == sequential: the same candidates asked in the same order, the same text
  local texts = {
    {text, {"Denver", "Broncos", "Carolina", "Panthers"}},
    {"The cat sat on a mat with Mississippi and Carolina near Denver today", {"Mississippi", "Carolina", "Denver", "today"}},
    {"Zürich café naïve Ærøskøbing Denver", {"Zürich", "café", "naïve", "Ærøskøbing"}},
  }
  local runs, same_out, same_log, batched, biggest = 0, 0, 0, 0, 0
  local first_bad
  for ti, tt in ipairs(texts) do
    for _, tries in ipairs{1, 3} do
      for edits = 1, 4, 3 do
        for seed = 1, 6 do
          local sq, bt = A.both(qr.attack("typo", {tries = tries}), tt[1], edits, seed, tt[2])
          runs = runs + 1
          local ok_out, ok_log = sq.out == bt.out, T.show(sq.v.log) == T.show(bt.v.log)
          same_out = same_out + (ok_out and 1 or 0)
          same_log = same_log + (ok_log and 1 or 0)
          batched = batched + (#bt.v.sizes > 0 and #sq.v.sizes == 0 and 1 or 0)
          biggest = math.max(biggest, A.largest(bt.v))
          if not (ok_out and ok_log) and not first_bad then
            first_bad = string.format("text %d tries %d edits %d seed %d: %q vs %q, %d vs %d queries", ti, tries, edits,
              seed, sq.out, bt.out, #sq.v.log, #bt.v.log)
          end
        end
      end
    end
  end
  T.eq("batch-2.1 typo: the same perturbed text, batched or not (" .. runs .. " runs)", same_out, runs)
  T.eq("batch-2.2 typo: the same queries in the same order", same_log, runs)
  if first_bad then print("  first difference: " .. first_bad) end
  T.eq("batch-2.3 every batched run used query_batch_fn (and the sequential never)", batched, runs)
  T.ok("batch-2.4 a batch holds several candidates", biggest > 1, "largest batch " .. biggest)
  print(string.format("  typo: %d runs batched == sequential, largest batch %d", runs, biggest))
  -- batch = 1: one query at a time even with query_batch_fn; batch = 3: runs of at most 3, the same queries
  local s1, b1 = A.both(qr.attack("typo", {batch = 1, tries = 2}), text, 2, 5, {"Denver", "Broncos"})
  T.eq("batch-3.1 batch=1 never calls query_batch_fn", #b1.v.sizes, 0)
  T.eq("batch-3.2 batch=1: the sequential queries", b1.v.log, s1.v.log)
  local s3, b3 = A.both(qr.attack("typo", {batch = 3, tries = 2}), text, 2, 5, {"Denver", "Broncos"})
  T.ok("batch-3.3 batch=3: runs of at most 3", A.largest(b3.v) == 3, "largest " .. A.largest(b3.v))
  T.eq("batch-3.4 batch=3: the sequential queries and text", {b3.v.log, b3.out}, {s3.v.log, s3.out})
  T.errors("batch-3.5", function() qr.attack("typo", {batch = 0}) end, "option batch: expected an integer in [1, 1024]")
end

-- ---- the query budget of attack_eval, batched ----
do
  local E = require("qr.attack_eval")
  local targets = {"Denver", "Broncos", "Carolina", "Panthers"}
  local inside, all_ok, bad = 0, true, nil
  for _, budget in ipairs{1, 2, 5, 7, 13, 14, 15, 20, 33, 1000} do
    local vs, vb = A.victim(targets), A.victim(targets)
    local bs = E.budgeted(budget, vs.fn, vs.batch)
    local out1 = qr.attack("typo", {tries = 2}):perturb(text, bs.query, 3, 4)
    local bb = E.budgeted(budget, vb.fn, vb.batch)
    local straddled = false
    local function qb(qs) -- a batch the budget ends inside: some, not all, charged
      local before = bb.queries
      local r = bb.query_batch(qs)
      local charged = bb.queries - before
      if charged > 0 and charged < #qs then straddled = true end
      return r
    end
    local out2 = qr.attack("typo", {tries = 2}):perturb(text, bb.query, 3, 4, qb)
    inside = inside + (straddled and 1 or 0)
    local ok = out1 == out2 and bs.queries == bb.queries and bb.queries <= budget and #vb.log == bb.queries
      and T.show(vs.log) == T.show(vb.log) and #vs.sizes == 0
    if not ok and not bad then
      bad = string.format("budget %d: %q / %q, charged %d / %d, victim asked %d", budget, out1, out2, bs.queries,
        bb.queries, #vb.log)
    end
    all_ok = all_ok and ok
  end
  T.ok("budget-1.1 batched == sequential under every budget; never more queries than the budget", all_ok, bad)
  T.ok("budget-1.2 some budget ended inside a batch", inside > 0, "no budget straddled a batch")
  -- the candidates past the budget score +huge and never reach the victim
  local v = A.victim(targets)
  local b = E.budgeted(3, v.fn, v.batch)
  local r = b.query_batch({"a", "b", "c", "d", "e"})
  T.ok("budget-2.1 the first 3 scored, the rest +huge", r[3] < math.huge and r[4] == math.huge and r[5] == math.huge
    and #v.log == 3 and b.queries == 3, T.show(r))
  T.eq("budget-2.2 nothing more once spent", {b.query("f"), b.query_batch({"g"})[1], #v.log, #v.sizes},
    {math.huge, math.huge, 3, 1})
  -- a candidate the scorer cannot score (nil) is +huge, and still charged
  local b2 = E.budgeted(10, function() return nil end, function(qs) return {0.5, nil, 0.25} end)
  T.eq("budget-2.3", b2.query_batch({"x", "y", "z"}), {0.5, math.huge, 0.25})
  T.eq("budget-2.4", b2.queries, 3)
end

-- ---- errors in query_batch_fn ----
do
  local calls, bcalls = 0, 0
  local msg = T.errors("berr-1.1", function()
    qr.attack("typo"):perturb(text, function() calls = calls + 1 return 1 end, 2, 1, function(cs)
      bcalls = bcalls + 1
      error("batch victim exploded")
    end)
  end, "batch victim exploded")
  T.ok("berr-1.2", msg and msg:find("attack.lua", 1, true), "the error keeps its position: " .. tostring(msg))
  T.eq("berr-1.3 neither function called after the error", {calls, bcalls}, {1, 1})
  local obj = {code = 7}
  local ok, err = pcall(function()
    return qr.attack("typo"):perturb(text, function() return 1 end, 1, 1, function() error(obj) end)
  end)
  T.ok("berr-2.1 any error value comes back as it was", not ok and err == obj, "got " .. T.show(err))
  T.errors("berr-3.1", function() qr.attack("typo"):perturb(text, function() return 1 end, 1, 1, function() return 3 end) end,
    "attack 'typo': query_batch_fn returned number, expected a list of 11 numbers (one per candidate)")
  T.errors("berr-3.2", function()
    qr.attack("typo"):perturb(text, function() return 1 end, 1, 1, function(cs) return {1, "x"} end)
  end, "query_batch_fn's result %[2%] is string, expected a number")
  T.errors("berr-3.3", function() qr.attack("typo"):perturb(text, function() return 1 end, 1, 1, "no") end,
    "bad argument #5 to 'perturb' (function expected")
  -- closed from inside query_batch_fn: the attack runs to its end
  local c = qr.attack("typo")
  local s = A.victim({"Denver"})
  local out = c:perturb(text, s.fn, 1, 42, function(cs)
    c:close()
    collectgarbage()
    return s.batch(cs)
  end)
  T.ok("berr-4.1", type(out) == "string" and not out:find("Denver", 1, true), tostring(out))
end

-- ---- a plugin built against ABI 1.3: loads, and runs one query at a time ----
do
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "'")
  local f = assert(io.open(dir .. "/old13.c", "w"))
  -- its ops end at perturb (the 1.3 layout); the perturb_batch past its
  -- struct_size must never be called
  f:write([[
#include "qr_plugin.h"
#include <stdlib.h>
#include <string.h>
static void *cr(const qr_host *h, const char *const *kv, int n) { (void)h; (void)kv; (void)n; static int s; return &s; }
static void de(void *s) { (void)s; }
/* asks the victim about text + " x" and text + " y"; keeps the lower */
static int pt(void *s, const char *t, double (*q)(void *, const char *), void *ctx, int b, uint64_t seed, char **out) {
  size_t n = strlen(t); char *a = malloc(n + 3), *c = malloc(n + 3);
  memcpy(a, t, n); memcpy(a + n, " x", 3); memcpy(c, t, n); memcpy(c + n, " y", 3);
  double sa = q(ctx, a), sc = q(ctx, c);
  if (sa <= sc) { *out = a; free(c); } else { *out = c; free(a); }
  return 0; }
static int pb(void *s, const char *t, double (*q)(void *, const char *),
              int (*qb)(void *, const char *const *, int, double *), void *ctx, int b, uint64_t seed, char **out) {
  *out = NULL; return -1; }
static const qr_attack_ops ops = {.struct_size = offsetof(qr_attack_ops, perturb_batch), .create = cr,
  .destroy = de, .perturb = pt, .perturb_batch = pb};
static const qr_entry e[] = {{.kind = QR_KIND_ATTACK, .name = "t_old13", .description = "1.3", .ops = &ops}};
static const qr_entry *ge(uint32_t i) { return i < 1 ? &e[i] : NULL; }
static const qr_plugin_desc d = {.abi_major = 1, .abi_minor = 3, .struct_size = sizeof d, .name = "old13",
  .version = "1.3", .n_entries = 1, .get_entry = ge};
QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return &d; }
]])
  f:close()
  local built = os.execute(string.format("cc -shared -fPIC -w -I'%s/core' -o '%s/old13.so' '%s/old13.c'",
    qr.source_dir, dir, dir))
  if not built then
    T.skip("old-1", "no C compiler (cc) to build the ABI 1.3 plugin")
  else
    T.ok("old-1.1 a 1.3 attack plugin loads", qr.load_plugin(dir .. "/old13.so"))
    local o = qr.attack("t_old13")
    T.eq("old-1.2 it has no perturb_batch (past its struct_size)", o:batched(), false)
    local v = A.victim({"y"})
    local out = o:perturb("ab", v.fn, 1, 1, v.batch)
    T.eq("old-1.3 it runs one query at a time: query_fn asked, query_batch_fn never", {out, v.log, #v.sizes},
      {"ab x", {"ab x", "ab y"}, 0})
  end
  os.execute("rm -rf '" .. dir .. "'")
end

T.done()
