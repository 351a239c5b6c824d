-- schedule.lua - recipe regression test for qr.schedule: a schedule plugin
-- asked from Lua which configurations it trains at step t of T, checked
-- against the published formulas computed here in Lua (cyclic: CPT's
-- cyclic_adjust_precision; progressive: n equal stages by BitOPs; random:
-- splitmix64 of (seed, t) mod n), and bad input refused naming the option.
-- Run from the repo root: qrun tests/recipes/schedule.lua
local T = require("qr.qrtest")
local P = require("qr.precision")

-- a configuration of n layers, all at w/a bits
local function uniform(w, a, n)
  local layers = {}
  for i = 1, n or 3 do layers[i] = {w = w, a = a} end
  return {name = string.format("w%da%d", w, a), layers = layers}
end

-- np.rint: half to even
local function rint(v)
  local f = math.floor(v)
  local d = v - f
  if d > 0.5 then return f + 1 elseif d < 0.5 then return f end
  return f % 2 == 0 and f or f + 1
end

-- CPT: b_t = rint(lo + 0.5 (hi - lo) (1 + cos(pi (t mod Tc) / Tc + pi))), Tc = floor(T / n_cycles)
local function cpt(t, T_, n_cycles, lo, hi)
  local period = T_ // n_cycles
  local frac = (t % period) / period
  return rint(lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * frac + math.pi)))
end

