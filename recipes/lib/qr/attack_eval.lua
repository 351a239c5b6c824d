-- attack_eval.lua - adversarial evaluation of question answering under
-- fixed precision and random precision inference (RPI), the machinery of
-- recipes/rpi.lua (issue 11). Attack plugins (qr.attack) perturb the
-- QUESTION of a SQuAD example (the context, and the gold answer in it, are
-- left as they are), guided by a continuous victim score, under an
-- explicit query budget; success is judged by generation.
--
--   local E = require("qr.attack_eval")
--   local v = E.victim(model, {kind = "fixed", config = cfg})          -- or
--   local v = E.victim(model, {kind = "rpi", configs = set, seed = 1})  -- a fresh draw per query
--   local v = E.victim(model, {kind = "eot", configs = set})            -- mean over the set (exact)
--   local r = E.attack_one(model, v, attack, ex, {budget = 200, seed = 1, edits = 4})
--   local preds = E.answer(model, v, exs, {batch = 8})                  -- generation, as deployed
--
-- The victim score of a question q (higher = better for the victim, in
-- (0, 1]) is exp(-NLL/token) of the gold answer under teacher forcing with
-- the prompt built on q (model:proxy, one forward pass): the geometric mean
-- of the answer tokens' probabilities. Under "rpi" each query draws its own
-- configuration (model:rpi_next: the attacker does not control the draw;
-- the naive adaptive attacker); under "eot" it is the mean of the scores
-- at every configuration of the set (an expectation-over-transformation
-- attacker who knows the defence and its probabilities; exact, weighted by
-- them). A query budget is enforced here, not by the plugin: once it is
-- spent, every further candidate scores +huge without touching the model,
-- so no plugin can exceed it (the plugin then keeps what it had). A query
-- decodes only the question and the answer: the context's keys and values
-- are kept per configuration (model:proxy_prefix; exact up to summation
-- order, docs in core/train/proxy.h).
--
-- Batched queries (ABI 1.4; opts.query_batch, default on): a plugin with
-- perturb_batch (attack:batched()) hands over the candidates of one word
-- together and E.scores answers them with one model:proxy call per
-- configuration (fixed: one; rpi: one per configuration drawn, the draws
-- made one per candidate in order, the same as the sequential queries';
-- eot: one per configuration of the set). The budget charges each
-- candidate in order, as the sequential query does, so the queries and
-- the result are the sequential attack's up to the batched forward's
-- summation order.

local qa = require("qr.squad_qa")
local D = require("qr.sp_data")

local E = {}

local function copy_ex(ex, question)
  local e = {}
  for k, v in pairs(ex) do e[k] = v end
  e.question = question
  return e
end

-- The words of a text (runs of letters, digits and non-ASCII bytes).
function E.words(s)
  local w = {}
  for x in s:gmatch("[%w\128-\255]+") do w[#w + 1] = x end
  return w
end

-- Word-level edit distance between a and b over #words(a) (substitutions,
-- insertions and deletions of whole words; a word with a typo counts as
-- one substitution).
function E.words_changed(a, b)
  local x, y = E.words(a), E.words(b)
  local n, m = #x, #y
  if n == 0 then return m > 0 and 1 or 0 end
  local prev = {}
  for j = 0, m do prev[j] = j end
  for i = 1, n do
    local cur = {[0] = i}
    for j = 1, m do
      local c = x[i] == y[j] and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + c)
    end
    prev = cur
  end
  return prev[m] / n
end

