-- quickstart.lua - the main job: load the default model (SmolLM2-135M-
-- Instruct) or --model=PATH, answer SQuAD v1.1 dev questions zero-shot
-- (--shots=N puts N worked examples before each question instead),
-- print exact match and F1 (official v1.1 normalisation) with 95%
-- bootstrap confidence intervals and questions per second.
--
--   qrun recipes/quickstart.lua --limit=200 --out=results/quickstart.json
--
-- The prompt format is documented in recipes/lib/qr/squad_qa.lua.
local qa = require("qr.squad_qa")

local o = qr.opts{
  {"model", "", "a .gguf file or a Hugging Face GPT-2 directory (default: SmolLM2, see scripts/fetch_model.sh)"},
  {"data", qr.source_dir .. "/datasets/squad/dev-sample.json", "SQuAD v1.1 JSON file"},
  {"limit", 200, "evaluate the first N questions (0 = all)"},
  {"out", "", "write the results as JSON to this file"},
  {"batch", 8, "questions generated together"},
  {"max-new-tokens", 24, "longest answer in tokens"},
  {"show", 5, "print the first N predictions"},
  {"shots", 0, "worked examples before each question (0 = zero-shot, at most 2)"},
}

qa.set_shots(o.shots)
local examples, info = qa.load(o.data, o.limit) -- the data first: a bad file fails before the model loads
local path = o.model ~= "" and o.model or assert(qr.default_model())
local t0 = qr.now()
local model = assert(qr.model(path))
print(string.format("model   %s (loaded in %.1fs)", tostring(model), qr.now() - t0))
print(string.format("data    %s: %d questions%s, %s", o.data, #examples,
  info and info.skipped and info.skipped > 0 and (" (" .. info.skipped .. " malformed skipped)") or "",
  o.shots == 0 and "zero-shot" or (o.shots .. "-shot")))

local r = qa.evaluate(model, examples, {batch = o.batch, max_new_tokens = o.max_new_tokens})

for i = 1, math.min(o.show, #examples) do
  local ex, p = examples[i], r.predictions[i]
  print(string.format("  Q: %s\n  predicted: %q   gold: %q   (EM %d, F1 %.2f)", ex.question, p.prediction,
    ex.answers[1], p.em, p.f1))
end
print(string.format("exact match %.2f  [%.2f, %.2f]", r.em, r.em_ci[1], r.em_ci[2]))
print(string.format("F1          %.2f  [%.2f, %.2f]", r.f1, r.f1_ci[1], r.f1_ci[2]))
print(string.format("n %d   %.2f questions/s   prefill %.0f tok/s   decode %.0f tok/s   %d contexts truncated",
  r.n, r.qps, r.prefill_tok_s, r.decode_tok_s, r.truncated))

if o.out ~= "" then
  local res = {
    em = r.em, f1 = r.f1, n = r.n, em_ci = r.em_ci, f1_ci = r.f1_ci,
    questions_per_s = r.qps, seconds = r.seconds, prefill_tok_s = r.prefill_tok_s,
    decode_tok_s = r.decode_tok_s, truncated = r.truncated,
    model = path, data = o.data, git_rev = qa.git_rev(), prompt_format = "squad_qa.lua", shots = o.shots,
    predictions = r.predictions,
  }
  local dir = o.out:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p '" .. dir .. "'") end
  assert(qr.json.write(o.out, res, {indent = true}))
  print("wrote " .. o.out)
end
