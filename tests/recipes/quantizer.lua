-- quantizer.lua - plugins and quantizers from Lua: qr.plugins(),
-- qr.quantizer(name, opts):fake(rows, bits) against hand-checked values,
-- :backward, and the errors (unknown name lists the known ones, bad
-- options, bits 1 and 17, NaN, ragged rows, qr.load_plugin failures),
-- closing a quantizer that a model still uses (the model keeps it: run
-- under ASan in CI's second pass, a use after free would abort), and weight
-- groups on a tiny model (a configuration's g, weight_opts.group, errors,
-- qr.train).
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

do -- weight groups (core/model/linear.c): a configuration's g per layer, model:quantize's weight_opts.group
  local ids = {}
  for i = 1, 12 do ids[i] = (i * 5 + 2) % 31 end
  -- n_embd 64, n_ff 80: down_proj has in = 80 = 2*32 + a tail of 16
  local m = qr.model_new{arch = "llama", n_layer = 1, n_embd = 64, n_head = 4, n_kv_head = 2, n_ff = 80,
    n_vocab = 31, n_ctx = 16, seed = 9}
  local lin = m:linears()
  local function cfg(g, gfn)
    local layers = {}
    for i, l in ipairs(lin) do layers[i] = {name = l.name, w = 4, a = 32, g = gfn and gfn(l) or g} end
    return {name = "w4a32g" .. tostring(g), layers = layers}
  end
  m:quantize{weight = "minmax"}
  m:precision(cfg(nil))
  local per_channel = m:logits(ids)
  m:precision(cfg(32))
  local g32 = m:logits(ids)
  m:precision(cfg(16))
  local g16 = m:logits(ids)
  m:precision(cfg(nil, function(l) return l.in_features end)) -- one group per row
  T.eq("group-1.1", m:logits(ids), per_channel)
  T.ok("group-1.2", T.show(g32) ~= T.show(per_channel) and T.show(g16) ~= T.show(g32), "groups change nothing")
  -- the model's default group, for layers whose configuration gives none
  m:quantize{weight = "minmax", weight_opts = {group = 32}}
  m:precision(cfg(nil))
  T.eq("group-2.1", m:logits(ids), g32)
  m:precision(cfg(16)) -- the configuration's g wins over the default
  T.eq("group-2.2", m:logits(ids), g16)
  m:precision(cfg(0)) -- 0 = absent: the default again
  T.eq("group-2.3", m:logits(ids), g32)
  -- set before or after model:precision: the same (the cache follows the group)
  m:quantize{weight = "minmax"}
  T.eq("group-2.4", m:logits(ids), per_channel)
  -- the other options still reach the plugin; the group does not
  m:quantize{weight = "minmax", weight_opts = {group = 32, symmetric = false}}
  m:precision(cfg(nil))
  local asym32 = m:logits(ids)
  m:quantize{weight = qr.quantizer("minmax", {symmetric = false})}
  m:precision(cfg(32))
  T.eq("group-2.5", m:logits(ids), asym32)
  T.ok("group-2.6", T.show(asym32) ~= T.show(g32), "symmetric=false did not reach the plugin")
  -- a qr.Quantizer given as the weight takes weight_opts.group too
  m:quantize{weight = qr.quantizer("minmax"), weight_opts = {group = 32}}
  m:precision(cfg(nil))
  T.eq("group-2.7", m:logits(ids), g32)
  -- the host groups every row-wise quantizer: log too
  m:quantize{weight = "log", weight_opts = {group = 32}}
  m:precision(cfg(nil))
  local log32 = m:logits(ids)
  m:quantize{weight = "log"}
  local log_pc = m:logits(ids)
  m:precision(cfg(32))
  T.eq("group-2.8", m:logits(ids), log32)
  T.ok("group-2.9", T.show(log32) ~= T.show(log_pc), "log: groups change nothing")
  -- through qr.precision's strings
  m:quantize{weight = "minmax"}
  m:precision("w4a32g32")
  T.eq("group-3.1", m:logits(ids), g32)
  m:precision({default = "w4a32g16"})
  T.eq("group-3.2", m:logits(ids), g16)
  m:precision("w4a32")
  T.eq("group-3.3", m:logits(ids), per_channel)
  -- errors, naming the value
  T.errors("group-4.1", function() m:quantize{weight = "minmax", weight_opts = {group = 1}} end,
    "quantize: weight_opts.group = 1: expected an integer >= 2")
  T.errors("group-4.2", function() m:quantize{weight = "minmax", weight_opts = {group = -3}} end,
    "quantize: weight_opts.group = %-3: expected an integer >= 2")
  T.errors("group-4.3", function() m:quantize{weight = "minmax", weight_opts = {group = 2.5}} end,
    "quantize: weight_opts.group = 2.5: expected an integer")
  T.errors("group-4.4", function() m:quantize{weight = "minmax", weight_opts = {group = "many"}} end,
    "quantize: weight_opts.group = many")
  T.errors("group-4.5", function() m:quantize{weight = "minmax", act = "minmax", act_opts = {group = 32}} end,
    "quantize: act_opts.group: groups are for weights")
  T.errors("group-4.6", function() qr.quantizer("minmax", {group = 32}) end, "quantizer 'minmax': unknown option 'group'")
  local bad = cfg(nil)
  bad.layers[3].g = 1
  T.errors("group-4.7", function() m:precision(bad) end,
    "precision: layer model.layers.0.self_attn.v_proj: weight group 1: expected a group size >= 2")
  bad.layers[3].g = -3
  T.errors("group-4.8", function() m:precision(bad) end, "weight group %-3")
  bad.layers[3].g = 2.5
  T.errors("group-4.9", function() m:precision(bad) end, "precision: g must be an integer, got 2.5")
  T.errors("group-4.10", function() m:precision("w4a32g1") end, "'w4a32g1': weight group '1' is not allowed")
  -- a refused quantize or precision changed nothing
  T.eq("group-4.11", m:logits(ids), per_channel)
end

do -- qr.train carries a configuration's g to the model at every step
  local P = require("qr.precision")
  local tm = qr.model_new{arch = "llama", n_layer = 1, n_embd = 64, n_head = 4, n_kv_head = 2, n_ff = 80,
    n_vocab = 31, n_ctx = 32, seed = 4}
  tm:quantize{weight = "minmax"}
  local cfgs = P.load("w4a32g32,w4a32", tm)
  tm:lora{rank = 2, slots = P.assign_adapters(cfgs), seed = 1}
  local data = {}
  for i = 1, 4 do
    local ids, tg = {}, {}
    for j = 1, 16 do ids[j] = (i * 7 + j * 3) % 31 end
    for j = 1, 16 do tg[j] = j < 16 and ids[j + 1] or -1 end
    data[i] = {ids = ids, targets = tg}
  end
  local first
  qr.train{model = tm, configs = cfgs, data = data, steps = 1, batch = 2, seq = 16, lr = 1e-3, seed = 1,
    progress = function(p) first = first or p.loss end}
  -- the same batch, the same (zero) adapters: only the group differs
  T.ok("group-5.1", first and type(first.w4a32g32) == "number" and type(first.w4a32) == "number" and
    first.w4a32g32 ~= first.w4a32, T.show(first))
  cfgs[1].layers[2].g = 1
  T.errors("group-5.2", function()
    qr.train{model = tm, configs = cfgs, data = data, steps = 1, batch = 2, seq = 16, progress = false}
  end, "weight group 1")
end

T.done()