local function run(s, T_, cfgs, model)
  local got = {}
  for t = 0, T_ - 1 do
    local sel = s:select(t, T_, cfgs, model)
    got[#got + 1] = #sel == 1 and sel[1] or sel
  end
  return got
end

-- 1. cyclic, mode=bits: one uniform configuration per width, the one at b_t
do
  local cfgs = {}
  for b = 8, 3, -1 do cfgs[#cfgs + 1] = uniform(b, b) end -- not in width order: found by bits
  for _, case in ipairs{{T = 40, n = 4, lo = 4, hi = 8}, {T = 37, n = 3, lo = 3, hi = 8}, {T = 10, n = 10, lo = 4, hi = 6}} do
    local s = qr.schedule("cyclic", {b_min = case.lo, b_max = case.hi, n_cycles = case.n})
    local want = {}
    for t = 0, case.T - 1 do want[#want + 1] = 8 - cpt(t, case.T, case.n, case.lo, case.hi) + 1 end
    T.eq("sched-1." .. (#want == 40 and 1 or #want == 37 and 2 or 3), run(s, case.T, cfgs), want)
    s:close()
  end
  T.eq("sched-1.4", tostring(qr.schedule("cyclic", {})), "qr.Schedule: cyclic")
  local s = qr.schedule("cyclic", {})
  s:close()
  T.eq("sched-1.5", tostring(s), "qr.Schedule (closed)")
  T.errors("sched-1.6", function() s:select(0, 10, cfgs) end, "closed")
end

-- 2. cyclic, mode=configs: the same cosine over the set ordered by BitOPs
do
  local cfgs = {uniform(8, 8), uniform(4, 4), uniform(6, 6), uniform(4, 8), uniform(32, 32)}
  -- BitOPs order: w4a4 (2), w4a8 (4), w6a6 (3), w8a8 (1), fp (5)
  local order = {2, 4, 3, 1, 5}
  local s = qr.schedule("cyclic", {mode = "configs", n_cycles = 3})
  local want = {}
  for t = 0, 29 do want[#want + 1] = order[cpt(t, 30, 3, 0, #cfgs - 1) + 1] end
  T.eq("sched-2.1", run(s, 30, cfgs), want)
  T.eq("sched-2.2", s:select(9, 30, cfgs), {5}) -- the last step of a period is at the top
end

-- 3. progressive: n equal stages floor(k T / n), by BitOPs (up) or reversed (down)
do
  local cfgs = {uniform(8, 8), uniform(4, 4), uniform(6, 6)}
  local order = {2, 3, 1}
  for i, dir in ipairs{"up", "down"} do
    local s = qr.schedule("progressive", {direction = dir})
    local want = {}
    for t = 0, 10 do
      local k = 0
      while k + 1 < 3 and ((k + 1) * 11) // 3 <= t do k = k + 1 end
      want[#want + 1] = order[dir == "up" and k + 1 or 3 - k]
    end
    T.eq("sched-3." .. i, run(s, 11, cfgs), want)
  end
  -- BitOPs weighted by in x out: A = w4a4 on a 10x10 layer + w8a8 on a 1x1 one is cheaper than
  -- B = w8a8 + w2a2 weighted, dearer unweighted
  local A = {name = "A", layers = {{w = 4, a = 4, in_features = 10, out_features = 10}, {w = 8, a = 8, in_features = 1, out_features = 1}}}
  local B = {name = "B", layers = {{w = 8, a = 8, in_features = 10, out_features = 10}, {w = 2, a = 2, in_features = 1, out_features = 1}}}
  local s = qr.schedule("progressive", {})
  T.eq("sched-3.3", s:select(0, 2, {A, B}), {1})
  local A1 = {name = "A", layers = {{w = 4, a = 4}, {w = 8, a = 8}}}
  local B1 = {name = "B", layers = {{w = 8, a = 8}, {w = 2, a = 2}}}
  T.eq("sched-3.4", s:select(0, 2, {A1, B1}), {2}) -- unweighted: B is cheaper
  -- with a model the weights are its linears' in x out, as in training
  local m = qr.model_new{arch = "gpt2", n_layer = 1, n_embd = 16, n_head = 2, n_vocab = 31, n_ctx = 16, seed = 1}
  local mc = P.load("w8a8,w4a4,fp", m)
  T.eq("sched-3.5", s:select(0, 3, mc, m), {2})
  T.errors("sched-3.6", function() s:select(0, 3, {A1}, m) end, "the model has 4 linear layers")
end

-- 4. random: splitmix64(seed ^ (t * 0xD1B54A32D192ED03)) mod n, unsigned
do
  local function splitmix(x)
    local z = x + 0x9E3779B97F4A7C15
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    return z ~ (z >> 31)
  end
  local function umod(x, n) -- x as an unsigned 64-bit integer
    local q = ((x >> 1) // n) << 1
    local r = x - q * n
    while not math.ult(r, n) do r = r - n end
    return r
  end
  local cfgs = {uniform(4, 4), uniform(5, 5), uniform(6, 6), uniform(7, 7), uniform(8, 8)}
  for i, seed in ipairs{1, 12345} do
    local s = qr.schedule("random", {seed = seed})
    local want = {}
    for t = 0, 49 do want[#want + 1] = umod(splitmix(seed ~ (t * 0xD1B54A32D192ED03)), #cfgs) + 1 end
    T.eq("sched-4." .. i, run(s, 50, cfgs), want)
  end
  local s = qr.schedule("static", {})
  T.eq("sched-4.3", s:select(3, 10, cfgs), {1, 2, 3, 4, 5})
end

-- 5. bad input, refused naming the option
do
  local cfgs = {uniform(4, 4), uniform(8, 8)}
  T.errors("sched-5.1", function() qr.schedule("cyclic", {b_min = 8, b_max = 4}) end, "b_min=8 > b_max=4")
  T.errors("sched-5.2", function() qr.schedule("cyclic", {b_min = 1}) end, "option b_min: expected an integer in %[2, 16%]")
  T.errors("sched-5.3", function() qr.schedule("cyclic", {b_max = 17}) end, "option b_max")
  T.errors("sched-5.4", function() qr.schedule("cyclic", {b_max = 32}) end, "32, full precision, is not a cyclic width")
  T.errors("sched-5.5", function() qr.schedule("cyclic", {n_cycles = 20}):select(0, 10, cfgs) end,
    "option n_cycles: 20 cycles in 10 steps")
  T.errors("sched-5.6", function() qr.schedule("nope") end, "no schedule plugin named 'nope'")
  T.errors("sched-5.7", function() qr.schedule("cyclic", {bmin = 4}) end, "unknown option 'bmin'")
  T.errors("sched-5.8", function() qr.schedule("cyclic", {b_min = 4, b_max = 6, n_cycles = 1}):select(0, 10, cfgs) end,
    "needs a uniform w5a5 configuration")
  T.errors("sched-5.9", function() qr.schedule("progressive", {direction = "sideways"}) end, "direction")
  T.errors("sched-5.10", function() qr.schedule("progressive"):select(0, 1, cfgs) end, "need at least 2 steps")
  T.errors("sched-5.11", function() qr.schedule("random", {seed = -1}) end, "seed")
  T.errors("sched-5.12", function() qr.schedule("static"):select(0, 1, {}) end, "0 configurations")
  T.errors("sched-5.13", function() qr.schedule("static"):select(0, 1, {{name = "x", layers = {{w = 4}}}, {name = "y", layers = {}}}) end,
    "config 'y': 0 layers, configs%[1%] has 1")
end
T.done()
