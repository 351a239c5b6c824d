-- sp.lua - switchable-precision LoRA tuning of SmolLM2 (or --model) on
-- SQuAD v1.1: one LoRA adapter per distinct (w, a) pair of each layer
-- across the configuration set, trained jointly (the `static` schedule runs
-- every configuration at every step and sums their losses), then every
-- configuration evaluated untuned (adapters off) and tuned on dev questions.
--
--   qrun recipes/sp.lua --run-dir=runs/sp
--
-- Rerunning the same command with the same --run-dir resumes training from
-- its last checkpoint (kill it at any moment; the final adapters are the
-- same bit for bit) and skips evaluations already in results.json.
-- Writes <run-dir>/results.json, adapters.safetensors, checkpoint,
-- train.jsonl. The training format is recipes/lib/qr/sp_data.lua.
--
-- Cost (measured on the 2-core machine, shared): a step of 4 configurations
-- at batch 4 x 384 takes ~20 s; the defaults (60 steps, 1000 dev questions,
-- 4 configurations evaluated untuned and tuned) took 1 h 45 min. See
-- docs/TRAINING.md and reports/sp-smollm2-60steps.json.
local qa = require("qr.squad_qa")
local P = require("qr.precision")
local D = require("qr.sp_data")

local o = qr.opts{
  {"model", "", "a .gguf file or a Hugging Face GPT-2 directory (default: SmolLM2)"},
  {"data", qr.source_dir .. "/datasets/squad/train-sample.json", "SQuAD v1.1 training JSON"},
  {"eval-data", qr.source_dir .. "/datasets/squad/dev-sample.json", "SQuAD v1.1 evaluation JSON"},
  {"configs", "fp,w8a8,w4a8,mlp4", "configurations: presets, .lua files, or 'mlp4' (MLP at w4a8, the rest w8a8)"},
  {"quantizer", "minmax", "quantizer plugin for weights and activations"},
  {"steps", 60, "optimizer steps"},
  {"batch", 4, "sequences per micro-batch"},
  {"accum", 1, "micro-batches per step"},
  {"seq", 384, "longest training sequence in tokens"},
  {"lr", 1e-3, "peak learning rate"},
  {"min-lr", 1e-4, "final learning rate (cosine decay)"},
  {"warmup", 5, "warm-up steps"},
  {"clip", 1.0, "gradient-norm clip"},
  {"rank", 8, "LoRA rank"},
  {"loss", "ce", "loss: a plugin (ce; kd: KL to the fp base's logits; feature: MSE to its hidden states) "
    .. "or a weighted sum, e.g. ce+0.5*kd+0.1*feature"},
  {"loss-opts", "", "loss plugin options, e.g. kd.temperature=2,feature.layers=last"},
  {"teacher", "", "teacher for the loss: fp (the frozen base), tuned (the step's highest configuration, with its adapters), cascade (each the next-higher one) or none (default: fp when the loss has kd or feature)"},
  {"schedule", "static", "schedule plugin"},
  {"seed", 1, "data order and LoRA init"},
  {"train-limit", 2000, "training questions used (0 = all)"},
  {"eval-limit", 1000, "evaluation questions (0 = all)"},
  {"run-dir", "runs/sp", "run directory (checkpoint, log, adapters, results)"},
  {"checkpoint-every", 5, "steps between checkpoints"},
  {"batch-eval", 16, "questions generated together"},
  {"seq-cost", 512, "sequence length for the BitOPs cost"},
  {"shots", 2, "worked examples before each question, in training and evaluation (0..2)"},
  {"max-new-tokens", 24, "longest answer in tokens, in evaluation"},
  {"untuned", true, "evaluate every configuration with its adapters off too (--no-untuned: tuned only, as when "
    .. "another run on the same model and questions has them: the losses stage of study.lua)"},
  {"rpi", false, "also evaluate random precision inference over the tuned --configs (each question draws one)"},
  {"rpi-configs", "", "the RPI set: names among --configs (default: all of them)"},
  {"rpi-probs", "", "the RPI probabilities, comma-separated in --rpi-configs order (default: uniform)"},
  {"rpi-seed", 1, "seed of the RPI draws (the model's own RNG)"},
}

qa.set_shots(o.shots)
local path = o.model ~= "" and o.model or assert(qr.default_model())
local model = assert(qr.model(path))
-- the machine: a quantized configuration's answers depend on the CPU's kernels (qr.squad_qa.kernel_fingerprint)
local cpu, kernels = qa.cpu_model(), qa.kernel_fingerprint(model)
model:quantize{weight = o.quantizer, act = o.quantizer}

