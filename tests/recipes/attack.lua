-- attack.lua - attacks from Lua: qr.attack(name, opts):perturb(text,
-- query_fn, budget, seed) with the `typo` plugin and toy query functions
-- (score = fraction of target words still intact): deterministic for a
-- seed, the budget bounds the words edited, the query is called with
-- candidate strings, an error in query_fn ends the attack and is raised
-- again unchanged (a string or any value), bad options and arguments are
-- refused naming them, and close() (even from inside query_fn).
-- Run from the repo root: qrun tests/recipes/attack.lua
local T = require("qr.qrtest")

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
T.errors("arg-1.1", function() qr.attack("typo", {bogus = 1}) end, "attack 'typo': unknown option 'bogus' (options: tries)")
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

T.done()
