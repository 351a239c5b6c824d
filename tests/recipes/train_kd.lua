-- train_kd.lua - distillation through qr.train: loss = "kd" with the fp
-- base model as teacher (teacher = "fp").
--   kd-1  at step 1 the fp configuration's student (zero-initialised
--         adapters) IS the teacher: its KL is exactly 0; w8a8's is > 0
--   kd-2  after tuning, the w8a8 configuration is closer to the teacher
--   kd-3  kd without a teacher, and bad kd options, are refused by name
--   kd-4  teacher = "cascade": configurations run from the highest precision
--         down, each taught by the one before (InstantNet); the order they
--         are given in does not matter, and the teachers differ from "fp"
--   kd-5  loss = "feature" (hidden-state MSE to the fp teacher): 0 for the
--         untouched fp student, and tuning brings w4a4's hidden states
--         closer; a weighted sum "ce+0.5*feature" with a routed option
--         trains; "feature" without a teacher is refused
--   kd-6  teacher = "tuned" (the step's highest configuration, with its
--         adapters, teaches the others) and "cascade" with loss "ce+kd":
--         the top configuration is its own teacher, so its losses over 8
--         steps equal a ce-only run's exactly (no clipping couples them),
--         while with teacher = "fp" they do not (KL to the frozen base);
--         the others' differ from the ce run's; "ce+feature" trains
local T = require("qr.qrtest")
local P = require("qr.precision")

local function setup()
  local m = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97,
    n_ctx = 64, seed = 5}
  m:quantize{weight = "minmax", act = "minmax"}
  local cfgs = P.load("fp,w4a4", m)
  m:lora{rank = 4, slots = P.assign_adapters(cfgs), seed = 2}
  return m, cfgs
end

local data, s = {}, 11
local function rnd(n) s = (s * 1103515245 + 12345) % 2147483648; return s % n end
for i = 1, 16 do
  local ids, tg = {}, {}
  for j = 1, 24 do ids[j] = 1 + rnd(96) end
  for j = 1, 24 do tg[j] = j >= 12 and j < 24 and ids[j + 1] or -1 end
  data[i] = {ids = ids, targets = tg}
end

