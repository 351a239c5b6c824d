-- cpt.lua - MISSION step 5: cyclic precision training (CPT, Fu et al.,
-- ICLR 2021) against joint switchable-precision training at EQUAL COMPUTE,
-- on SmolLM2 (or --model) and SQuAD v1.1.
--
--   qrun recipes/cpt.lua --run-dir=runs/cpt
--   qrun recipes/cpt.lua --arms=joint,cyclic_bits --steps=20 --prt
--
-- Arms (--arms), all from the same base weights, data order and seed:
--   joint           the static schedule over --configs (sp.lua's set, K of
--                   them): every configuration at every step, --steps steps
--   cyclic_bits     CPT: one shared LoRA over uniform wBaB, B = b_min..b_max,
--                   B cycling along a cosine (--n-cycles), K * steps steps
--   cyclic_configs  the same cosine over --configs ordered by BitOPs
--   progressive     --configs cheapest to dearest, equal stages
--   random          one of --configs per step at random (Double-Win's RPT)
--   single          one baseline per evaluated bit-width (--singles), trained only there
-- Compute = configuration-passes (forward + backward of one configuration
-- on one micro-batch): K * steps * accum for every arm (qr.cpt, results.json
-- "compute"). joint and the schedule arms use one adapter per distinct
-- (w, a) of each layer (an evaluation configuration outside --configs uses
-- the nearest one, "adapters": "nearest"); cyclic_bits and single one.
--
-- Prompts: training is zero-shot by default (--train-shots=0: the two worked
-- examples cost ~40% of the tokens) and tuned models are evaluated with the
-- prompt they were trained on; the untuned baseline is evaluated with
-- --shots, as sp.lua does. Batches are bucketed by length (--bucket).
--
-- --prt: the precision range test picks b_min (unless --b-min is given):
-- <run-dir>/prt.json. A rerun with the same --run-dir skips finished arms
-- and evaluations (results.json is rewritten after each one). Writes
-- <run-dir>/results.json, <arm>/{checkpoint,train.jsonl,adapters.safetensors},
-- curves.jsonl, curves.png (when gnuplot is there: scripts/setup_plot.sh).
local C = require("qr.cpt")

local o = qr.opts{
  {"model", "", "a .gguf file or a Hugging Face GPT-2 directory (default: SmolLM2)"},
  {"data", qr.source_dir .. "/datasets/squad/train-sample.json", "SQuAD v1.1 training JSON"},
  {"eval-data", qr.source_dir .. "/datasets/squad/dev-sample.json", "SQuAD v1.1 evaluation JSON"},
  {"arms", table.concat(C.ARMS, ","), "arms to run: " .. table.concat(C.ARMS, ",")},
  {"configs", "fp,w8a8,w4a8,mlp4", "joint's training set (K configurations; 'mlp4': MLP at w4a8, the rest w8a8)"},
  {"eval-configs", "fp,w8a8,w6a6,w4a8,mlp4", "evaluation configurations"},
  {"b-min", nil, "cyclic_bits' lowest width, 2..16 (default 4, or the precision range test's with --prt)",
   type = "integer"},
  {"b-max", 8, "cyclic_bits' highest width, 2..16"},
  {"n-cycles", 32, "cosine cycles of the cyclic arms (at most their steps)"},
  {"prt", false, "run the precision range test to choose b_min"},
  {"prt-steps", 10, "precision range test: steps at each width"},
  {"prt-threshold", 0.05, "precision range test: relative loss fall that counts as progress"},
  {"quantizer", "minmax", "quantizer plugin for weights and activations"},
  {"steps", 25, "joint's optimizer steps (single-configuration arms: K x steps)"},
  {"batch", 4, "sequences per micro-batch"},
  {"accum", 1, "micro-batches per step"},
  {"seq", 384, "longest training sequence in tokens"},
  {"lr", 1e-3, "peak learning rate"},
  {"min-lr", 1e-4, "final learning rate (cosine decay)"},
  {"warmup", 5, "warm-up steps of joint (x K for the others)"},
  {"clip", 1.0, "gradient-norm clip"},
  {"rank", 8, "LoRA rank"},
  {"loss", "ce", "loss: a plugin or a weighted sum (see sp.lua)"},
  {"loss-opts", "", "loss plugin options, e.g. kd.temperature=2"},
  {"teacher", "", "fp, cascade or none (default: fp when the loss has kd or feature)"},
  {"seed", 1, "data order, LoRA init, random schedule"},
  {"train-limit", 2000, "training questions used (0 = all)"},
  {"eval-limit", 200, "evaluation questions (0 = all)"},
  {"run-dir", "runs/cpt", "run directory"},
  {"checkpoint-every", 5, "joint's steps between checkpoints (x K for the others)"},
  {"batch-eval", 16, "questions generated together"},
  {"max-new-tokens", 24, "longest answer in tokens, in evaluation"},
  {"seq-cost", 512, "sequence length for the BitOPs cost"},
  {"shots", 2, "worked examples in the untuned baseline's prompts (0..2)"},
  {"untuned", true, "also evaluate the untuned base under every evaluation configuration (--no-untuned: skip)"},
  {"train-shots", 0, "worked examples in the training prompts and the tuned models' evaluation (0..2)"},
  {"singles", "", "configurations with a single-precision baseline (default: the uniform ones of --eval-configs; all: every one)"},
  {"bucket", 16, "sort training sequences by length within windows of this many batches (0 = off)"},
  {"plot", true, "write curves.png with gnuplot (--no-plot: skip)"},
}

-- every refusal before anything is loaded or written
local function refuse(msg)
  io.stderr:write(tostring(msg), "\n")
  os.exit(2)
end
local K = #C.split(o.configs)
local b_min_explicit = o.b_min ~= nil
local check = {arms = o.arms, b_min = o.b_min or 4, b_max = o.b_max, n_cycles = o.n_cycles, steps = o.steps, k = K}
local ok, err = pcall(C.check, check)
if not ok then refuse(err) end
if o.prt then
  if not math.tointeger(o.prt_steps) or o.prt_steps < 1 then refuse("cpt: --prt-steps: expected an integer >= 1") end
  if not (o.prt_threshold > 0 and o.prt_threshold < 1) then refuse("cpt: --prt-threshold: expected a number in (0, 1)") end
end
for _, k in ipairs{"shots", "train_shots"} do
  if not math.tointeger(o[k]) or o[k] < 0 or o[k] > 2 then
    refuse(string.format("cpt: --%s=%s: expected an integer 0..2", k:gsub("_", "-"), tostring(o[k])))
  end
end
if not math.tointeger(o.bucket) or o.bucket < 0 then refuse("cpt: --bucket: expected an integer >= 0") end
if K == 0 then refuse("cpt: --configs is empty") end
if #C.split(o.eval_configs) == 0 then refuse("cpt: --eval-configs is empty") end

local qa = require("qr.squad_qa")
local P = require("qr.precision")
local D = require("qr.sp_data")

local path = o.model ~= "" and o.model or assert(qr.default_model())
local model = assert(qr.model(path))
model:quantize{weight = o.quantizer, act = o.quantizer}

local function items(s)
  local t = {}
  for _, it in ipairs(C.split(s)) do
    t[#t + 1] = it == "mlp4" and {name = "mlp4", default = "w8a8", ["*.mlp.*"] = "w4a8"} or it
  end
  return t
end
local okc, train_cfgs = pcall(P.load, items(o.configs), model)
if not okc then refuse("cpt: --configs: " .. tostring(train_cfgs)) end
local oke, eval_cfgs = pcall(P.load, items(o.eval_configs), model)
if not oke then refuse("cpt: --eval-configs: " .. tostring(eval_cfgs)) end
do -- --singles names evaluation configurations: refused before any training (the PRT included)
  local oks, e = pcall(C.single_configs, eval_cfgs, o.singles)
  if not oks then refuse(e) end
end

local loss_opts = {}
for k, v in o.loss_opts:gmatch("([^,=%s]+)=([^,]+)") do loss_opts[k] = v end
local topts = {batch = o.batch, accum = o.accum, seq = o.seq, lr = o.lr, min_lr = o.min_lr, clip = o.clip,
  rank = o.rank, seed = o.seed, loss = o.loss, loss_opts = loss_opts, bucket = o.bucket,
  teacher = o.teacher ~= "" and o.teacher or ((o.loss:find("kd") or o.loss:find("feature")) and "fp" or "none"),
  log_every = 1}

os.execute("mkdir -p " .. C.sh_quote(o.run_dir))
qa.set_shots(o.train_shots)
local train = qa.load(o.data, o.train_limit)
local seqs, st = D.build(model.tokenizer, train, {seq = o.seq})
print(string.format("train data (%d-shot prompts): %s", o.train_shots, D.describe(st)))

-- the precision range test
local b_min = o.b_min or 4
if o.prt then
  local ppath = o.run_dir .. "/prt.json"
  local prt = qr.json.read(ppath)
  local key = string.format("%s|%d|%g|%d|%d|%d|%g", path, o.prt_steps, o.prt_threshold, o.b_max, o.seed, o.batch, o.lr)
  if not prt or prt.key ~= key then
    print(string.format("precision range test: widths 2..%d, %d steps each, threshold %.0f%%", o.b_max,
      o.prt_steps, 100 * o.prt_threshold))
    local pt = {}
    for k, v in pairs(topts) do pt[k] = v end
    prt = C.prt(model, seqs, pt, 2, o.b_max, o.prt_steps, o.prt_threshold)
    prt.key = key
    assert(qr.json.write(ppath, prt, {indent = true}))
  end
  print(string.format("\n%5s %9s %9s %7s", "bits", "start", "final", "fall"))
  for _, r in ipairs(prt.rows) do
    print(string.format("%5d %9.4f %9.4f %6.1f%%", r.bits, r.start, r.final, 100 * r.fall))
  end
  print(string.format("precision range test: b_min = %s (%s); wrote %s", tostring(prt.b_min), prt.rule, ppath))
  if b_min_explicit then
    print(string.format("  --b-min=%d given: it is used", o.b_min))
  elseif prt.b_min then
    b_min = prt.b_min
    check.b_min = b_min
    local okp, e = pcall(C.check, check)
    if not okp then refuse(e .. " (b_min from the precision range test)") end
  else
    print("  no width made progress: b_min stays " .. b_min)
  end
end

local plan_o = {arms = o.arms, b_min = b_min, b_max = o.b_max, n_cycles = o.n_cycles, steps = o.steps,
  accum = o.accum, warmup = o.warmup, checkpoint_every = o.checkpoint_every, seed = o.seed, singles = o.singles}
local okp, arms = pcall(C.plan, plan_o, model, train_cfgs, eval_cfgs)
if not okp then refuse(arms) end
print(string.format("cpt: %s; K = %d (%s); %d arm run(s); each %d configuration-passes; b = %d..%d, %d cycles",
  path, K, o.configs, #arms, arms[1].passes, b_min, o.b_max, o.n_cycles))

local dev = qa.load(o.eval_data, o.eval_limit)
local function evaluate(m, run, tuned)
  local shots = tuned and o.train_shots or o.shots
  qa.set_shots(shots)
  local r = qa.evaluate(m, dev, {batch = o.batch_eval, progress = qr.isatty(2), max_new_tokens = o.max_new_tokens})
  r.shots = shots
  return r
end
local function cost(cfg) return P.cost(cfg, model, o.seq_cost) end

-- old results are kept only for the same model, questions, prompts and training settings
local key = table.concat({path, o.eval_data, o.eval_limit, o.shots, o.train_shots, o.quantizer, o.data, o.train_limit,
  o.configs, o.steps, o.batch, o.accum, o.seq, o.lr, o.min_lr, o.warmup, o.clip, o.rank, o.loss, o.loss_opts,
  topts.teacher, o.seed, b_min, o.b_max, o.n_cycles, o.bucket}, "|")
  .. (o.max_new_tokens ~= 24 and ("|max_new_tokens=" .. o.max_new_tokens) or "") -- the key of runs before the option
local t0 = qr.now()
local doc = C.run{model = model, arms = arms, data = seqs, o = topts, run_dir = o.run_dir, evaluate = evaluate,
  cost = cost, untuned = o.untuned and eval_cfgs or nil, plot = o.plot,
  meta = {key = key, model = qa.portable_path(path), data = qa.portable_path(o.data),
    eval_data = qa.portable_path(o.eval_data), eval_n = o.eval_limit,
    train_n = o.train_limit, configs = o.configs, eval_configs = o.eval_configs, quantizer = o.quantizer,
    steps = o.steps, K = K, batch = o.batch, accum = o.accum, seq = o.seq, lr = o.lr, min_lr = o.min_lr,
    warmup = o.warmup, rank = o.rank, loss = o.loss, seed = o.seed, b_min = b_min, b_max = o.b_max,
    n_cycles = o.n_cycles, prt = o.prt, shots = o.shots, train_shots = o.train_shots, bucket = o.bucket,
    train_tokens = st.tokens, train_sequences = st.used, git_rev = qa.git_rev(), prompt_format = "squad_qa.lua",
    max_new_tokens = o.max_new_tokens,
    train_format = "sp_data.lua"}}

print(string.format("\n%-16s %-8s %-7s %7s %7s %8s", "arm", "config", "", "EM", "F1", "BitOPs"))
for _, x in ipairs(doc.results) do
  print(string.format("%-16s %-8s %-7s %7.2f %7.2f %8.3f", x.arm, x.config, x.tuned and "tuned" or "untuned", x.em,
    x.f1, x.bitops_ratio or 0))
end
print(string.format("cpt: done in %.0fs", qr.now() - t0))
