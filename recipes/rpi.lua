-- rpi.lua - MISSION step 6: does random precision inference (RPI, one
-- configuration drawn per input from the tuned switchable set) make
-- question answering harder to attack? On the tuned bank of an sp.lua run.
--
--   qrun recipes/rpi.lua --sp-dir=runs/sp --run-dir=runs/rpi
--   qrun recipes/rpi.lua --sp-dir=runs/sp --attacks=typo --eval-limit=50
--
-- Threat models (--threats), each against each attack (--attacks):
--   transfer  questions attacked on a fixed-precision victim (--victims,
--             default fp,w8a8) and replayed against every fixed
--             configuration of the RPI set and against RPI: the transfer
--             matrix
--   adaptive  the attacker queries the RPI model itself, every query a
--             fresh draw (it knows nothing of the defence)
--   eot       the attacker's score is the probability-weighted mean over
--             the RPI set (it knows the defence: expectation over
--             transformation, exact since the set is small)
-- Only questions the crafting victim answers exactly (EM = 1, clean) are
-- attacked; the count is in the results. The victim score guiding every
-- attack is the gold answer's probability (exp(-NLL/token), teacher
-- forcing; qr.attack_eval); success = the attacked answer's F1 falls
-- below --threshold, judged by generation as the model is deployed (RPI:
-- a fresh draw per question). --budget caps the queries per question;
-- --query-batch (default) scores the candidates of one word together (the
-- same queries and, up to the batched forward's summation order, the same
-- attack; --query-batch=false asks one at a time).
--
-- Writes <run-dir>/results.json (rewritten after each cell: resumable),
-- <run-dir>/adv-<attack>-<source>.jsonl (one line per attacked question:
-- id, original, perturbed, words_changed, queries, batches, answer_before,
-- answer_after, score_before, score_after), reused by a rerun and by
-- another model (--replay=FILE.jsonl evaluates every victim on a saved set).
local qa = require("qr.squad_qa")
local P = require("qr.precision")
local E = require("qr.attack_eval")

local o = qr.opts{
  {"model", "", "a .gguf file or a Hugging Face GPT-2 directory (default: the sp run's)"},
  {"sp-dir", "", "an sp.lua run directory (results.json + adapters.safetensors)"},
  {"eval-data", qr.source_dir .. "/datasets/squad/dev-sample.json", "SQuAD v1.1 evaluation JSON"},
  {"eval-limit", 200, "dev questions (0 = all)"},
  {"attacks", "typo,textfooler,bert_attack", "attack plugins (qr.plugins() lists them); the word-level ones need "
    .. "scripts/setup_attacks.sh and scripts/fetch_encoder.sh"},
  {"attack-opts", "", "attack options, e.g. typo.tries=4"},
  {"threats", "transfer,adaptive,eot", "threat models"},
  {"victims", "fp,w8a8", "fixed-precision victims the transfer attacks are crafted on"},
  {"rpi-configs", "", "the RPI set: configurations of the sp run (default: all of them)"},
  {"rpi-probs", "", "RPI probabilities in --rpi-configs order (default: uniform)"},
  {"budget", 200, "queries per attacked question"},
  {"query-batch", true, "score an attack's candidates for one word in one batched forward (false: one query at a time)"},
  {"edits", 0, "edits an attack may make (its unit: words; 0 = 40% of the question's words)"},
  {"threshold", 0.5, "success: the attacked answer's F1 below this"},
  {"seed", 1, "attack and RPI seeds"},
  {"run-dir", "runs/rpi", "run directory"},
  {"batch-eval", 8, "questions generated together"},
  {"max-new-tokens", 24, "longest answer in tokens"},
  {"seq", 384, "longest scored sequence (prompt + answer) in tokens"},
  {"replay", "", "a saved adv-*.jsonl: evaluate every victim on its perturbed questions and stop"},
}

local function refuse(msg)
  io.stderr:write("rpi: ", msg, "\n")
  os.exit(2)
