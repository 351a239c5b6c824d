-- quantizer.lua - plugins and quantizers from Lua: qr.plugins(),
-- qr.quantizer(name, opts):fake(rows, bits) against hand-checked values,
-- :backward, and the errors (unknown name lists the known ones, bad
-- options, bits 1 and 17, NaN, ragged rows, qr.load_plugin failures), and
-- closing a quantizer that a model still uses (the model keeps it: run
-- under ASan in CI's second pass, a use after free would abort).
-- Run from the repo root: qrun tests/recipes/quantizer.lua
local T = require("qr.qrtest")

-- ---- the registry ----
local list = qr.plugins()
local by = {}
for _, p in ipairs(list) do
  by[p.kind .. "/" .. p.name] = p
end
for i, key in ipairs({"quantizer/minmax", "quantizer/log", "quantizer/tanh", "schedule/static",
                      "loss/ce", "attack/typo"}) do
  T.ok("plugins-1." .. i, by[key] ~= nil, key .. " not in qr.plugins()")
end
do
  local p = by["quantizer/minmax"] or {}
  T.ok("plugins-2.1", type(p.description) == "string" and #p.description > 0, T.show(p))
  T.ok("plugins-2.2", type(p.file) == "string" and p.file:find("minmax.so", 1, true), tostring(p.file))
  T.eq("plugins-2.3", p.plugin, "minmax")
  T.ok("plugins-2.4", type(p.version) == "string" and p.version:match("^%d+%.%d+"), tostring(p.version))
end

-- ---- values (x = {1, -0.5, 0.25, 0.1}, max 1) ----
local x = {{1, -0.5, 0.25, 0.1}, {0, 0, 0, 0}}
local q = qr.quantizer("minmax")
T.eq("minmax-1.1", q:name(), "minmax")
T.ok("minmax-1.2", tostring(q):find("qr.Quantizer: minmax", 1, true), tostring(q))
do
  -- 2-bit: levels {-1, 0, 1}; -0.5 rounds half to even -> 0
  local y, s = q:fake(x, 2)
  T.near("minmax-2.1", y[1], {1, 0, 0, 0}, 1e-7)
  T.near("minmax-2.2", y[2], {0, 0, 0, 0}, 0)
  T.near("minmax-2.3", s, {1, 0}, 1e-7)
  -- 4-bit: Q = 7: -3.5 -> -4, 1.75 -> 2, 0.7 -> 1
  y, s = q:fake(x, 4)
  T.near("minmax-2.4", y[1], {1, -4 / 7, 2 / 7, 1 / 7}, 1e-6)
  T.near("minmax-2.5", s[1], 1 / 7, 1e-7)
  -- 8-bit: Q = 127: -63.5 -> -64, 31.75 -> 32, 12.7 -> 13
  y = q:fake(x, 8)
  T.near("minmax-2.6", y[1], {1, -64 / 127, 32 / 127, 13 / 127}, 1e-6)
  -- 32: unchanged
  y, s = q:fake(x, 32)
  T.near("minmax-2.7", y[1], {1, -0.5, 0.25, 0.1}, 1e-7)
  T.near("minmax-2.8", s, {0, 0}, 0)
  -- the input table is not modified
  T.near("minmax-2.9", x[1], {1, -0.5, 0.25, 0.1}, 0)
end
do -- asymmetric: lo -0.5, hi 1, 4-bit: step 0.1, zero point 5; 0.25/0.1 = 2.5 -> 2
  local qa = qr.quantizer("minmax", {symmetric = false})
  local y, s = qa:fake({{1, -0.5, 0.25, 0.1}}, 4)
  T.near("minmax-3.1", y[1], {1, -0.5, 0.2, 0.1}, 1e-6)
  T.near("minmax-3.2", s[1], 0.1, 1e-7)
end
do -- log, 4-bit: K = 6; 0.1 -> 2^-3; 0.01 -> k = 7 > 6 -> 0
  local y, s = qr.quantizer("log"):fake({{1, -0.5, 0.25, 0.1, 0.01}}, 4)
  T.near("log-1.1", y[1], {1, -0.5, 0.25, 0.125, 0}, 0)
  T.near("log-1.2", s[1], 1, 0)
end
do -- tanh, 2-bit: levels {-1, -1/3, 1/3, 1}·max
  local y = qr.quantizer("tanh"):fake({{1, -0.5, 0.25, 0.1}}, 2)
  T.near("tanh-1.1", y[1], {1, -1 / 3, 1 / 3, 1 / 3}, 1e-6)
  local g = qr.quantizer("tanh"):backward({{1, 0}}, {{1, 1}}, 4)
  -- dy/dx = m (1 - tanh^2 x) / tanh m with m = 1
  local t1 = (math.exp(2) - 1) / (math.exp(2) + 1)
  T.near("tanh-1.2", g[1], {(1 - t1 * t1) / t1, 1 / t1}, 1e-5)
  local s = qr.quantizer("minmax"):backward({{1, 0.2}}, {{0.5, -2}}, 4)
  T.near("minmax-4.1", s[1], {0.5, -2}, 0) -- straight-through
end
do -- options: numbers and booleans reach the plugin as strings
  local qc = qr.quantizer("minmax", {ste_clip = 0.5, symmetric = true})
  T.near("opts-1.1", qc:backward({{1, 0.2}}, {{1, 1}}, 4)[1], {0, 1}, 0)
end

-- ---- errors ----
T.errors("err-1.1", function() qr.quantizer("nope") end, "no quantizer plugin named 'nope' %(known: .*minmax")
T.errors("err-1.2", function() qr.quantizer("minmax", {bogus = 1}) end,
  "quantizer 'minmax': unknown option 'bogus'")
T.errors("err-1.3", function() qr.quantizer("minmax", {symmetric = "maybe"}) end,
  "option symmetric: expected true or false")
T.errors("err-1.4", function() qr.quantizer("minmax", {ste_clip = -1}) end, "option ste_clip")
T.errors("err-1.5", function() qr.quantizer("minmax", {symmetric = {}}) end, "expected a string, number or boolean")
T.errors("err-2.1", function() q:fake(x, 1) end, "bits 1: expected 2..16")
T.errors("err-2.2", function() q:fake(x, 17) end, "bits 17: expected 2..16")
T.errors("err-2.3", function() q:fake({{1, 0 / 0}, {1, 2}}, 4) end, "row 0 of %(2, 2%) has NaN or Inf")
T.errors("err-2.4", function() q:fake({{1, 2}, {1}}, 4) end, "rows%[2%]: 1 numbers, expected 2")
T.errors("err-2.5", function() q:fake({{1, "a"}}, 4) end, "rows%[1%]%[2%]: expected a number")
T.errors("err-2.6", function() q:fake({{1}}, 4.5) end, "number has no integer representation")
T.errors("err-2.7", function() q:fake({{1, 1e39}}, 4) end, "rows%[1%]%[2%]: .* is outside float32's range")
do
  local ok, msg = qr.load_plugin("no/such/plugin.so")
  T.eq("err-3.1", ok, nil)
  T.ok("err-3.2", msg and msg:find("no/such/plugin.so", 1, true), tostring(msg))
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write("not a plugin\n")
  f:close()
  ok, msg = qr.load_plugin(tmp)
  T.eq("err-3.3", ok, nil)
  T.ok("err-3.4", msg and msg:find(tmp, 1, true) and msg:find("cannot load plugin", 1, true), tostring(msg))
  os.remove(tmp)
  T.eq("err-3.5", qr.load_plugin(by["quantizer/minmax"].file), true) -- already loaded: a no-op
end
do -- closed objects
  local qq = qr.quantizer("log")
  qq:close()
  T.errors("close-1.1", function() qq:fake(x, 4) end, "attempt to use a closed qr.Quantizer")
  T.ok("close-1.2", tostring(qq):find("closed", 1, true), tostring(qq))
end

do -- a quantizer closed while a tiny model uses it: the model keeps its own reference
  local ids = {}
  for i = 1, 12 do ids[i] = (i * 7 + 3) % 31 end
  local function tiny()
    return qr.model_new{n_layer = 1, n_embd = 16, n_head = 2, n_vocab = 31, n_ctx = 16, seed = 5}
  end
  -- every layer at w bits for weights, a for inputs (a config table, so
  -- this test does not depend on qr.precision)
  local function prec(m, w, a)
    local layers = {}
    for i, l in ipairs(m:linears()) do layers[i] = {name = l.name, w = w, a = a} end
    return {name = "w" .. w .. "a" .. a, layers = layers}
  end
  local m = tiny()
  local q1 = qr.quantizer("minmax")
  m:quantize{weight = q1, act = q1}
  m:precision(prec(m, 4, 4))
  local before = m:loss(ids)
  q1:close()
  T.ok("close-2.1", tostring(q1):find("closed", 1, true), tostring(q1))
  T.errors("close-2.2", function() q1:fake(x, 4) end, "attempt to use a closed qr.Quantizer")
  local after = m:loss(ids) -- reads the quantizer: freed here before the fix
  T.eq("close-2.3", after, before)
  -- a second model given the same quantizer, which is then collected
  local m2 = tiny()
  do
    local q2 <close> = qr.quantizer("minmax")
    m2:quantize{weight = q2, act = q2}
  end -- q2 closed by <close>
  collectgarbage()
  m2:precision(prec(m2, 4, 4))
  T.eq("close-2.4", m2:loss(ids), before)
  -- quantized anew: the model lets go of the old one, the new one works
  local q3 = qr.quantizer("log")
  m:quantize{weight = q3, act = q3}
  q3:close()
  local l3 = m:loss(ids)
  T.ok("close-2.5", type(l3) == "number" and l3 == l3 and l3 ~= before, tostring(l3))
  -- a closed quantizer cannot be given to a model
  T.errors("close-2.6", function() m:quantize{weight = q1} end, "attempt to use a closed qr.Quantizer")
  -- the model collected before or after its quantizers: no order can crash
  m, m2 = nil, nil
  collectgarbage()
  collectgarbage()
  local m4 = tiny()
  local q4 = qr.quantizer("minmax")
  m4:quantize{weight = q4, act = q4}
  q4 = nil
  collectgarbage()
  m4:precision(prec(m4, 8, 8))
  T.ok("close-2.7", m4:loss(ids) == m4:loss(ids))
end

T.done()
