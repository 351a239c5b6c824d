-- cpt_tiny.lua - recipe regression test for the CPT comparison's machinery
-- (recipes/lib/qr/cpt.lua, used by recipes/cpt.lua) on a tiny random GPT-2
-- and synthetic data, with a synthetic evaluation (per-question scores from the
-- model's loss): every arm trains exactly its configuration-passes, the
-- schedule's choice at each step is what qr.schedule says, a run stopped
-- mid-arm resumes, a rerun skips finished arms and evaluations, the paired
-- comparisons are there, bad options are refused naming the option.
-- Run from the repo root: qrun tests/recipes/cpt_tiny.lua
local T = require("qr.qrtest")
local P = require("qr.precision")
local C = require("qr.cpt")

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")

local m = qr.model_new{arch = "gpt2", n_layer = 1, n_embd = 32, n_head = 2, n_vocab = 61, n_ctx = 48, seed = 1}
m:quantize{weight = "minmax", act = "minmax"}
local train_cfgs = P.load({"fp", "w8a8", "w4a8"}, m) -- K = 3
local eval_cfgs = P.load({"w8a8", "w6a6", "w4a8"}, m)

local data, s = {}, 11
local function rnd(n) s = (s * 1103515245 + 12345) % 2147483648; return s % n end
for i = 1, 24 do
  local plen = 4 + rnd(10)
  local ids, tg = {}, {}
  for j = 1, plen do ids[j] = 1 + rnd(59) end
  for j = 1, plen do ids[plen + j] = ids[j] end
  for j = 1, #ids do tg[j] = (j >= plen and j < #ids) and ids[j + 1] or -1 end
  data[i] = {ids = ids, targets = tg}
end

-- the synthetic evaluation: 12 "questions", F1 from the model's loss on each
local evaluated = 0
local function evaluate(model, run, tuned)
  evaluated = evaluated + 1
  local preds, sf = {}, 0
  for i = 1, 12 do
    local f1 = math.exp(-model:loss(data[i].ids) / 4)
    preds[i] = {f1 = f1, em = f1 > 0.4 and 1 or 0}
    sf = sf + f1
  end
  return {em = 0, f1 = 100 * sf / 12, em_ci = {0, 0}, f1_ci = {0, 100}, n = 12, seconds = 0, predictions = preds}
end

local o = {arms = "joint,cyclic_bits,cyclic_configs,progressive,random,single", steps = 4, b_min = 4, b_max = 6,
  n_cycles = 2, batch = 2, accum = 1, seq = 48, lr = 1e-2, min_lr = 1e-3, warmup = 1, clip = 1, rank = 2, seed = 3,
  checkpoint_every = 1, progress = false}

-- 1. the plan: equal compute
local arms = C.plan(o, m, train_cfgs, eval_cfgs)
local names, by = {}, {}
for _, a in ipairs(arms) do names[#names + 1] = a.name; by[a.name] = a end
T.eq("cpt-1.1", names, {"joint", "cyclic_bits", "cyclic_configs", "progressive", "random", "single_w8a8",
  "single_w6a6", "single_w4a8"})
local ok = true
for _, a in ipairs(arms) do ok = ok and a.passes == 12 end
T.ok("cpt-1.2", ok, "every arm plans K * steps = 12 configuration-passes")
T.eq("cpt-1.3", {by.joint.steps, by.joint.passes_per_step, by.cyclic_bits.steps, by.single_w6a6.steps}, {4, 3, 12, 12})
T.eq("cpt-1.4", {by.cyclic_bits.slots, by.joint.slots, #by.cyclic_bits.configs}, {1, 3, 3})
-- w6a6 is not in joint's set: its layers use the nearest adapter; cyclic_bits shares slot 0
T.eq("cpt-1.5", {by.joint.evals[1].adapters, by.joint.evals[2].adapters, by.cyclic_bits.evals[2].adapters},
  {"exact", "nearest", "shared"})
T.eq("cpt-1.6", by.joint.evals[2].run.layers[1].adapter, by.joint.configs[2].layers[1].adapter) -- w6a6 -> w8a8's

-- 2. a run stopped mid-arm (progressive, at step 5 of 12) resumes from its checkpoint
local prog = {by.progressive}
local stop = {}
for k, v in pairs(o) do stop[k] = v end
stop.progress = function(p) if p.step == 5 then return false end end -- false stops the run
T.errors("cpt-2.1", function() C.train_arm(m, prog[1], data, stop, dir .. "/progressive") end, "stopped")
T.eq("cpt-2.2", C.log_of(dir .. "/progressive").steps, 5)

local lines = {}
local doc = C.run{model = m, arms = arms, data = data, o = o, run_dir = dir, evaluate = evaluate,
  untuned = eval_cfgs, meta = {key = "tiny"}, plot = false, say = function(x) lines[#lines + 1] = x end}
local all = table.concat(lines, "\n")
T.eq("cpt-2.3", {doc.arms.progressive.resumed_from, doc.arms.progressive.steps}, {5, 12})
local passes_ok, detail = true, {}
for _, a in ipairs(arms) do
  local log = C.log_of(dir .. "/" .. a.name)
  detail[#detail + 1] = a.name .. "=" .. log.passes
  passes_ok = passes_ok and log.passes == 12 and doc.arms[a.name].passes == 12
end
T.ok("cpt-2.4", passes_ok, "configuration-passes in train.jsonl: " .. table.concat(detail, " "))
-- 3 untuned + 5 arms x 3 + 3 single = 21 evaluations
T.eq("cpt-2.5", #doc.results, 21)
T.eq("cpt-2.6", evaluated, 21)
-- vs joint: 4 schedule arms x 3 configs + each single at its own config; vs the single baselines:
-- joint and the 4 schedule arms x 3 configs
T.eq("cpt-2.7", #doc.paired, 4 * 3 + 3 + 5 * 3)
local vs_single = 0
for _, p in ipairs(doc.paired) do
  if p.vs == "single_" .. p.config then vs_single = vs_single + 1 end
end
T.eq("cpt-2.7.1", vs_single, 5 * 3)
T.ok("cpt-2.8", doc.paired[1].sentence:match("^cyclic_bits vs joint at w8a8: F1 [%+%-]%d+%.%d %[[%+%-]%d+%.%d, [%+%-]%d+%.%d%] %(")
  ~= nil, doc.paired[1].sentence)
T.eq("cpt-2.9", doc.compute.arms.cyclic_configs.passes, 12)

-- 3. the schedule's choice at each step is recorded (curves.jsonl) and is qr.schedule's
local curves = C.read_jsonl(dir .. "/curves.jsonl")
local function choices(arm)
  local t = {}
  for _, r in ipairs(curves) do if r.arm == arm then t[#t + 1] = r.config end end
  return t
end
for i, name in ipairs{"cyclic_bits", "cyclic_configs", "progressive", "random"} do
  local a = by[name]
  local sch = qr.schedule(a.schedule, a.schedule_opts)
  local want = {}
  for t = 0, a.steps - 1 do want[#want + 1] = a.configs[sch:select(t, a.steps, a.configs, m)[1]].name end
  T.eq("cpt-3." .. i, choices(name), want)
end
local jb = choices("joint")
T.eq("cpt-3.5", #jb, 12) -- 3 configurations at each of 4 steps
T.ok("cpt-3.6", curves[1].passes ~= nil and curves[1].wbits ~= nil and curves[1].loss ~= nil, "curve rows")

-- 4. a rerun skips finished arms and evaluations
local before = io.open(dir .. "/joint/train.jsonl"):read("a")
lines = {}
local doc2 = C.run{model = m, arms = arms, data = data, o = o, run_dir = dir, evaluate = evaluate,
  untuned = eval_cfgs, meta = {key = "tiny"}, plot = false, say = function(x) lines[#lines + 1] = x end}
all = table.concat(lines, "\n")
local _, skipped = all:gsub("already trained", "")
T.eq("cpt-4.1", skipped, #arms)
T.eq("cpt-4.2", evaluated, 21) -- nothing evaluated again
T.eq("cpt-4.3", io.open(dir .. "/joint/train.jsonl"):read("a"), before)
T.eq("cpt-4.4", #doc2.paired, #doc.paired)
T.near("cpt-4.5", doc2.paired[3].diff, doc.paired[3].diff, 1e-12)
T.eq("cpt-4.6", qr.json.read(dir .. "/results.json").compute.definition, C.COMPUTE)

-- 5. bad options, refused naming the option
local base = {arms = "joint", b_min = 4, b_max = 8, n_cycles = 2, steps = 4, k = 3}
local function with(k, v) local t = {}; for a, b in pairs(base) do t[a] = b end; t[k] = v; return t end
T.errors("cpt-5.1", function() C.check(with("arms", "joint,cyclic")) end, "--arms: no arm named 'cyclic'")
T.errors("cpt-5.2", function() C.check(with("b_min", 9)) end, "--b-min=9 > --b-max=8")
T.errors("cpt-5.3", function() C.check(with("b_min", 1)) end, "--b-min=1: expected an integer bit-width in 2..16")
T.errors("cpt-5.4", function() C.check(with("b_max", 17)) end, "--b-max=17")
local c = with("arms", "cyclic_bits")
c.n_cycles = 13
T.errors("cpt-5.5", function() C.check(c) end, "--n-cycles=13 is larger than the 12 steps of the cyclic arm")
c.n_cycles = 12
T.ok("cpt-5.6", pcall(C.check, c), "n_cycles = the cyclic arm's steps is allowed")
T.errors("cpt-5.7", function() C.check(with("arms", "joint,joint")) end, "given twice")

-- 6. the paired statistic
local p = C.paired({1, 1, 1, 1}, {0, 0, 0, 0})
T.eq("cpt-6.1", {p.diff, p.verdict}, {100, "helps"})
p = C.paired({0, 1, 0, 1}, {1, 0, 1, 0})
T.eq("cpt-6.2", p.verdict, "no measurable difference")

-- 7. the precision range test: one row per width, the same start, b_min the lowest width that made progress
local prt = C.prt(m, data, o, 2, 5, 5, 0.01)
T.eq("cpt-7.1", #prt.rows, 4)
T.eq("cpt-7.2", {prt.rows[1].bits, prt.rows[4].bits, #prt.rows[1].losses, prt.window}, {2, 5, 5, 1})
local lowest
for _, r in ipairs(prt.rows) do
  if not lowest and r.fall >= 0.01 then lowest = r.bits end
  T.ok("cpt-7.3." .. r.bits, math.abs(r.fall - (1 - r.final / r.start)) < 1e-12, "fall = 1 - final / start")
end
T.eq("cpt-7.4", prt.b_min, lowest)
local never = C.prt(m, data, o, 2, 3, 5, 0.99)
T.eq("cpt-7.5", never.b_min, nil)

-- 8. which configurations get a single baseline: the uniform ones by default (a mixed one has none), all, a list
local mixed = P.load({"w8a8", {name = "mix", default = "w8a8", ["*.mlp.*"] = "w4a8"}, "w4a8"}, m)
local function names_of(list) local t = {} for i, e in ipairs(list) do t[i] = e.name end return t end
T.eq("cpt-8.1", names_of(C.single_configs(mixed, "")), {"w8a8", "w4a8"})
T.eq("cpt-8.2", names_of(C.single_configs(mixed, "all")), {"w8a8", "mix", "w4a8"})
T.eq("cpt-8.3", names_of(C.single_configs(mixed, "mix")), {"mix"})
T.errors("cpt-8.4", function() C.single_configs(mixed, "w2a2") end,
  "--singles: 'w2a2' is not an evaluation configuration (--eval-configs: w8a8,mix,w4a8)")
local o8 = {}
for k, v in pairs(o) do o8[k] = v end
o8.arms = "single"
T.eq("cpt-8.5", names_of(C.plan(o8, m, train_cfgs, mixed)), {"single_w8a8", "single_w4a8"})

os.execute("rm -rf '" .. dir .. "'")
T.done()
