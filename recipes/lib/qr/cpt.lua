-- cpt.lua - the arms of the CPT comparison (MISSION step 5): joint
-- switchable-precision training against cyclic, progressive and random
-- schedules and single-width baselines, at EQUAL COMPUTE, from the same
-- base weights, data and seed; resumable; evaluation and paired
-- comparisons; training curves; the precision range test. recipes/cpt.lua
-- drives it on SmolLM2 and SQuAD; tests/recipes/cpt_tiny.lua on a tiny
-- random model with a synthetic evaluation (scores from the model's loss).
--
-- Compute is counted in configuration-passes: one forward + backward of one
-- configuration on one micro-batch of `batch` sequences. joint (the static
-- schedule) runs its K training configurations at each of `steps` steps:
-- K * steps * accum passes. Every single-configuration arm (cyclic_bits,
-- cyclic_configs, progressive, random, each single_<config>) runs one
-- configuration per step for K * steps steps: the same number of passes
-- (so it also sees K times as many distinct batches as joint). Learning
-- rate warm-up and checkpoint interval scale with the steps.
--
--   local C = require("qr.cpt")
--   local arms = C.plan(o, model, train_cfgs, eval_cfgs)  -- after C.check(o, K)
--   C.run{model=, arms=, data=, o=, run_dir=, evaluate=function(model, run_cfg) ... end, ...}

local P = require("qr.precision")

local C = {}

C.ARMS = {"joint", "cyclic_bits", "cyclic_configs", "progressive", "random", "single"}
C.COMPUTE = "configuration-passes: one forward+backward of one precision configuration on one micro-batch of "
  .. "`batch` sequences; every arm gets K * steps * accum of them (K = training configurations of joint)"

local function errorf(fmt, ...) error(string.format(fmt, ...), 0) end

-- "a,b" -> {"a", "b"}
function C.split(s)
  local t = {}
  for it in tostring(s):gmatch("[^,%s]+") do t[#t + 1] = it end
  return t
end

-- Every check that can be made before any model is loaded; raises a
-- message naming the option. o: arms, b_min, b_max, n_cycles, steps, k
-- (the joint set's size).
function C.check(o)
  local known = {}
  for _, a in ipairs(C.ARMS) do known[a] = true end
  local arms = C.split(o.arms)
  if #arms == 0 then errorf("cpt: --arms is empty (known: %s)", table.concat(C.ARMS, ",")) end
  local seen = {}
  for _, a in ipairs(arms) do
    if not known[a] then errorf("cpt: --arms: no arm named '%s' (known: %s)", a, table.concat(C.ARMS, ",")) end
    if seen[a] then errorf("cpt: --arms: '%s' given twice", a) end
    seen[a] = true
  end
  for _, k in ipairs{"b_min", "b_max"} do
    local v = math.tointeger(o[k])
    if not v or v < 2 or v > 16 then
      errorf("cpt: --%s=%s: expected an integer bit-width in 2..16", k:gsub("_", "-"), tostring(o[k]))
    end
  end
  if o.b_min > o.b_max then
    errorf("cpt: --b-min=%d > --b-max=%d (expected b_min <= b_max)", o.b_min, o.b_max)
  end
  local steps = math.tointeger(o.steps)
  if not steps or steps < 1 then errorf("cpt: --steps=%s: expected an integer >= 1", tostring(o.steps)) end
  local n = math.tointeger(o.n_cycles)
  if not n or n < 1 then errorf("cpt: --n-cycles=%s: expected an integer >= 1", tostring(o.n_cycles)) end
  local single_steps = (o.k or 1) * steps
  if (seen.cyclic_bits or seen.cyclic_configs) and n > single_steps then
    errorf("cpt: --n-cycles=%d is larger than the %d steps of the cyclic arm (K=%d configurations x --steps=%d)",
      n, single_steps, o.k or 1, steps)
  end
  return arms
end

-- The adapter of the training set nearest to (w, a) in layer i: the exact
-- pair when the set has it, else the smallest |w - w'| + |a - a'| (ties:
-- the higher w x a). Returns the adapter and whether it was exact.
local function nearest_adapter(train_cfgs, i, w, a)
  local best, bd, bp
  for _, c in ipairs(train_cfgs) do
    local l = c.layers[i]
    local d = math.abs(l.w - w) + math.abs(l.a - a)
    if not bd or d < bd or (d == bd and l.w * l.a > bp) then best, bd, bp = l.adapter, d, l.w * l.a end
  end
  return best, bd == 0
end

-- cfg with its layers' adapters set for an arm trained on train_cfgs
-- (adapters assigned). shared: every layer on slot 0 (cyclic_bits, single).
-- Returns the run configuration and "exact" | "nearest" | "shared".
function C.map_adapters(cfg, train_cfgs, shared)
  local run, how = {name = cfg.name, layers = {}}, shared and "shared" or "exact"
  for i, l in ipairs(cfg.layers) do
    local ad = 0
    if not shared then
      local ex
      ad, ex = nearest_adapter(train_cfgs, i, l.w, l.a)
      if not ex then how = "nearest" end
    end
    run.layers[i] = {name = l.name, w = l.w, a = l.a, adapter = ad}
  end
  return run, how
end

local function copy_cfgs(cfgs)
  local out = {}
  for k, c in ipairs(cfgs) do
    local layers = {}
    for i, l in ipairs(c.layers) do layers[i] = {name = l.name, w = l.w, a = l.a} end
    out[k] = {name = c.name, layers = layers}
  end
  return out
end

-- Whether every layer of cfg has one (w, a, group): a uniform bit-width.
function C.uniform(cfg)
  local f = cfg.layers[1]
  for _, l in ipairs(cfg.layers) do
    if l.w ~= f.w or l.a ~= f.a or (l.g or 0) ~= (f.g or 0) then return false end
  end
  return true
end

-- The evaluation configurations that get a single-precision baseline
-- (--singles): "" the uniform ones (a baseline per evaluated bit-width;
-- a mixed configuration such as mlp4 has none), "all" every one, else the
-- names listed (each must be an evaluation configuration).
function C.single_configs(eval_cfgs, spec)
  spec = spec or ""
  local out = {}
  if spec == "" or spec == "all" then
    for _, e in ipairs(eval_cfgs) do
      if spec == "all" or C.uniform(e) then out[#out + 1] = e end
    end
    return out
  end
  local by = {}
  for _, e in ipairs(eval_cfgs) do by[e.name] = e end
  for _, n in ipairs(C.split(spec)) do
    if not by[n] then
      local names = {}
      for _, e in ipairs(eval_cfgs) do names[#names + 1] = e.name end
      errorf("cpt: --singles: '%s' is not an evaluation configuration (--eval-configs: %s)", n, table.concat(names, ","))
    end
    out[#out + 1] = by[n]
  end
  return out
end

-- The arms to run, in --arms order (single expands to single_<config> for
-- each configuration of C.single_configs(eval_cfgs, o.singles)). model: a qr.Model (or a layer list);
-- train_cfgs: joint's set (K = #train_cfgs); eval_cfgs: the evaluation set.
-- Each arm: {name=, schedule=, schedule_opts=, configs= (adapters set),
-- slots=, steps=, passes_per_step=, passes=, warmup=, checkpoint_every=,
-- evals = {{config=, run=, adapters=}, ...}}.
function C.plan(o, model, train_cfgs, eval_cfgs)
  local K = #train_cfgs
  local arms = C.check{arms = o.arms, b_min = o.b_min, b_max = o.b_max, n_cycles = o.n_cycles, steps = o.steps, k = K}
  local accum = o.accum or 1
  local out = {}
  local function add(a)
    a.passes_per_step = (a.schedule == "static" and #a.configs or 1) * accum
    a.passes = a.steps * a.passes_per_step
    local scale = a.steps // o.steps
    a.warmup = math.min((o.warmup or 0) * scale, a.steps)
    a.checkpoint_every = (o.checkpoint_every or 0) * scale
    out[#out + 1] = a
  end
  local function switchable(name, schedule, opts, steps)
    local cfgs = copy_cfgs(train_cfgs)
    local slots = P.assign_adapters(cfgs)
    local evals = {}
    for _, e in ipairs(eval_cfgs) do
      local run, how = C.map_adapters(e, cfgs, false)
      evals[#evals + 1] = {config = e, run = run, adapters = how}
    end
    add{name = name, schedule = schedule, schedule_opts = opts, configs = cfgs, slots = slots, steps = steps,
        evals = evals}
  end
  for _, name in ipairs(arms) do
    if name == "joint" then
      switchable("joint", "static", {}, o.steps)
    elseif name == "cyclic_configs" then
      switchable(name, "cyclic", {mode = "configs", n_cycles = o.n_cycles}, K * o.steps)
    elseif name == "progressive" then
      switchable(name, "progressive", {direction = o.direction or "up"}, K * o.steps)
    elseif name == "random" then
      switchable(name, "random", {seed = o.seed or 1}, K * o.steps)
    elseif name == "cyclic_bits" then
      local list = {}
      for b = o.b_min, o.b_max do list[#list + 1] = string.format("w%da%d", b, b) end
      local cfgs = P.load(list, model)
      for _, c in ipairs(cfgs) do for _, l in ipairs(c.layers) do l.adapter = 0 end end
      local evals = {}
      for _, e in ipairs(eval_cfgs) do
        local run, how = C.map_adapters(e, cfgs, true)
        evals[#evals + 1] = {config = e, run = run, adapters = how}
      end
      add{name = name, schedule = "cyclic",
          schedule_opts = {mode = "bits", b_min = o.b_min, b_max = o.b_max, n_cycles = o.n_cycles},
          configs = cfgs, slots = 1, steps = K * o.steps, evals = evals}
    elseif name == "single" then
      for _, e in ipairs(C.single_configs(eval_cfgs, o.singles)) do
        local cfgs = copy_cfgs{e}
        for _, l in ipairs(cfgs[1].layers) do l.adapter = 0 end
        local run = C.map_adapters(e, cfgs, true)
        add{name = "single_" .. e.name, schedule = "static", schedule_opts = {}, configs = cfgs, slots = 1,
            steps = K * o.steps, evals = {{config = e, run = run, adapters = "own"}}}
      end
    end
  end
  return out
end

-- ---------------------------------------------------------------- files

local function read_lines(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local out = {}
  for line in f:lines() do
    local ok, v = pcall(qr.json.decode, line)
    if ok and type(v) == "table" then out[#out + 1] = v end
  end
  f:close()
  return out
end
C.read_jsonl = read_lines

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- An arm's training log: steps done, passes (configurations run per line x
-- accum), the configuration(s) of each step.
function C.log_of(dir, accum)
  local lines = read_lines(dir .. "/train.jsonl") or {}
  local passes, last = 0, 0
  for _, l in ipairs(lines) do
    local n = 0
    for _ in pairs(l.loss or {}) do n = n + 1 end
    passes = passes + n * (accum or 1)
    last = math.max(last, l.step or 0)
  end
  return {lines = lines, passes = passes, steps = last}
end

-- Whether an arm finished training: its adapters written and its log at the last step.
function C.trained(dir, steps)
  return exists(dir .. "/adapters.safetensors") and C.log_of(dir).steps >= steps
end

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
C.sh_quote = sh_quote

-- ---------------------------------------------------------------- statistics

-- The paired bootstrap of the per-question F1 difference a - b (both in
-- 0..1, the same questions in the same order): mean difference and 95% CI,
-- in F1 points, and a verdict word.
function C.paired(fa, fb, ci_opts)
  assert(#fa == #fb and #fa > 0, "paired: two per-question arrays of one length expected")
  local d, s = {}, 0
  for i = 1, #fa do d[i] = fa[i] - fb[i]; s = s + d[i] end
  local lo, hi = qr.squad.ci(d, ci_opts or {iters = 1000, seed = 1, level = 0.95})
  local diff = 100 * s / #d
  local verdict = (100 * lo > 0) and "helps" or (100 * hi < 0) and "hurts" or "no measurable difference"
  return {diff = diff, ci = {100 * lo, 100 * hi}, verdict = verdict, n = #d}
end

function C.sentence(arm, vs, config, p)
  return string.format("%s vs %s at %s: F1 %+.1f [%+.1f, %+.1f] (%s)", arm, vs, config, p.diff, p.ci[1], p.ci[2],
    p.verdict)
end

-- ---------------------------------------------------------------- training

-- Train one arm in dir (resuming a checkpoint there; skipped when done).
-- args: model, arm, data, o (batch, accum, seq, lr, min_lr, clip, rank,
-- seed, loss, loss_opts, teacher, bucket), dir. The LoRA bank is made anew
-- from o.seed (every arm starts from the same point) or loaded when done.
-- Returns {skipped=, steps=, seconds=, tokens=, resumed_from=}.
function C.train_arm(model, arm, data, o, dir)
  os.execute("mkdir -p " .. sh_quote(dir))
  model:lora{rank = o.rank, alpha = 2 * o.rank, slots = arm.slots, seed = o.seed}
  if C.trained(dir, arm.steps) then
    assert(model:load_adapters(dir .. "/adapters.safetensors"))
    return {skipped = true, steps = arm.steps}
  end
  local r = qr.train{model = model, configs = arm.configs, data = data, steps = arm.steps, batch = o.batch,
    accum = o.accum or 1, seq = o.seq, lr = o.lr, min_lr = o.min_lr, warmup = arm.warmup, clip = o.clip,
    schedule = arm.schedule, schedule_opts = arm.schedule_opts, loss = o.loss or "ce", loss_opts = o.loss_opts,
    teacher = o.teacher or "none", seed = o.seed, bucket = o.bucket or 0, run_dir = dir,
    checkpoint_every = arm.checkpoint_every, log_every = o.log_every or 1, progress = o.progress}
  return {skipped = false, steps = r.steps, seconds = r.seconds, tokens = r.tokens, resumed_from = r.resumed_from}
end

-- ---------------------------------------------------------------- curves

-- <run_dir>/curves.jsonl from each arm's train.jsonl: one line per (step,
-- configuration run): {arm=, step=, passes= (cumulative), config=,
-- wbits=, abits= (means over layers, unweighted), loss=}.
function C.curves(run_dir, arms, accum)
  local rows = {}
  for _, arm in ipairs(arms) do
    local bits = {}
    for _, c in ipairs(arm.configs) do
      local w, a = 0, 0
      for _, l in ipairs(c.layers) do w, a = w + l.w, a + l.a end
      bits[c.name] = {w / #c.layers, a / #c.layers}
    end
    local log = C.log_of(run_dir .. "/" .. arm.name, accum)
    local passes = 0
    for _, l in ipairs(log.lines) do
      local names = {}
      for k in pairs(l.loss or {}) do names[#names + 1] = k end
      table.sort(names)
      passes = passes + #names * (accum or 1)
      for _, k in ipairs(names) do
        local b = bits[k] or {32, 32}
        rows[#rows + 1] = {arm = arm.name, step = l.step, passes = passes, config = k, wbits = b[1], abits = b[2],
                           loss = l.loss[k]}
      end
    end
  end
  local path = run_dir .. "/curves.jsonl"
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  for _, r in ipairs(rows) do f:write(qr.json.encode(r), "\n") end
  f:close()
  assert(os.rename(tmp, path))
  return rows, path
end

-- <run_dir>/curves.png with gnuplot (scripts/setup_plot.sh installs it
-- when it can). Never fails the run: returns the path, or nil and why.
function C.plot(run_dir, rows, arms)
  local have = os.execute("command -v gnuplot >/dev/null 2>&1")
  if not have then
    os.execute("bash " .. sh_quote(qr.source_dir .. "/scripts/setup_plot.sh") .. " >&2")
    have = os.execute("command -v gnuplot >/dev/null 2>&1")
  end
  if not have then return nil, "gnuplot is not installed and could not be (scripts/setup_plot.sh): no plot" end
  local pdir = run_dir .. "/plot"
  os.execute("mkdir -p " .. sh_quote(pdir))
  local loss_plots, bits_plots = {}, {}
  -- ten colours that tell apart on white (gnuplot's default cycle has eight: a ninth arm repeated the first);
  -- the single baselines dashed
  local colours = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22"}
  local WINDOW = 10 -- passes in the running mean of the loss
  for k, arm in ipairs(arms) do
    local f = assert(io.open(pdir .. "/" .. arm.name .. ".dat", "w"))
    -- per step: passes, mean loss over the configurations run, mean w bits, and the running mean of the
    -- step losses over the last WINDOW configuration-passes (a step's loss is noisy: one micro-batch)
    local steps = {}
    local cur, sum, n, wb, pass = nil, 0, 0, 0, 0
    local function flush()
      if cur then steps[#steps + 1] = {pass = pass, loss = sum / n, wb = wb / n} end
    end
    for _, r in ipairs(rows) do
      if r.arm == arm.name then
        if r.step ~= cur then flush(); cur, sum, n, wb = r.step, 0, 0, 0 end
        sum, n, wb, pass = sum + r.loss, n + 1, wb + r.wbits, r.passes
      end
    end
    flush()
    local lo = 1
    for i, st in ipairs(steps) do
      while steps[lo].pass <= st.pass - WINDOW do lo = lo + 1 end
      local rs = 0
      for j = lo, i do rs = rs + steps[j].loss end
      f:write(string.format("%d %.6g %.4g %.6g\n", st.pass, st.loss, st.wb, rs / (i - lo + 1)))
    end
    f:close()
    local dat = "'" .. pdir .. "/" .. arm.name .. ".dat'"
    local style = string.format("lc rgb '%s' lw 2 dt %d", colours[(k - 1) % #colours + 1],
      arm.name:match("^single_") and 2 or 1)
    loss_plots[#loss_plots + 1] = dat .. " using 1:4 with lines " .. style .. " title '" .. arm.name .. "'"
    bits_plots[#bits_plots + 1] = dat .. " using 1:3 with steps " .. style .. " title '" .. arm.name .. "'"
  end
  local png = run_dir .. "/curves.png"
  local gp = pdir .. "/curves.gp"
  local f = assert(io.open(gp, "w"))
  -- cairo draws the dashes of the single baselines (gd's png terminal draws every line solid)
  local cairo = os.execute("gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1")
  f:write(cairo and "set terminal pngcairo size 1200,900 noenhanced font ',10'\n"
    or "set terminal png size 1200,900 noenhanced\n", "set output '", png, "'\n", "set multiplot layout 2,1\n",
    "set xlabel 'configuration-passes'\n",
    "set ylabel 'training loss, running mean over " .. WINDOW .. " passes'\n",
    "set key outside right\n", "plot ", table.concat(loss_plots, ", "), "\n",
    "set ylabel 'weight bits (mean over layers, configurations)'\n", "set yrange [0:33]\n", "plot ", table.concat(bits_plots, ", "), "\n",
    "unset multiplot\n")
  f:close()
  if not os.execute("gnuplot " .. sh_quote(gp) .. " 2>&1") then return nil, "gnuplot failed on " .. gp end
  return png
end

-- ---------------------------------------------------------------- precision range test

-- CPT's precision range test: for b = lo..hi, a fresh LoRA bank (the same
-- seed: the same start), k steps at uniform wBaB on the same data order;
-- the relative fall of the loss, 1 - mean(last m losses) / mean(first m)
-- (m = max(1, k // 5): the first are measured before or right after the
-- first updates), b_min = the lowest b whose fall >= threshold.
-- Returns {rows = {{bits=, start=, final=, fall=}, ...}, b_min = (or nil), ...}.
function C.prt(model, data, o, lo, hi, k, threshold)
  local m = math.max(1, k // 5)
  local rows, found = {}, nil
  for b = lo, hi do
    local cfgs = P.load({string.format("w%da%d", b, b)}, model)
    for _, l in ipairs(cfgs[1].layers) do l.adapter = 0 end
    model:lora{rank = o.rank, alpha = 2 * o.rank, slots = 1, seed = o.seed}
    local losses = {}
    qr.train{model = model, configs = cfgs, data = data, steps = k, batch = o.batch, accum = o.accum or 1,
      seq = o.seq, lr = o.lr, min_lr = o.min_lr, warmup = 0, clip = o.clip, seed = o.seed, bucket = o.bucket or 0,
      loss = o.loss or "ce", teacher = "none",
      progress = function(p) losses[#losses + 1] = p.loss[cfgs[1].name] end}
    local s0, s1 = 0, 0
    for i = 1, m do s0 = s0 + losses[i]; s1 = s1 + losses[#losses - m + i] end
    s0, s1 = s0 / m, s1 / m
    local fall = s0 > 0 and (1 - s1 / s0) or 0
    rows[#rows + 1] = {bits = b, start = s0, final = s1, fall = fall, losses = losses}
    if not found and fall >= threshold then found = b end
  end
  return {rows = rows, b_min = found, steps = k, threshold = threshold, window = m,
          rule = "b_min = the lowest width whose loss falls by >= threshold: 1 - mean(last m) / mean(first m) "
            .. "of k steps' training losses at uniform wBaB from the same start and data order"}
end

-- ---------------------------------------------------------------- the whole comparison

-- C.run{model=, arms= (C.plan), data=, o=, run_dir=, evaluate=, cost=, untuned=, meta=, say=}
--   evaluate(model, run_cfg, tuned) -> {em=, f1=, em_ci=, f1_ci=, n=, seconds=,
--                                       predictions = {{em=, f1=}, ...}}  (em, f1 in %; per question 0..1)
--   cost(cfg) -> {bitops_ratio=, bytes_ratio=} (optional)
--   untuned: evaluation configurations also evaluated without adapters (optional)
--   meta: fields written into results.json; meta.key: a string that must
--         match for old results to be kept (the model, the questions, ...)
-- Trains every arm in <run_dir>/<arm>, evaluates it, rewrites
-- <run_dir>/results.json atomically after each training and each
-- evaluation, skips what is already there; then the paired comparisons
-- against joint, curves.jsonl and curves.png. Returns the results table.
function C.run(a)
  local say = a.say or print
  local o, run_dir = a.o, a.run_dir
  os.execute("mkdir -p " .. sh_quote(run_dir))
  local out = run_dir .. "/results.json"
  local doc = {results = {}, arms = {}}
  local old = qr.json.read(out)
  if old and old.key == (a.meta and a.meta.key) then
    doc.results, doc.arms = old.results or {}, old.arms or {}
  end
  for k, v in pairs(a.meta or {}) do doc[k] = v end
  doc.compute = {definition = C.COMPUTE, arms = {}}
  for _, arm in ipairs(a.arms) do
    local names = {}
    for _, c in ipairs(arm.configs) do names[#names + 1] = c.name end
    doc.compute.arms[arm.name] = {steps = arm.steps, passes_per_step = arm.passes_per_step, passes = arm.passes,
      schedule = arm.schedule, schedule_opts = arm.schedule_opts, train_configs = names, slots = arm.slots,
      warmup = arm.warmup}
  end
  local function save()
    assert(qr.json.write(out, doc, {indent = true}))
  end
  local function find(arm, config, tuned)
    for _, r in ipairs(doc.results) do
      if r.arm == arm and r.config == config and r.tuned == tuned then return r end
    end
  end
  local function evaluate(armname, cfg, run, tuned, adapters)
    if find(armname, cfg.name, tuned) then
      say(string.format("  %-16s %-8s (already in %s)", armname, cfg.name, out))
      return
    end
    a.model:precision(run)
    local r = a.evaluate(a.model, run, tuned)
    local c = a.cost and a.cost(cfg) or {}
    local pf, pe = {}, {}
    for i, p in ipairs(r.predictions) do pf[i], pe[i] = p.f1, p.em end
    doc.results[#doc.results + 1] = {arm = armname, config = cfg.name, tuned = tuned, adapters = adapters,
      em = r.em, f1 = r.f1, em_ci = r.em_ci, f1_ci = r.f1_ci, n = r.n, seconds = r.seconds,
      bitops_ratio = c.bitops_ratio, bytes_ratio = c.bytes_ratio, shots = r.shots,
      per_question = {f1 = pf, em = pe}}
    say(string.format("  %-16s %-8s %-7s EM %6.2f [%5.2f,%5.2f]  F1 %6.2f [%5.2f,%5.2f]", armname, cfg.name,
      tuned and "tuned" or "untuned", r.em, r.em_ci[1], r.em_ci[2], r.f1, r.f1_ci[1], r.f1_ci[2]))
    save()
  end

  for _, cfg in ipairs(a.untuned or {}) do
    local run = {name = cfg.name, layers = {}}
    for i, l in ipairs(cfg.layers) do run.layers[i] = {name = l.name, w = l.w, a = l.a, adapter = -1} end
    evaluate("untuned", cfg, run, false, "none")
  end

  for _, arm in ipairs(a.arms) do
    local dir = run_dir .. "/" .. arm.name
    say(string.format("arm %s: %s %s, %d steps x %d passes = %d configuration-passes", arm.name, arm.schedule,
      qr.json.encode(arm.schedule_opts), arm.steps, arm.passes_per_step, arm.passes))
    local r = C.train_arm(a.model, arm, a.data, o, dir)
    local log = C.log_of(dir, o.accum or 1)
    local info = doc.arms[arm.name] or {}
    info.dir = dir
    info.steps = log.steps
    info.passes = log.passes
    info.planned_passes = arm.passes
    if not r.skipped then info.seconds, info.tokens, info.resumed_from = r.seconds, r.tokens, r.resumed_from end
    doc.arms[arm.name] = info
    say(string.format("  %s: %s; %d steps, %d configuration-passes in train.jsonl", arm.name,
      r.skipped and "already trained (adapters loaded)" or string.format("trained in %.0fs", r.seconds),
      log.steps, log.passes))
    save()
    for _, e in ipairs(arm.evals) do evaluate(arm.name, e.config, e.run, true, e.adapters) end
  end

  -- paired comparisons against joint, on the same questions (doc.paired[i].vs = "joint"), then against
  -- each configuration's single baseline (vs = "single_<config>")
  doc.paired = {}
  -- arm against vs at config, when both have per-question scores on the same questions
  local function pair(arm, vs, config)
    local x, b = find(arm, config, true), find(vs, config, true)
    if not (x and b and #x.per_question.f1 == #b.per_question.f1 and #x.per_question.f1 > 0) then return end
    local p = C.paired(x.per_question.f1, b.per_question.f1)
    p.arm, p.vs, p.config = arm, vs, config
    p.sentence = C.sentence(arm, vs, config, p)
    doc.paired[#doc.paired + 1] = p
    say("  " .. p.sentence)
  end
  local have_joint = false
  for _, arm in ipairs(a.arms) do have_joint = have_joint or arm.name == "joint" end
  if have_joint then
    say("\npaired bootstrap (95%) of the per-question F1 difference, each arm vs joint:")
    for _, arm in ipairs(a.arms) do
      if arm.name ~= "joint" then
        for _, e in ipairs(arm.evals) do pair(arm.name, "joint", e.config.name) end
      end
    end
  else
    say("\n(no joint arm: no paired comparisons)")
  end
  -- and against the single-precision baseline of each configuration: at equal compute AND equal data
  -- (a single-configuration arm sees K times joint's batches; single_<c> sees exactly those), whether
  -- one schedule's model serves configuration c as well as a model trained at c alone
  local singles = {}
  for _, arm in ipairs(a.arms) do
    local c = arm.name:match("^single_(.+)$")
    if c then singles[c] = arm.name end
  end
  if next(singles) then
    say("\npaired bootstrap (95%) of the per-question F1 difference, each arm vs the single-precision baseline:")
    for _, arm in ipairs(a.arms) do
      if not arm.name:match("^single_") then
        for _, e in ipairs(arm.evals) do
          local vs = singles[e.config.name]
          if vs then pair(arm.name, vs, e.config.name) end
        end
      end
    end
  end
  save()

  local rows, cpath = C.curves(run_dir, a.arms, o.accum or 1)
  say("wrote " .. cpath .. string.format(" (%d rows)", #rows))
  if a.plot ~= false then
    local png, why = C.plot(run_dir, rows, a.arms)
    say(png and ("wrote " .. png) or ("curves.png skipped: " .. why))
  end
  say("wrote " .. out)
  return doc
end

return C