end
local function split(s)
  local t = {}
  for x in s:gmatch("[^,%s]+") do t[#t + 1] = x end
  return t
end
local THREATS = {transfer = true, adaptive = true, eot = true}
for _, t in ipairs(split(o.threats)) do
  if not THREATS[t] then refuse(string.format("--threats: no threat model named '%s' (known: transfer,adaptive,eot)", t)) end
end
if #split(o.attacks) == 0 then refuse("--attacks is empty") end
if not (o.threshold > 0 and o.threshold <= 1) then refuse("--threshold: expected a number in (0, 1]") end
if not math.tointeger(o.budget) or o.budget < 1 then refuse("--budget: expected an integer >= 1 (queries)") end
if o.sp_dir == "" then refuse("--sp-dir: give an sp.lua run directory (qrun recipes/sp.lua --run-dir=DIR trains one)") end
local sp = qr.json.read(o.sp_dir .. "/results.json")
if not sp then refuse(string.format("--sp-dir=%s: no results.json there", o.sp_dir)) end
local apath = o.sp_dir .. "/adapters.safetensors"
if not io.open(apath, "rb") then refuse(string.format("--sp-dir=%s: no adapters.safetensors (the run did not finish)", o.sp_dir)) end

-- the tuned model, as sp.lua left it
local path = o.model ~= "" and o.model or sp.model
local model = assert(qr.model(path))
model:quantize{weight = sp.quantizer or "minmax", act = sp.quantizer or "minmax"}
local items = {}
for _, it in ipairs(split(sp.configs)) do
  items[#items + 1] = it == "mlp4" and {name = "mlp4", default = "w8a8", ["*.mlp.*"] = "w4a8"} or it
end
local cfgs = P.load(items, model)
local slots = P.assign_adapters(cfgs)
model:lora{rank = sp.rank, alpha = 2 * sp.rank, slots = slots, seed = sp.seed}
assert(model:load_adapters(apath))
qa.set_shots(sp.shots or 0)
local by_name = {}
for _, c in ipairs(cfgs) do by_name[c.name] = c end
local function named(list, opt)
  local out = {}
  for _, n in ipairs(split(list)) do
    if not by_name[n] then
      refuse(string.format("--%s: '%s' is not a configuration of the sp run (%s): only those have adapters", opt, n,
        sp.configs))
    end
    out[#out + 1] = by_name[n]
  end
  return out
end
local set = o.rpi_configs == "" and cfgs or named(o.rpi_configs, "rpi-configs")
local probs
if o.rpi_probs ~= "" then
  probs = {}
  for _, v in ipairs(split(o.rpi_probs)) do probs[#probs + 1] = tonumber(v) or refuse("--rpi-probs: '" .. v .. "'") end
end
local sources = named(o.victims, "victims")
local attacks = {}
local aopts = {}
for k, v in o.attack_opts:gmatch("([^,=%s]+)=([^,]+)") do
  local a, key = k:match("^([^.]+)%.(.+)$")
  if not a then refuse("--attack-opts: '" .. k .. "': expected <attack>.<option>=value") end
  aopts[a] = aopts[a] or {}
  aopts[a][key] = v
end
-- word-level attacks get the host's resources: the counter-fitted embedding
-- and the sentence encoder (scripts/setup_attacks.sh, scripts/fetch_encoder.sh)
local WORD_ATTACKS = {textfooler = true, bert_attack = true}
local LM, SERVED
for _, name in ipairs(split(o.attacks)) do
  if WORD_ATTACKS[name] and not SERVED then -- (qr.attack_resources() with no argument would stop the serving)
    local wv, e1 = qr.wordvec()
    if not wv then
      refuse(string.format("--attacks=%s needs the word resources: %s (or --attacks=typo, which needs none)", name,
        tostring(e1)))
    end
    local enc, e2 = qr.sentence_encoder()
    if not enc then
      refuse(string.format("--attacks=%s needs the sentence encoder: %s (or --attacks=typo, which needs none)", name,
        tostring(e2)))
    end
    qr.attack_resources(wv)
    qr.attack_encoder(enc)
    SERVED = {wv = wv, enc = enc}
  end
  if name == "bert_attack" and not LM then
    -- the candidates' language model: a separate fp instance of the model, never the victim
    LM = assert(qr.model(path))
    qr.attack_lm(LM)
  end
end
for _, name in ipairs(split(o.attacks)) do
  local ok, a = pcall(qr.attack, name, aopts[name])
  if not ok then refuse(string.format("--attacks: '%s': %s", name, tostring(a))) end
  attacks[#attacks + 1] = {name = name, plugin = a}
end

local fixed = {}
for _, c in ipairs(set) do fixed[#fixed + 1] = E.victim(model, {kind = "fixed", config = c}) end
for _, c in ipairs(sources) do
  local dup = false
  for _, f in ipairs(fixed) do dup = dup or f.name == c.name end
  if not dup then fixed[#fixed + 1] = E.victim(model, {kind = "fixed", config = c}) end
end
local okv, rpi = pcall(E.victim, model, {kind = "rpi", configs = set, probs = probs, seed = o.seed, name = "rpi"})
if not okv then refuse("the RPI set: " .. tostring(rpi)) end
local eot = E.victim(model, {kind = "eot", configs = set, probs = probs, name = "eot"})
local targets = {}
for _, f in ipairs(fixed) do targets[#targets + 1] = f end
targets[#targets + 1] = rpi

os.execute("mkdir -p " .. string.format("%q", o.run_dir))
local dev = qa.load(o.eval_data, o.eval_limit)
local by_id = {}
for _, ex in ipairs(dev) do by_id[ex.id] = ex end
local key = table.concat({path, o.sp_dir, o.eval_data, o.eval_limit, o.budget, o.edits, o.threshold, o.seed,
  o.rpi_configs, o.rpi_probs, o.max_new_tokens, o.seq, o.attack_opts}, "|")
local out = o.run_dir .. "/results.json"
local doc = qr.json.read(out)
if not doc or doc.key ~= key then doc = {key = key, clean = {}, cells = {}} end
doc.model, doc.sp_dir, doc.eval_data, doc.eval_n = qa.portable_path(path), o.sp_dir, qa.portable_path(o.eval_data), #dev
doc.rpi_set = {}
for i, c in ipairs(set) do doc.rpi_set[i] = c.name end
doc.rpi_probs = probs or "uniform"
doc.budget, doc.threshold, doc.seed, doc.git_rev = o.budget, o.threshold, o.seed, qa.git_rev()
doc.query_batch = o.query_batch -- not in the key: the same queries either way
doc.score = "victim score = exp(-NLL/token) of the gold answer under teacher forcing (qr.attack_eval)"
doc.success = string.format("the attacked answer's F1 (generation, as deployed) < %g", o.threshold)
doc.substitutes = {}
for _, a in ipairs(attacks) do
  if a.name == "textfooler" then
    doc.substitutes.textfooler = {
      embedding = "GloVe 6B 50-d counter-fitted with WordNet 3.0 synonyms/antonyms (scripts/setup_attacks.sh) "
        .. "for the published counter-fitted PARAGRAM-SL999",
      pos = "WordNet 3.0 parts of speech of the word alone, for the published sentence tagger",
      sentence_encoder = "all-MiniLM-L6-v2 (scripts/fetch_encoder.sh) for the Universal Sentence Encoder; "
        .. "threshold cos 0.8776 = TextAttack's angular 0.840845",
      perturbed = "the question only (the context and its gold answer span unchanged)"}
  elseif a.name == "bert_attack" then
    doc.substitutes.bert_attack = {
      candidates = "a causal LM (a separate fp instance of the model) proposing single-token words from the left "
        .. "context, re-ranked by the whole question's likelihood: BERT-Attack-style (no masked LM is reachable)",
      sentence_encoder = "all-MiniLM-L6-v2 for the Universal Sentence Encoder (cos >= 0.2, against the original)",
      importance = "the score drop when the word is replaced by the text [UNK]",
      perturbed = "the question only"}
  elseif a.name == "typo" then
    doc.substitutes.typo = {perturbed = "the question only", edits = "Pruthi et al. (2019): inner characters of "
      .. "4+ character words; swap, QWERTY substitution, deletion, insertion"}
  end
end
-- One directory, one bank: every cell must come from the same adapters. A retrained bank is another bank
-- even with the same command: quantized configurations are not reproducible to the bit across BLAS kernels
-- (SmolLM2's w8a8 loss moves by 0.15% between OpenBLAS's Haswell and SkylakeX kernels, fp's by 2e-7), so
-- its answers, and the questions an attack finds, differ. Resuming on another bank is refused; the
-- machines that contributed are listed.
local bank_sha = assert(qr.sha256(apath))
if doc.bank and doc.bank.sha256 ~= bank_sha then
  refuse(string.format("%s: its cells were made with the bank whose adapters have SHA-256 %s, but %s has %s "
    .. "(retrained or replaced): resuming would mix two banks in one table. Use a new --run-dir, or restore "
    .. "the bank the directory was made with", out, tostring(doc.bank.sha256) .. (doc.bank.note and (" (" .. doc.bank.note .. ")") or ""), apath, bank_sha))
end
if not doc.bank then
  doc.bank = {sha256 = bank_sha, file = apath}
  if next(doc.clean) or next(doc.cells) then
    -- a directory made before banks were recorded: it is taken to be this bank's, and says so
    doc.bank.adopted = "the directory's earlier results predate the bank's record and were taken to be this bank's"
  end
end
local cpu = qa.cpu_model()
doc.machines = type(doc.machines) == "table" and doc.machines or {}
-- a crafted line without a machine (written before lines named theirs) is the one machine's the directory had then
if not doc.unmarked_machine then doc.unmarked_machine = #doc.machines <= 1 and (doc.machines[1] or cpu) or "unrecorded" end
local unmarked = doc.unmarked_machine
local seen = false
for _, m in ipairs(doc.machines) do seen = seen or m == cpu end
if not seen then doc.machines[#doc.machines + 1] = cpu end
-- the machine whose clean answers are doc.clean (a directory made before this was recorded: its first machine)
if not doc.clean_machine then doc.clean_machine = next(doc.clean) and doc.machines[1] or cpu end
local function save() assert(qr.json.write(out, doc, {indent = true})) end
local t_start = qr.now()

-- clean answers of target v on every dev question, in the batches of the first pass
local function clean_pass(v, label)
  local t0 = qr.now()
  local preds = E.answer(model, v, dev, {batch = o.batch_eval, seed = o.seed, max_new_tokens = o.max_new_tokens})
  local f1s, ems, per = {}, {}, {}
  for i, p in ipairs(preds) do
    f1s[i], ems[i] = p.f1, p.em
    per[dev[i].id] = {f1 = p.f1, em = p.em, prediction = p.prediction, rpi = p.rpi}
  end
  local c = {f1 = E.stat(f1s, true), em = E.stat(ems, true), per = per, seconds = qr.now() - t0}
  print(string.format("clean %-8s EM %6.2f  F1 %6.2f [%5.2f, %5.2f]  (%d questions, %.0fs)%s", v.name,
    c.em.mean, c.f1.mean, c.f1.ci[1], c.f1.ci[2], #dev, qr.now() - t0, label or ""))
  return c
end

for _, v in ipairs(targets) do
  if not doc.clean[v.name] then
    doc.clean[v.name] = clean_pass(v)
    save()
  end
end

-- The clean answers a cell's success is judged against, from the machine that replays the cell: a quantized
-- configuration's answers differ across CPUs on about a third of questions (kernel-sensitivity.json), so an
-- attack judged against another machine's clean answers would count those as successes, or hide some. On
-- the machine that made doc.clean that is doc.clean; on another, the same clean pass once more, kept in
-- doc.clean_on[cpu] with how many answers moved.
local function baseline(v)
  if cpu == doc.clean_machine then return doc.clean[v.name] end
  doc.clean_on = type(doc.clean_on) == "table" and doc.clean_on or {}
  local on = doc.clean_on[cpu] or {}
  doc.clean_on[cpu] = on
  if not on[v.name] then
    local c = clean_pass(v, string.format(" on %s (doc.clean: %s)", cpu, doc.clean_machine))
    local moved, f1d = 0, {}
    for i, ex in ipairs(dev) do
      local a, b = c.per[ex.id], doc.clean[v.name].per[ex.id]
      if a.prediction ~= b.prediction then moved = moved + 1 end
      f1d[i] = a.f1 - b.f1
    end
    c.answers_changed = moved
    c.f1_minus_clean_machine = E.stat(f1d, true)
    print(string.format("  %s: %d of %d answers differ from %s's, F1 %+.2f [%+.2f, %+.2f]", v.name, moved, #dev,
      doc.clean_machine, c.f1_minus_clean_machine.mean, c.f1_minus_clean_machine.ci[1], c.f1_minus_clean_machine.ci[2]))
    on[v.name] = c
    save()
  end
  return on[v.name]
end

-- the JSONL of one (attack, source): lines already there are kept
local function read_jsonl(p)
  local t, f = {}, io.open(p, "r")
  if not f then return t end
  for line in f:lines() do
    local ok, x = pcall(qr.json.decode, line)
    if ok and type(x) == "table" and x.id then t[x.id] = x end
  end
  f:close()
  return t
end

-- craft adversarial questions against `src` (a victim) on the questions it answers exactly
local function craft(attack, src, correct_of)
  local file = string.format("%s/adv-%s-%s.jsonl", o.run_dir, attack.name, src.name)
  local have = read_jsonl(file)
  local correct = {}
  for _, ex in ipairs(dev) do
    local c = doc.clean[correct_of].per[ex.id]
    if c and c.em == 1 then correct[#correct + 1] = ex end
  end
  local f = assert(io.open(file, "a"))
  local t0, n_new = qr.now(), 0
  for i, ex in ipairs(correct) do
    if not have[ex.id] then
      local tq = qr.now()
      local r, why = E.attack_one(model, src, attack.plugin, ex, {budget = o.budget, seed = o.seed,
        edits = o.edits > 0 and o.edits or nil, seq = o.seq, query_batch = o.query_batch})
      local line
      if r then
        local after = E.answer(model, src, {{id = ex.id, question = r.perturbed, context = ex.context,
          answers = ex.answers}}, {batch = 1, seed = o.seed + i, max_new_tokens = o.max_new_tokens})[1]
        line = {id = ex.id, original = ex.question, perturbed = r.perturbed, words_changed = r.words_changed,
          queries = r.queries, batches = r.batches, edits = r.edits, answer_before = doc.clean[correct_of].per[ex.id].prediction,
          answer_after = after.prediction, f1_after = after.f1, score_before = r.score_before,
          score_after = r.score_after}
      else
        line = {id = ex.id, original = ex.question, skipped = why}
      end
      line.seconds, line.machine = qr.now() - tq, cpu
      f:write(qr.json.encode(line), "\n")
      f:flush()
      have[ex.id] = line
      n_new = n_new + 1
      local each = (qr.now() - t0) / n_new
      if qr.isatty(2) then
        io.stderr:write(string.format("\r  %s vs %s: %d/%d questions, %.1fs each   ", attack.name, src.name, i, #correct,
          each))
      elseif n_new % 10 == 0 then -- a log (nohup, a pipe): a plain line every 10 questions, with the time left
        io.stderr:write(string.format("  %s vs %s: %d/%d questions, %.1fs each, about %.0f min left\n", attack.name,
          src.name, i, #correct, each, each * (#correct - i) / 60))
      end
    end
  end
  f:close()
  if qr.isatty(2) then io.stderr:write("\n") end
  local list = {}
  for _, ex in ipairs(correct) do
    if have[ex.id] and not have[ex.id].skipped then list[#list + 1] = have[ex.id] end
  end
  return list, #correct, file
end

-- evaluate target `v` on the perturbed questions of `adv` (a crafted list)
local function replay(v, adv)
  local exs = {}
  for i, a in ipairs(adv) do
    local ex = by_id[a.id]
    exs[i] = {id = a.id, question = a.perturbed, context = ex.context, answers = ex.answers}
  end
  if #exs == 0 then return {} end
  return E.answer(model, v, exs, {batch = o.batch_eval, seed = o.seed + 7919, max_new_tokens = o.max_new_tokens})
end

local function cell(attack, threat, src, adv, n_correct, file, v)
  local id = table.concat({attack.name, threat, src.name, v.name}, "/")
  if doc.cells[id] then return end
  local base = baseline(v)
  local preds = replay(v, adv)
  local f1c, f1a, succ, wc, qs = {}, {}, {}, {}, {}
  for i, a in ipairs(adv) do
    local clean = base.per[a.id]
    f1c[i], f1a[i] = clean.f1, preds[i].f1
    wc[i], qs[i] = a.words_changed, a.queries
    if clean.em == 1 then succ[#succ + 1] = preds[i].f1 < o.threshold and 1 or 0 end
  end
  doc.cells[id] = {attack = attack.name, threat = threat, source = src.name, target = v.name,
    attacked = #adv, correct_on_source = n_correct, file = file, machine = cpu,
    baseline = cpu ~= doc.clean_machine and ("clean_on." .. cpu) or "clean",
    clean_f1_all = base.f1, clean_f1 = E.stat(f1c, true), attacked_f1 = E.stat(f1a, true),
    success = E.stat(succ, true), words_changed = E.stat(wc, true), queries = E.stat(qs, false),
    crafted_on = (function()
      local t = {}
      for _, a in ipairs(adv) do local m = a.machine or unmarked t[m] = (t[m] or 0) + 1 end
      return t
    end)(),
    craft_seconds = (function() local t = 0 for _, a in ipairs(adv) do t = t + (a.seconds or 0) end return t end)(),
    queries_per_s = (function()
      local t, q = 0, 0
      for _, a in ipairs(adv) do t, q = t + (a.seconds or 0), q + (a.queries or 0) end
      return t > 0 and q / t or nil
    end)(),
    per_question = {ids = (function() local t = {} for i, a in ipairs(adv) do t[i] = a.id end return t end)(),
      clean_f1 = f1c, attacked_f1 = f1a}}
  local c = doc.cells[id]
  print(string.format("  %-10s %-9s %-6s -> %-6s  n %3d  F1 %6.2f -> %6.2f  success %6.2f%%  words %5.1f%%  "
    .. "queries %6.1f (%.1f/s)", attack.name, threat, src.name, v.name, #adv, c.clean_f1.mean or 0,
    c.attacked_f1.mean or 0, c.success.mean or 0, c.words_changed.mean or 0, c.queries.mean or 0, c.queries_per_s or 0))
  save()
end

if o.replay ~= "" then
  local adv = {}
  for _, a in pairs(read_jsonl(o.replay)) do
    if not a.skipped and by_id[a.id] then adv[#adv + 1] = a end
  end
  table.sort(adv, function(x, y) return x.id < y.id end)
  local src = {name = "replay:" .. (o.replay:match("([^/]+)%.jsonl$") or o.replay)}
  for _, v in ipairs(targets) do cell({name = "replay"}, "transfer", src, adv, #adv, o.replay, v) end
  print("wrote " .. out)
  os.exit(0)
end

for _, attack in ipairs(attacks) do
  local threats = {}
  for _, t in ipairs(split(o.threats)) do threats[t] = true end
  if threats.transfer then
    for _, s in ipairs(sources) do
      local src
      for _, f in ipairs(fixed) do if f.name == s.name then src = f end end
      local adv, n, file = craft(attack, src, src.name)
      for _, v in ipairs(targets) do cell(attack, "transfer", src, adv, n, file, v) end
    end
  end
  if threats.adaptive then
    local adv, n, file = craft(attack, rpi, "rpi")
    for _, v in ipairs(targets) do cell(attack, "adaptive", rpi, adv, n, file, v) end
  end
  if threats.eot then
    local adv, n, file = craft(attack, eot, "rpi")
    for _, v in ipairs(targets) do cell(attack, "eot", eot, adv, n, file, v) end
  end
end
doc.seconds = (doc.seconds or 0) + (qr.now() - t_start)
save()
print(string.format("rpi: done in %.0fs; wrote %s", qr.now() - t_start, out))