-- configurations; "mlp4" is inline so the recipe does not depend on a file
local items = {}
for it in o.configs:gmatch("[^,%s]+") do
  if it == "mlp4" then
    items[#items + 1] = {name = "mlp4", default = "w8a8", ["*.mlp.*"] = "w4a8"}
  else
    items[#items + 1] = it
  end
end
local cfgs = P.load(items, model)
local slots = P.assign_adapters(cfgs)
model:lora{rank = o.rank, alpha = 2 * o.rank, slots = slots, seed = o.seed}
print(string.format("sp: %s, %d configurations (%s), LoRA rank %d, %d slot(s)", path, #cfgs, o.configs, o.rank, slots))

-- the RPI set (--rpi), checked before anything is trained
local rpi_set, rpi_probs
if o.rpi then
  local set, probs = {}, nil
  if o.rpi_configs == "" then
    for _, c in ipairs(cfgs) do set[#set + 1] = c end
  else
    for nm in o.rpi_configs:gmatch("[^,%s]+") do
      local found
      for _, c in ipairs(cfgs) do if c.name == nm then found = c end end
      if not found then error(string.format("sp: --rpi-configs: '%s' is not one of --configs (%s): only tuned "
        .. "configurations have adapters", nm, o.configs), 0) end
      set[#set + 1] = found
    end
  end
  if o.rpi_probs ~= "" then
    probs = {}
    for v in o.rpi_probs:gmatch("[^,%s]+") do
      probs[#probs + 1] = tonumber(v) or error(string.format("sp: --rpi-probs: '%s' is not a number", v), 0)
    end
  end
  rpi_set, rpi_probs = set, probs
  model:rpi{configs = set, probs = probs, seed = o.rpi_seed} -- checks the set and the probabilities now
  model:rpi(false)
end

os.execute("mkdir -p '" .. o.run_dir .. "'")
local out = o.run_dir .. "/results.json"
local results = {}
local old = qr.json.read(out)
if old and old.model == path and old.eval_data == o.eval_data and old.eval_n == o.eval_limit
   and (old.shots or 2) == o.shots and (old.max_new_tokens or 24) == o.max_new_tokens then
  results = old.results or {}
  -- a run resumed on another machine names both (its training and its evaluations mix their kernels)
  if type(old.kernels) == "string" and old.kernels ~= kernels and not old.kernels:find(kernels, 1, true) then
    io.stderr:write(string.format("sp: %s was begun on %s (kernels %s); this machine is %s (kernels %s): the run will "
      .. "mix the two\n", out, tostring(old.cpu), old.kernels, cpu, kernels))
    cpu, kernels = tostring(old.cpu) .. " then " .. cpu, old.kernels .. " then " .. kernels
  elseif type(old.kernels) == "string" then
    cpu, kernels = tostring(old.cpu or cpu), old.kernels
  end
end
local function save()
  assert(qr.json.write(out, {
    results = results, model = path, data = o.data, eval_data = o.eval_data, eval_n = o.eval_limit,
    configs = o.configs, quantizer = o.quantizer, steps = o.steps, batch = o.batch, accum = o.accum, seq = o.seq,
    lr = o.lr, rank = o.rank, loss = o.loss, loss_opts = o.loss_opts, teacher = o.teacher, schedule = o.schedule, seed = o.seed, git_rev = qa.git_rev(),
    prompt_format = "squad_qa.lua", train_format = "sp_data.lua", shots = o.shots,
    max_new_tokens = o.max_new_tokens, train_limit = o.train_limit, data_portable = qa.portable_path(o.data),
    cpu = cpu, kernels = kernels, gemm = (qr.kernels()),
  }, {indent = true}))
end

local dev = qa.load(o.eval_data, o.eval_limit)
-- each question's F1 and EM (0..1, in dev order): what paired comparisons need
local function per_question(r)
  local f, e = {}, {}
  for i, p in ipairs(r.predictions) do f[i], e[i] = p.f1, p.em end
  return {f1 = f, em = e}
end
local function evaluate(cfg, tuned)
  for _, r in ipairs(results) do
    if r.config == cfg.name and r.tuned == tuned then
      print(string.format("  %-8s %-7s (already in %s)", cfg.name, tuned and "tuned" or "untuned", out))
      return
    end
  end
  local run = cfg
  if not tuned then -- adapters off
    run = {name = cfg.name, layers = {}}
    for i, l in ipairs(cfg.layers) do run.layers[i] = {name = l.name, w = l.w, a = l.a, adapter = -1} end
  end
  model:precision(run)
  local c = P.cost(cfg, model, o.seq_cost)
  local r = qa.evaluate(model, dev, {batch = o.batch_eval, progress = qr.isatty(2), max_new_tokens = o.max_new_tokens})
  results[#results + 1] = {config = cfg.name, tuned = tuned, em = r.em, f1 = r.f1, em_ci = r.em_ci, f1_ci = r.f1_ci,
    n = r.n, bitops_ratio = c.bitops_ratio, bytes_ratio = c.bytes_ratio, seconds = r.seconds,
    per_question = per_question(r)}
  print(string.format("  %-8s %-7s EM %6.2f [%5.2f,%5.2f]  F1 %6.2f [%5.2f,%5.2f]  BitOPs %.3f  bytes %.3f", cfg.name,
    tuned and "tuned" or "untuned", r.em, r.em_ci[1], r.em_ci[2], r.f1, r.f1_ci[1], r.f1_ci[2], c.bitops_ratio,
    c.bytes_ratio))
  save()
end

if o.untuned then for _, cfg in ipairs(cfgs) do evaluate(cfg, false) end end

local loss_opts = {}
for k, v in o.loss_opts:gmatch("([^,=%s]+)=([^,]+)") do loss_opts[k] = v end
local train = qa.load(o.data, o.train_limit)
local seqs, st = D.build(model.tokenizer, train, {seq = o.seq})
print("train data: " .. D.describe(st))
local r = qr.train{model = model, configs = cfgs, data = seqs, steps = o.steps, batch = o.batch, accum = o.accum,
  seq = o.seq, lr = o.lr, min_lr = o.min_lr, warmup = math.min(o.warmup, o.steps), clip = o.clip, schedule = o.schedule,
  loss = o.loss, loss_opts = loss_opts,
  teacher = o.teacher ~= "" and o.teacher or ((o.loss:find("kd") or o.loss:find("feature")) and "fp" or "none"),
  seed = o.seed, run_dir = o.run_dir, checkpoint_every = o.checkpoint_every, log_every = 1}
print(string.format("trained %d steps (%s) in %.0fs, %d tokens", r.steps,
  r.resumed_from >= 0 and ("resumed from step " .. r.resumed_from) or "from scratch", r.seconds, r.tokens))

for _, cfg in ipairs(cfgs) do evaluate(cfg, true) end

-- random precision inference over the tuned set: one draw per question
if o.rpi then
  local set, probs = rpi_set, rpi_probs
  local names = {}
  for i, c in ipairs(set) do names[i] = c.name end
  local rname = "rpi(" .. table.concat(names, ",") .. ")"
  local have
  for _, x in ipairs(results) do if x.config == rname and x.tuned then have = x end end
  if have then
    print(string.format("  %-8s tuned   (already in %s)", rname, out))
  else
    model:rpi{configs = set, probs = probs, seed = o.rpi_seed}
    local r = qa.evaluate(model, dev, {batch = o.batch_eval, progress = qr.isatty(2), max_new_tokens = o.max_new_tokens})
    model:rpi(false)
    local draws = {}
    for i, p in ipairs(r.predictions) do draws[i] = p.rpi end
    -- the expected cost of a question: the draw-weighted mean of the set's costs
    local eb, ey = 0, 0
    for k, c in ipairs(set) do
      local cc = P.cost(c, model, o.seq_cost)
      local w = r.rpi.counts[k] / r.n
      eb, ey = eb + w * cc.bitops_ratio, ey + w * cc.bytes_ratio
    end
    results[#results + 1] = {config = rname, tuned = true, em = r.em, f1 = r.f1, em_ci = r.em_ci, f1_ci = r.f1_ci,
      n = r.n, bitops_ratio = eb, bytes_ratio = ey, seconds = r.seconds, per_question = per_question(r),
      rpi = {configs = names, probs = probs or "uniform", seed = o.rpi_seed, counts = r.rpi.counts, draws = draws,
        cost = "bitops_ratio and bytes_ratio: the draw-weighted mean over the set (what a question costs on average)"}}
    print(string.format("  %-8s tuned   EM %6.2f [%5.2f,%5.2f]  F1 %6.2f [%5.2f,%5.2f]  (draws: %s)", rname, r.em,
      r.em_ci[1], r.em_ci[2], r.f1, r.f1_ci[1], r.f1_ci[2], table.concat(r.rpi.counts, "/")))
    save()
  end
end

print(string.format("\n%-8s %-7s %7s %7s %8s %7s", "config", "", "EM", "F1", "BitOPs", "bytes"))
for _, x in ipairs(results) do
  print(string.format("%-8s %-7s %7.2f %7.2f %8.3f %7.3f", x.config, x.tuned and "tuned" or "untuned", x.em, x.f1,
    x.bitops_ratio, x.bytes_ratio))
end
print("wrote " .. out)