local m, cfgs = setup()
local fp, q = {}, {}
qr.train{model = m, configs = cfgs, data = data, steps = 30, batch = 4, seq = 32, lr = 2e-2, seed = 1,
  loss = "kd", loss_opts = {temperature = 2}, teacher = "fp",
  progress = function(p) fp[#fp + 1] = p.loss.fp; q[#q + 1] = p.loss.w4a4 end}
T.eq("kd-1.1", fp[1], 0.0)
T.ok("kd-1.2", q[1] > 0, string.format("w4a4 KL at step 1 = %.3g", q[1]))
local first, last = 0, 0
for i = 1, 5 do first = first + q[i]; last = last + q[#q - 5 + i] end
T.ok("kd-2.1", last < 0.8 * first,
  string.format("w4a4 KL to the fp teacher, mean of the first 5 steps %.4g -> last 5 steps %.4g", first / 5, last / 5))

local m2, cfgs2 = setup()
T.errors("kd-3.1", function()
  qr.train{model = m2, configs = cfgs2, data = data, steps = 1, batch = 2, seq = 32, loss = "kd", progress = false}
end, "teacher")
T.errors("kd-3.2", function()
  qr.train{model = m2, configs = cfgs2, data = data, steps = 1, batch = 2, seq = 32, loss = "kd", teacher = "fp",
    loss_opts = {temperature = -1}, progress = false}
end, "temperature")
T.errors("kd-3.3", function()
  qr.train{model = m2, configs = cfgs2, data = data, steps = 1, batch = 2, seq = 32, teacher = "int8", progress = false}
end, "teacher")
-- kd-4: step-1 losses (all adapters still B = 0) under a cascade
local function step1(list, teacher)
  local mm = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97,
    n_ctx = 64, seed = 5}
  mm:quantize{weight = "minmax", act = "minmax"}
  local cs = P.load(list, mm)
  mm:lora{rank = 4, slots = P.assign_adapters(cs), seed = 2}
  local first
  qr.train{model = mm, configs = cs, data = data, steps = 1, batch = 4, seq = 32, lr = 1e-2, seed = 1,
    loss = "kd", teacher = teacher, progress = function(p) first = first or p.loss end}
  return first
end
local a = step1("fp,w8a8,w4a4", "cascade")
local b = step1("w4a4,fp,w8a8", "cascade")
local f = step1("fp,w8a8,w4a4", "fp")
T.eq("kd-4.1", {a.fp, a.w8a8, a.w4a4}, {b.fp, b.w8a8, b.w4a4})
T.eq("kd-4.2", a.fp, 0.0)
T.eq("kd-4.3", a.w8a8, f.w8a8)
T.ok("kd-4.4", a.w4a4 ~= f.w4a4 and a.w4a4 > 0,
  string.format("w4a4 taught by w8a8 %.6g vs by fp %.6g", a.w4a4, f.w4a4))

-- kd-5: the feature loss, alone and in a weighted sum
local mf, cf = setup()
local ffp, fq = {}, {}
qr.train{model = mf, configs = cf, data = data, steps = 30, batch = 4, seq = 32, lr = 2e-2, seed = 1,
  loss = "feature", teacher = "fp",
  progress = function(p) ffp[#ffp + 1] = p.loss.fp; fq[#fq + 1] = p.loss.w4a4 end}
T.eq("kd-5.1", ffp[1], 0.0)
local f1, f2 = 0, 0
for i = 1, 5 do f1 = f1 + fq[i]; f2 = f2 + fq[#fq - 5 + i] end
T.ok("kd-5.2", f2 < 0.8 * f1,
  string.format("w4a4 hidden-state MSE to the fp teacher, first 5 steps %.4g -> last 5 steps %.4g", f1 / 5, f2 / 5))
local ms, cs5 = setup()
local r5 = qr.train{model = ms, configs = cs5, data = data, steps = 3, batch = 4, seq = 32, lr = 1e-2, seed = 1,
  loss = "ce+0.5*feature", loss_opts = {["feature.layers"] = "last"}, teacher = "fp", progress = false}
T.ok("kd-5.3", r5.steps == 3 and r5.final_loss.w4a4 > 0, "ce+0.5*feature trains")
T.errors("kd-5.4", function()
  qr.train{model = m2, configs = cfgs2, data = data, steps = 1, batch = 2, seq = 32, loss = "feature",
    progress = false}
end, "teacher")
-- kd-6: distillation from the configuration being tuned
local function losses(teacher, loss, list)
  local mm = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97,
    n_ctx = 64, seed = 5}
  mm:quantize{weight = "minmax", act = "minmax"}
  local cs = P.load(list or "w4a4,fp,w8a8", mm)
  mm:lora{rank = 4, slots = P.assign_adapters(cs), seed = 2}
  local out = {fp = {}, w4a4 = {}}
  qr.train{model = mm, configs = cs, data = data, steps = 8, batch = 4, seq = 32, lr = 2e-2, seed = 1, clip = 0,
    loss = loss, teacher = teacher, progress = function(p) out.fp[#out.fp + 1] = p.loss.fp; out.w4a4[#out.w4a4 + 1] = p.loss.w4a4 end}
  return out
end
local ce, tu, ca, fb = losses(nil, "ce"), losses("tuned", "ce+kd"), losses("cascade", "ce+kd"), losses("fp", "ce+kd")
T.eq("kd-6.1", tu.fp, ce.fp)
T.eq("kd-6.2", ca.fp, ce.fp)
T.ok("kd-6.3", fb.fp[8] ~= ce.fp[8], string.format("fp's step-8 loss with the frozen-base teacher %.6g, ce %.6g", fb.fp[8], ce.fp[8]))
T.ok("kd-6.4", tu.w4a4[1] > ce.w4a4[1] and tu.w4a4[8] ~= ca.w4a4[8],
  string.format("w4a4 step 1: ce+kd %.6g > ce %.6g; step 8 tuned %.6g vs cascade %.6g", tu.w4a4[1], ce.w4a4[1], tu.w4a4[8], ca.w4a4[8]))
local tf = losses("tuned", "ce+feature")
T.eq("kd-6.5", tf.fp, ce.fp)
T.ok("kd-6.6", tf.w4a4[1] > ce.w4a4[1], "w4a4 pays a feature term")
T.done()