-- E.victim(model, spec) -> victim. spec.kind: "fixed" (spec.config),
-- "rpi" (spec.configs, spec.probs, spec.seed) or "eot" (spec.configs,
-- spec.probs). spec.name names it in results (default: the config name,
-- "rpi" or "eot").
function E.victim(model, spec)
  local kind = spec.kind
  if kind ~= "fixed" and kind ~= "rpi" and kind ~= "eot" then
    error(string.format("attack_eval: victim kind '%s': expected fixed, rpi or eot", tostring(kind)), 2)
  end
  if kind == "fixed" and type(spec.config) ~= "table" then error("attack_eval: a fixed victim needs a config", 2) end
  if kind ~= "fixed" and (type(spec.configs) ~= "table" or #spec.configs == 0) then
    error(string.format("attack_eval: an %s victim needs a non-empty configs set", kind), 2)
  end
  local v = {kind = kind, spec = spec, model = model,
    name = spec.name or (kind == "fixed" and spec.config.name or kind)}
  if kind ~= "fixed" then
    local n = #spec.configs
    v.probs = spec.probs or {}
    if not spec.probs then for k = 1, n do v.probs[k] = 1 / n end end
    -- checks the set against the model now (adapters, probabilities)
    model:rpi{configs = spec.configs, probs = v.probs, seed = spec.seed or 1}
    model:rpi(false)
  end
  return v
end

-- The prompt prefix every question of ex shares (the tokens before the
-- question: the context), kept per configuration by model:proxy_prefix so
-- that a query decodes only the question and the answer; one per example,
-- the last one kept.
local last_prefix = {}
local function prefix_of(model, ex, seq)
  if last_prefix.ex == ex and last_prefix.model == model and last_prefix.seq == seq then
    return last_prefix.pc, last_prefix.ids
  end
  local a = D.build(model.tokenizer, {copy_ex(ex, ex.question)}, {seq = seq, max_warnings = 0})[1]
  local b = D.build(model.tokenizer, {copy_ex(ex, "?")}, {seq = seq, max_warnings = 0})[1]
  local pc, ids = nil, {}
  if a and b then
    while a.ids[#ids + 1] ~= nil and a.ids[#ids + 1] == b.ids[#ids + 1] do ids[#ids + 1] = a.ids[#ids + 1] end
    if #ids > 0 then pc = model:proxy_prefix(ids, {slots = 16}) end
  end
  last_prefix = {ex = ex, model = model, seq = seq, pc = pc, ids = ids}
  return pc, ids
end

-- Sequences scored through the kept prefix at once (a KV slot each).
local PREFIX_BATCH = 16

-- whether sequence s starts with the tokens ids and has more after them
local function starts_with(s, ids)
  if #s.ids <= #ids then return false end
  for i = 1, #ids do
    if s.ids[i] ~= ids[i] then return false end
  end
  return true
end

-- The answer probability (exp(-NLL/token)) of example ex with question q
-- at the model's current precision; nil when the prompt cannot hold it.
-- Through the example's kept prefix when the sequence starts with it (a
-- longer question can make the context cut differently: then the full
-- forward).
local function answer_p(model, ex, q, seq)
  local seqs = D.build(model.tokenizer, {copy_ex(ex, q)}, {seq = seq, max_warnings = 0})
  if #seqs == 0 then return nil end
  local pc, ids = prefix_of(model, ex, seq)
  local ok = pc ~= nil and starts_with(seqs[1], ids)
  return math.exp(-model:proxy(seqs, ok and {prefix = pc} or nil).nll)
end

-- The sequences of the questions qs, split by how they are scored: `via`
-- those that start with the example's kept prefix, `full` the others
-- (rare: a longer question cut the context differently); at[j] is the
-- index in qs of a group's j-th sequence, and a question whose prompt
-- cannot hold it is in neither. Built once for every configuration.
local function build_all(model, ex, qs, seq)
  local pc, ids = prefix_of(model, ex, seq)
  local b = {pc = pc, via = {seqs = {}, at = {}}, full = {seqs = {}, at = {}}}
  for i, q in ipairs(qs) do
    local s = D.build(model.tokenizer, {copy_ex(ex, q)}, {seq = seq, max_warnings = 0})[1]
    if s then
      local g = pc ~= nil and starts_with(s, ids) and b.via or b.full
      g.seqs[#g.seqs + 1] = s
      g.at[#g.seqs] = i
    end
  end
  return b
end

-- answer_p of each question of a build_all, at the model's current
-- precision: p[i] for qs[i] (nil where the prompt cannot hold it), one
-- model:proxy call per group (per[j] is sequence j's mean NLL: the .nll of
-- a call on it alone).
local function answer_ps(model, b)
  local p = {}
  for _, g in ipairs{b.via, b.full} do
    if #g.seqs > 0 then
      local r = model:proxy(g.seqs, g == b.via and {prefix = b.pc, batch = math.min(#g.seqs, PREFIX_BATCH)} or nil)
      for j, i in ipairs(g.at) do p[i] = math.exp(-r.per[j]) end
    end
  end
  return p
end

-- E.score(v, ex, q, seq) -> score (one query; an eot query is #set forwards).
function E.score(v, ex, q, seq)
  local m = v.model
  if v.kind == "fixed" then
    m:precision(v.spec.config)
    return answer_p(m, ex, q, seq)
  elseif v.kind == "rpi" then
    if not v.rpi_on then
      m:rpi{configs = v.spec.configs, probs = v.probs, seed = v.spec.seed or 1}
      v.rpi_on = true
    end
    m:rpi_next()
    return answer_p(m, ex, q, seq)
  end
  local s = 0
  for k, c in ipairs(v.spec.configs) do
    m:precision(c)
    local p = answer_p(m, ex, q, seq)
    if not p then return nil end
    s = s + v.probs[k] * p
  end
  return s
end

-- E.scores(v, ex, qs, seq) -> {score or nil, ...}: E.score of each question
-- of qs (#qs queries; an eot query is #set forwards), batched: one
-- model:proxy call per configuration. rpi: one draw per question, in
-- order (the draws of #qs sequential queries), then one call per
-- configuration drawn; eot: per configuration, one call on all, the
-- weighted sum taken in the set's order as E.score does.
function E.scores(v, ex, qs, seq)
  local m = v.model
  if #qs == 0 then return {} end
  if v.kind == "fixed" then
    m:precision(v.spec.config)
    return answer_ps(m, build_all(m, ex, qs, seq))
  elseif v.kind == "rpi" then
    if not v.rpi_on then
      m:rpi{configs = v.spec.configs, probs = v.probs, seed = v.spec.seed or 1}
      v.rpi_on = true
    end
    local draw, order, seen = {}, {}, {}
    for i = 1, #qs do
      draw[i] = m:rpi_next()
      if not seen[draw[i]] then
        seen[draw[i]] = true
        order[#order + 1] = draw[i]
      end
    end
    local out = {}
    for _, k in ipairs(order) do
      local sub, at = {}, {}
      for i = 1, #qs do
        if draw[i] == k then
          sub[#sub + 1] = qs[i]
          at[#sub] = i
        end
      end
      m:precision(v.spec.configs[k])
      local ps = answer_ps(m, build_all(m, ex, sub, seq))
      for j, i in ipairs(at) do out[i] = ps[j] end
    end
    return out
  end
  local b = build_all(m, ex, qs, seq)
  local s, dead = {}, {}
  for i = 1, #qs do s[i] = 0 end
  for k, c in ipairs(v.spec.configs) do
    m:precision(c)
    local ps = answer_ps(m, b)
    for i = 1, #qs do
      if ps[i] then s[i] = s[i] + v.probs[k] * ps[i] else dead[i] = true end
    end
  end
  for i in pairs(dead) do s[i] = nil end
  return s
end

-- E.budgeted(budget, score, scores) -> b: the query budget, enforced here
-- and not by the plugin. b.query(q) and b.query_batch({q, ...}) are
-- attack:perturb's query_fn and query_batch_fn: each candidate is charged
-- in order, and one past the budget scores +huge (never accepted) without
-- reaching the victim; score(q) / scores(qs) answer the rest (nil: the
-- prompt cannot hold it, +huge too). b.queries counts the charged ones,
-- b.batches the batched calls that reached the victim.
function E.budgeted(budget, score, scores)
  local b = {queries = 0, batches = 0}
  function b.query(q)
    if b.queries >= budget then return math.huge end -- budget spent: nothing can be accepted
    b.queries = b.queries + 1
    return score(q) or math.huge
  end
  function b.query_batch(qs)
    local n, out, ask = #qs, {}, {}
    for i = 1, n do
      if b.queries >= budget then
        out[i] = math.huge
      else
        b.queries = b.queries + 1
        ask[i] = qs[i] -- the charged ones are a prefix of qs
      end
    end
    if #ask > 0 then
      b.batches = b.batches + 1
      local s = scores(ask)
      for i = 1, #ask do out[i] = s[i] or math.huge end
    end
    return out
  end
  return b
end

-- E.answer(model, v, exs, opts) -> predictions {{prediction=, em=, f1=[, rpi=]}, ...}
-- by generation as the victim is deployed: fixed at its configuration; rpi
-- and eot victims as the RPI model (one fresh draw per question, from
-- opts.seed: the deployed defence).
function E.answer(model, v, exs, opts)
  opts = opts or {}
  if v.kind == "fixed" then
    model:rpi(false)
    model:precision(v.spec.config)
  else
    model:rpi{configs = v.spec.configs, probs = v.probs, seed = opts.seed or 1}
  end
  local r = qa.evaluate(model, exs, {batch = opts.batch or 8, progress = false,
    max_new_tokens = opts.max_new_tokens})
  model:rpi(false)
  v.rpi_on = false
  return r.predictions
end

-- E.attack_one(model, v, attack, ex, opts) -> {perturbed=, queries=,
-- batches=, words_changed=, score_before=, score_after=}. opts: budget
-- (queries, default 200), edits (the plugin's own budget: words it may
-- edit; default 40% of the question's words, at least 1), seed, seq (384),
-- query_batch (default true: batched scoring for a plugin that has it;
-- false: one query at a time). queries = the queries charged (the same
-- either way); batches = the batched calls that reached the victim.
function E.attack_one(model, v, attack, ex, opts)
  opts = opts or {}
  local budget = opts.budget or 200
  local seq = opts.seq or 384
  local nw = #E.words(ex.question)
  local edits = opts.edits or math.max(1, math.floor(0.4 * nw))
  local s0 = E.score(v, ex, ex.question, seq)
  if not s0 then return nil, "the prompt does not fit --seq" end
  local b = E.budgeted(budget, function(q) return E.score(v, ex, q, seq) end,
    function(qs) return E.scores(v, ex, qs, seq) end)
  local out = attack:perturb(ex.question, b.query, edits, opts.seed or 1,
    opts.query_batch ~= false and b.query_batch or nil)
  v.rpi_on = false
  model:rpi(false)
  local s1 = E.score(v, ex, out, seq)
  model:rpi(false)
  v.rpi_on = false
  return {perturbed = out, queries = b.queries, batches = b.batches, words_changed = E.words_changed(ex.question, out),
          score_before = s0, score_after = s1, edits = edits}
end

-- Mean and 95% bootstrap CI of an array of numbers (percent when pct).
function E.stat(xs, pct, seed)
  local f = pct and 100 or 1
  if #xs == 0 then return {mean = nil, ci = nil, n = 0} end
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  local lo, hi = qr.squad.ci(xs, {iters = 1000, seed = seed or 1, level = 0.95})
  return {mean = f * s / #xs, ci = {f * lo, f * hi}, n = #xs}
end

return E
