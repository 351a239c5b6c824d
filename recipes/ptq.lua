-- ptq.lua - a first real measurement: SmolLM2 (or --model), two-shot
-- (--shots) on
-- SQuAD v1.1 dev questions under full precision and uniform W8A8, W6A6,
-- W4A8, W4A4 with each quantizer (minmax, log, tanh), plus mixed
-- configurations (recipes/configs/mixed.lua, minmax), post-training (no
-- tuning). Prints and saves EM, F1 (95% bootstrap CIs) and the relative cost
-- (BitOPs at --seq tokens, weight bytes) of each. "fp" is the model file's
-- weights as stored, dequantized to float32: for the default SmolLM2 GGUF
-- those are already Q4_1/Q8_0 (recorded as "weights" in the results), so
-- every configuration re-quantizes 4-8-bit weights and bytes_ratio is
-- against float32.
--
--   qrun recipes/ptq.lua --limit=500 --out=results/ptq.json
--
-- Results are written after every configuration, so a long run can be
-- watched; rerunning with the same --out skips what is already there.
local qa = require("qr.squad_qa")
local P = require("qr.precision")

local o = qr.opts{
  {"model", "", "a .gguf file or a Hugging Face GPT-2 directory (default: SmolLM2)"},
  {"data", qr.source_dir .. "/datasets/squad/dev-sample.json", "SQuAD v1.1 JSON file"},
  {"limit", 500, "evaluate the first N questions (0 = all)"},
  {"out", "results/ptq.json", "results JSON (rewritten after each configuration)"},
  {"quantizers", "minmax,log,tanh", "quantizer plugins to sweep"},
  {"configs", "w8a8,w6a6,w4a8,w4a4", "uniform configurations (presets or .lua files) run with every quantizer"},
  {"mixed", qr.source_dir .. "/recipes/configs/mixed.lua", "mixed configurations, run with minmax after the first quantizer's sweep ('' for none)"},
  {"seq", 512, "sequence length for the BitOPs cost"},
  {"batch", 16, "questions generated together"},
  {"max-new-tokens", 24, "longest answer in tokens"},
  {"resume", true, "skip configurations already in --out"},
  {"shots", 2, "worked examples before each question (0 = zero-shot, at most 2)"},
}

qa.set_shots(o.shots)
local path = o.model ~= "" and o.model or assert(qr.default_model())
local model = assert(qr.model(path))
local examples = qa.load(o.data, o.limit)
print(string.format("ptq: %s, %d questions from %s", path, #examples, o.data))

local results = {}
if o.resume then
  local old = qr.json.read(o.out)
  -- the same question set and model (compared by file name, so a results
  -- file from another checkout or machine resumes too)
  local function base(p) return p and p:match("[^/]*$") end
  if old and old.n == #examples and base(old.data) == base(o.data) and base(old.model) == base(path)
     and (old.shots or 2) == o.shots and (old.max_new_tokens or 24) == o.max_new_tokens then
    results = old.results or {}
  end
end
local function done(cfg, q)
  for _, r in ipairs(results) do
    if r.config == cfg and r.quantizer == q then return r end
  end
end

local function save()
  local dir = o.out:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p '" .. dir .. "'") end
  assert(qr.json.write(o.out, {
    results = results, model = path, data = o.data, n = #examples, seq = o.seq,
    git_rev = qa.git_rev(), prompt_format = "squad_qa.lua", shots = o.shots, max_new_tokens = o.max_new_tokens,
    batch = o.batch, quantizer_opts = "defaults (minmax symmetric; per output channel / per token)",
    weights = path:match("%.gguf$") and "the GGUF's stored tensors (quantized types dequantized) in float32"
      or "the safetensors tensors in float32",
  }, {indent = true}))
end

local function per_question(r)
  local f, e, ids = {}, {}, {}
  for i, p in ipairs(r.predictions) do f[i], e[i], ids[i] = p.f1, p.em, p.id end
  return {f1 = f, em = e, id = ids}
end

local function run(cfg, qname)
  local key = cfg.name
  if done(key, qname) then
    print(string.format("  %-10s %-7s (already in %s)", key, qname, o.out))
    return
  end
  model:precision(cfg)
  local c = P.cost(cfg, model, o.seq)
  local r = qa.evaluate(model, examples, {batch = o.batch, max_new_tokens = o.max_new_tokens, progress = qr.isatty(2)})
  results[#results + 1] = {
    config = key, quantizer = qname, em = r.em, f1 = r.f1, em_ci = r.em_ci, f1_ci = r.f1_ci, n = r.n,
    bitops_ratio = c.bitops_ratio, bytes_ratio = c.bytes_ratio, avg_wbits = c.avg_wbits, avg_abits = c.avg_abits,
    seconds = r.seconds,
    per_question = per_question(r), -- each question's F1 and EM (0..1, in data order): for paired comparisons
  }
  print(string.format("  %-10s %-7s EM %6.2f [%5.2f,%5.2f]  F1 %6.2f [%5.2f,%5.2f]  BitOPs %.3f  bytes %.3f  (%.0fs)",
    key, qname, r.em, r.em_ci[1], r.em_ci[2], r.f1, r.f1_ci[1], r.f1_ci[2], c.bitops_ratio, c.bytes_ratio, r.seconds))
  save()
end

local quantizers = {}
for q in o.quantizers:gmatch("[^,%s]+") do quantizers[#quantizers + 1] = q end
-- check every name before the first (long) evaluation: a typo fails now
for _, q in ipairs(quantizers) do model:quantize{weight = q, act = q} end
local uniform = P.load(o.configs, model)
local mixed = o.mixed ~= "" and P.load(o.mixed, model) or {}
model:quantize{weight = quantizers[1] or "minmax", act = quantizers[1] or "minmax"}
run(P.config(model, "fp", "fp"), "none")
-- the default quantizer's sweep and the mixed configurations first: a run
-- cut short (it resumes) has the most informative rows
for qi, q in ipairs(quantizers) do
  model:quantize{weight = q, act = q}
  for _, cfg in ipairs(uniform) do run(cfg, q) end
  if qi == 1 and #mixed > 0 then
    model:quantize{weight = "minmax", act = "minmax"}
    for _, cfg in ipairs(mixed) do run(cfg, "minmax") end
  end
end

print(string.format("\n%-10s %-7s %7s %7s %8s %7s", "config", "quant", "EM", "F1", "BitOPs", "bytes"))
for _, r in ipairs(results) do
  print(string.format("%-10s %-7s %7.2f %7.2f %8.3f %7.3f", r.config, r.quantizer, r.em, r.f1, r.bitops_ratio,
    r.bytes_ratio))
end
print("wrote " .. o.out)
