-- search.lua - MISSION step 4: the best per-layer precision configuration
-- for a cost budget, on a switchable LoRA bank tuned by sp.lua (every layer
-- has an adapter for each trained (w, a) pair).
--
--   qrun recipes/search.lua --sp-dir=runs/sp --run-dir=runs/search
--   qrun recipes/search.lua --sp-dir=runs/sp --budget=0.04,0.05 --metric=bitops --method=ilp
--   qrun recipes/search.lua --plan          # what the run would evaluate, and exit
--
-- 1. A proxy score, one forward pass per example: the mean NLL of the gold
--    answer tokens (teacher forcing) and the KL from the base
--    configuration's (the highest choice: fp with sp.lua's bank)
--    answer-token distribution, on --calib-limit training questions that
--    sp.lua did not use (after its --train-limit, from the next paragraph).
-- 2. Sensitivity: the score with one layer, one sub-module kind, one block
--    lowered to each cheaper choice (weights and activations together;
--    separately too for --sens-separate), minus the base's
--    (sensitivity.json, heatmap.png).
-- 3. Search under each --budget (a ratio to fp of --metric): greedy and an
--    ILP (GLPK) on the per-layer sensitivities taken as additive, and an
--    evolutionary search scored by the real proxy. Everything scored goes
--    into the Pareto front (pareto.png) with the uniform presets and
--    hand-made policies. Each configuration found is written as
--    <run-dir>/configs/<method>-<budget>.lua (any recipe's --configs).
-- 4. Confirmation: dev EM/F1 with bootstrap CIs for each method's
--    configuration at each budget, the presets and the policies (at least
--    --corr-min configurations), the Spearman correlation of the proxy with
--    F1, each method against the best uniform preset within its budget.
--
-- Resumable: scores are cached in <run-dir>/proxy-cache.json, dev
-- evaluations in results.json; a rerun recomputes nothing it has. Without
-- --sp-dir a bank is trained first in <run-dir>/sp with sp.lua's defaults.
-- docs/SEARCH.md.
local S = require("qr.search")

local o = qr.opts{
  {"sp-dir", "", "a run directory of sp.lua (adapters.safetensors, results.json); empty: train one in <run-dir>/sp"},
  {"run-dir", "runs/search", "run directory (proxy-cache.json, sensitivity.json, results.json, configs/, plots)"},
  {"model", "", "a .gguf file or a Hugging Face GPT-2 directory (default: the sp run's, else SmolLM2)"},
  {"data", "", "SQuAD v1.1 training JSON (default: the sp run's, else datasets/squad/train-sample.json)"},
  {"eval-data", qr.source_dir .. "/datasets/squad/dev-sample.json", "SQuAD v1.1 evaluation JSON"},
  {"budget", "0.25,0.35,0.5", "budgets: ratios to fp of --metric, comma-separated"},
  {"metric", "bytes", "the budget's cost: bytes (weight memory) or bitops"},
  {"method", "greedy,ilp,evo", "searches: " .. table.concat(S.METHODS, ",")},
  {"choices", "", "per-layer choices, e.g. fp,w8a8,w4a8 (default: the (w, a) pairs the bank was trained on)"},
  {"groups", "32", "weight groups also offered: each choice of <= 4 weight bits again with a scale per g input "
    .. "channels, e.g. w4a8g32 (comma-separated; empty: none)"},
  {"score", "kl", "the search's score: kl or nll (the proxy), or f1 (F1 of --score-limit dev questions)"},
  {"calib-limit", 64, "calibration questions (training questions the sp run did not use)"},
  {"sens-limit", 8, "the sensitivity analysis uses the first N calibration questions (0 = all of them)"},
  {"score-limit", 50, "--score=f1: dev questions after the --eval-limit ones"},
  {"eval-limit", 200, "dev questions of the confirmation (EM/F1 with CIs)"},
  {"sens", "layers,kinds,blocks", "sensitivity units: layers, kinds (q, k, ... down), blocks"},
  {"sens-separate", "kinds,blocks", "units also lowered weights-only and activations-only (add layers: 3x its cost)"},
  {"sens-cache-mb", 2048, "the sensitivity keeps the base's input of every block (each configuration runs from the "
    .. "first block it changes; the same scores), in at most this many MB (0: no cache)"},
  {"pop", 8, "evo: population"},
  {"gens", 5, "evo: generations"},
  {"elite", 2, "evo: best members kept each generation"},
  {"tournament", 3, "evo: tournament size"},
  {"mutation", 2.0, "evo: layers changed per child, on average"},
  {"seed", 1, "evo's seed (and the bank's, when one is trained)"},
  {"corr-min", 12, "at least this many configurations evaluated on dev (for the Spearman correlation)"},
  {"hand", "", "more configurations (.lua files, precisions) to place next to the search's"},
  {"builtin-hand", true, "the built-in hand-made policies (mlp-low, edges-mid, attn-high, edges-high)"},
  {"train-limit", 0, "training questions the sp run used (0: its results.json's train_limit, else 2000)"},
  {"batch", 8, "sequences per proxy forward pass"},
  {"topk", 0, "the proxy reference keeps the top k tokens of each answer position (0: the full distribution, exact KL)"},
  {"batch-eval", 16, "questions generated together"},
  {"max-new-tokens", 24, "longest generated answer in tokens (dev evaluation)"},
  {"seq-cost", 512, "sequence length for the BitOPs cost"},
  {"plot", true, "write heatmap.png and pareto.png with gnuplot (--no-plot: skip)"},
  {"plan", false, "print the plan (evaluations per part) and exit"},
  -- a bank trained when --sp-dir is empty: sp.lua's defaults
  {"configs", "fp,w8a8,w4a8,mlp4", "training: the bank's configurations (sp.lua's --configs)"},
  {"steps", 60, "training: optimizer steps"},
  {"quantizer", "minmax", "training: quantizer plugin (an sp run's own is used with --sp-dir)"},
  {"rank", 8, "training: LoRA rank"},
  {"shots", 2, "training: worked examples in the prompts (an sp run's own is used with --sp-dir)"},
  {"seq", 384, "longest sequence in tokens"},
  {"lr", 1e-3, "training: peak learning rate"},
  {"min-lr", 1e-4, "training: final learning rate"},
  {"warmup", 5, "training: warm-up steps"},
  {"batch-train", 4, "training: sequences per step"},
}

local function refuse(msg)
  io.stderr:write(tostring(msg), "\n")
  os.exit(2)
end
local okc, chk = pcall(S.check, o)
if not okc then refuse(chk) end
if not math.tointeger(o.eval_limit) or o.eval_limit < 0 then refuse("search: --eval-limit: expected an integer >= 0") end
if o.score == "f1" then
  if o.eval_limit == 0 then refuse("search: --score=f1 needs dev questions after --eval-limit (it is 0: all)") end
  if not math.tointeger(o.score_limit) or o.score_limit < 1 then refuse("search: --score-limit: expected an integer >= 1") end
end
for _, k in ipairs{"shots"} do
  if not math.tointeger(o[k]) or o[k] < 0 or o[k] > 2 then refuse("search: --shots: expected an integer 0..2") end
end

local qa = require("qr.squad_qa")
local P = require("qr.precision")
local D = require("qr.sp_data")

-- the sp run: given, or trained here
local sp_dir = o.sp_dir ~= "" and o.sp_dir or (o.run_dir .. "/sp")
local function readable(p) local f = io.open(p, "rb") if f then f:close() return true end return false end
local function items(s)
  local t = {}
  for _, it in ipairs(S.split(s)) do
    t[#t + 1] = it == "mlp4" and {name = "mlp4", default = "w8a8", ["*.mlp.*"] = "w4a8"} or it
  end
  return t
end

local meta = qr.json.read(sp_dir .. "/results.json")
if o.sp_dir ~= "" then
  if not meta then refuse("search: --sp-dir=" .. o.sp_dir .. ": no results.json there (a run directory of sp.lua)") end
  if not readable(sp_dir .. "/adapters.safetensors") then
    refuse("search: --sp-dir=" .. o.sp_dir .. ": no adapters.safetensors there (has sp.lua finished training?)")
  end
end
local sp = meta or {}
local path = o.model ~= "" and o.model or sp.model or assert(qr.default_model())
local data = o.data ~= "" and o.data or sp.data or (qr.source_dir .. "/datasets/squad/train-sample.json")
local train_limit = o.train_limit > 0 and o.train_limit or sp.train_limit or 2000
local shots = meta and (meta.shots or 2) or o.shots
local quantizer = meta and meta.quantizer or o.quantizer
local rank = meta and meta.rank or o.rank
local seq = meta and meta.seq or o.seq
local bank_configs = meta and meta.configs or o.configs

local model = assert(qr.model(path))
model:quantize{weight = quantizer, act = quantizer}
local okl, train_cfgs = pcall(P.load, items(bank_configs), model)
if not okl then refuse("search: the bank's configurations '" .. tostring(bank_configs) .. "': " .. tostring(train_cfgs)) end
local slots = P.assign_adapters(train_cfgs)
qa.set_shots(shots)

if not meta and o.plan then
  print(string.format("search: no sp run given: the run would first train a bank in %s (%s, %d steps)", sp_dir,
    bank_configs, o.steps))
elseif not meta then
  -- no sp run: train one with sp.lua's defaults (resumes; a no-op when done)
  print(string.format("search: no sp run given: training a bank in %s (%s, %d steps)", sp_dir, bank_configs, o.steps))
  local train = qa.load(data, train_limit)
  local seqs, st = D.build(model.tokenizer, train, {seq = seq})
  print("train data: " .. D.describe(st))
  S.train_bank{model = model, configs = train_cfgs, slots = slots, data = seqs, dir = sp_dir, steps = o.steps,
    batch = o.batch_train, seq = seq, lr = o.lr, min_lr = o.min_lr, warmup = o.warmup, clip = 1.0, rank = rank,
    seed = o.seed, meta = {model = path, data = data, train_limit = train_limit, configs = bank_configs,
      quantizer = quantizer, steps = o.steps, batch = o.batch_train, accum = 1, seq = seq, lr = o.lr, rank = rank,
      loss = "ce", teacher = "none", schedule = "static", seed = o.seed, shots = shots, git_rev = qa.git_rev(),
      prompt_format = "squad_qa.lua", train_format = "sp_data.lua"}}
end
model:lora{rank = rank, alpha = 2 * rank, slots = slots, seed = 1}
local adapters_file = sp_dir .. "/adapters.safetensors"
local adapters_sha = nil
if not o.plan then -- (--plan reads no adapters: there may be none yet)
  assert(model:load_adapters(adapters_file))
  adapters_sha = assert(qr.sha256(adapters_file))
end

-- the choices
local choices_s = o.choices ~= "" and o.choices or S.trained_pairs(train_cfgs)
local okg, with_g = pcall(S.with_groups, choices_s, o.groups)
if not okg then refuse(with_g) end
choices_s = with_g
local okch, choices = pcall(S.parse_choices, choices_s)
if not okch then refuse(choices) end

-- the hand-made configurations given
local hand = {}
if o.hand ~= "" then
  local okh, h = pcall(P.load, o.hand, model)
  if not okh then refuse("search: --hand: " .. tostring(h):gsub("^precision: ", "")) end
  hand = h
end

-- the calibration slice: training questions after the sp run's, from the next paragraph
local all = qa.load(data, 0)
local start = train_limit + 1
local last_ctx = all[train_limit] and all[train_limit].context
while all[start] and all[start].context == last_ctx do start = start + 1 end
local calib, calib_idx = {}, {}
local k = start
while #calib < o.calib_limit and k <= #all do
  local chunk, where = {}, {}
  for j = k, math.min(#all, k + (o.calib_limit - #calib) - 1) do
    chunk[#chunk + 1] = all[j]
    where[all[j].id] = j
  end
  local s = D.build(model.tokenizer, chunk, {seq = seq})
  for _, x in ipairs(s) do
    if #calib < o.calib_limit then calib[#calib + 1] = x; calib_idx[#calib_idx + 1] = where[x.id] end
  end
  k = k + #chunk
end
if #calib == 0 then refuse(string.format("search: no calibration questions after the first %d of %s", train_limit, data)) end
local function slice(prefix, seqs, idx, kind)
  return {id = string.format("%s%d-%s", prefix, #seqs, S.fnv(table.concat(idx, ","))), data = seqs, kind = kind,
    indices = idx}
end
local calib_slice = slice("calib", calib, calib_idx, "proxy")
local ns = (o.sens_limit > 0 and o.sens_limit < #calib) and o.sens_limit or #calib
local sens_seqs, sens_idx = {}, {}
for i = 1, ns do sens_seqs[i], sens_idx[i] = calib[i], calib_idx[i] end
local slices = {calib = calib_slice, main = calib_slice, sens = slice("calib", sens_seqs, sens_idx, "proxy")}
print(string.format("calibration: %d questions of %s (indices %d..%d, after the %d the sp run used); sensitivity "
  .. "on the first %d", #calib, data, calib_idx[1], calib_idx[#calib_idx], train_limit, ns))

local dev = qa.load(o.eval_data, o.eval_limit)
local function evaluate(m)
  qa.set_shots(shots)
  return qa.evaluate(m, dev, {batch = o.batch_eval, max_new_tokens = o.max_new_tokens, progress = qr.isatty(2)})
end
local f1 = nil
if o.score == "f1" then
  local alld = qa.load(o.eval_data, 0)
  local sdev, sidx = {}, {}
  for i = o.eval_limit + 1, math.min(#alld, o.eval_limit + o.score_limit) do
    sdev[#sdev + 1] = alld[i]
    sidx[#sidx + 1] = i
  end
  if #sdev == 0 then refuse("search: --score=f1: no dev questions after the first " .. o.eval_limit) end
  local nsd = (o.sens_limit > 0 and o.sens_limit < #sdev) and o.sens_limit or #sdev
  local ssub, sidx2 = {}, {}
  for i = 1, nsd do ssub[i], sidx2[i] = sdev[i], sidx[i] end
  slices.main = slice("f1dev", sdev, sidx, "f1")
  slices.sens = slice("f1dev", ssub, sidx2, "f1")
  f1 = function(m, qs)
    qa.set_shots(shots)
    local r = qa.evaluate(m, qs, {batch = o.batch_eval, max_new_tokens = o.max_new_tokens, progress = false})
    return {f1 = r.f1, em = r.em, n = r.n}
  end
end

local so = {choices = choices, metric = o.metric, budgets = chk.budgets, methods = chk.methods, sens = chk.sens,
  separate = chk.separate, score = o.score, pop = o.pop, gens = o.gens, elite = o.elite, tournament = o.tournament,
  mutation = o.mutation, seed = o.seed, corr_min = o.corr_min, seq_cost = o.seq_cost, batch = o.batch, topk = o.topk,
  plot = o.plot, progress = true, builtin_hand = o.builtin_hand, sens_cache_mb = o.sens_cache_mb}

if o.plan then
  local prob = S.problem(model, choices, o.metric)
  for _, b in ipairs(chk.budgets) do
    local okb, e = pcall(S.check_budget, prob, b)
    if not okb then refuse(e) end
  end
  local n_hand = #hand + (o.builtin_hand and #S.hand_policies(prob) or 0)
  local p = S.plan(prob, {sens = chk.sens, separate = chk.separate, budgets = chk.budgets, methods = chk.methods,
    pop = o.pop, gens = o.gens, elite = o.elite, n_hand = n_hand, corr_min = o.corr_min})
  print(string.format("plan: %d layers, %d choices (%s)", prob.n, #choices, choices_s))
  print(string.format("  sensitivity: %d configurations x %d examples", p.sens, #slices.sens.data))
  print(string.format("  search: <= %d configurations x %d examples (base 1 + %d budgets x %d + %d presets/policies)",
    p.search, #slices.main.data, p.budgets, p.per_budget, p.presets))
  print(string.format("  dev: <= %d configurations x %d questions (at least --corr-min=%d; extra ones also scored "
    .. "by the proxy on %d examples)", p.f1, #dev, o.corr_min, #calib))
  print(string.format("  proxy example-passes: <= %d (+ one reference pass over each slice)",
    p.sens * #slices.sens.data + (p.search + o.corr_min) * #slices.main.data))
  os.exit(0)
end

local okb, berr = pcall(function()
  local prob = S.problem(model, choices, o.metric)
  for _, b in ipairs(chk.budgets) do S.check_budget(prob, b) end
end)
if not okb then refuse(berr) end

local cache_key = table.concat({path, adapters_sha, quantizer, shots, seq, "proxy.c", o.topk}, "|")
local t0 = qr.now()
S.run{model = model, train_cfgs = train_cfgs, slices = slices, o = so, run_dir = o.run_dir, evaluate = evaluate,
  f1 = f1, hand = hand, cache_key = cache_key,
  meta = {key = table.concat({path, adapters_sha, o.eval_data, o.eval_limit, shots, quantizer}, "|"),
    model = qa.portable_path(path), sp_dir = sp_dir, adapters_sha256 = adapters_sha, data = qa.portable_path(data),
    eval_data = qa.portable_path(o.eval_data), eval_n = #dev,
    train_limit = train_limit, shots = shots, quantizer = quantizer, bank_configs = bank_configs,
    calibration = {n = #calib, indices = calib_idx, first_after = train_limit, sens_n = ns},
    score_slice = o.score == "f1" and slices.main.indices or nil, options = {budget = o.budget, metric = o.metric,
      method = o.method, choices = choices_s, score = o.score, calib_limit = o.calib_limit, sens_limit = o.sens_limit,
      eval_limit = o.eval_limit, sens = o.sens, sens_separate = o.sens_separate, pop = o.pop, gens = o.gens,
      elite = o.elite, tournament = o.tournament, mutation = o.mutation, seed = o.seed, corr_min = o.corr_min},
    git_rev = qa.git_rev(), prompt_format = "squad_qa.lua"}}
print(string.format("search: done in %s", S.hms(qr.now() - t0)))
