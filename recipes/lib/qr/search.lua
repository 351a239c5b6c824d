-- search.lua - finding the best per-layer precision configuration for a
-- cost budget (MISSION step 4): a fast proxy score, the sensitivity of
-- every layer, sub-module kind and block, and three searches under a
-- budget in BitOPs or weight bytes (a ratio to fp): greedy, an integer
-- linear program (HAWQ-V3's additive formulation, solved by GLPK through
-- qr.ilp) and an evolutionary search; the Pareto front of everything
-- evaluated; the configurations found written as Lua files P.load reads.
-- recipes/search.lua drives it on SmolLM2 and a bank from sp.lua;
-- tests/recipes/search_tiny.lua on a tiny random model. docs/SEARCH.md.
--
--   local S = require("qr.search")
--   local prob = S.problem(model, S.parse_choices("fp,w8a8,w4a8"), "bytes")
--   local pick = S.greedy(prob, loss, S.budget_abs(prob, 0.35))   -- loss[i][c]: additive sensitivities
--   local cfg = S.config(prob, pick, "greedy-0.35")                -- a precision.lua configuration
--
-- Vocabulary. A *choice* is a (w, a) pair (and, where precision.lua has
-- them, a group size g) a layer may take; the choices are sorted from the
-- highest precision down, and the *base* is the highest (choice 1). A
-- *pick* is an array: layer i takes choice pick[i]. A *unit* is a set of
-- layers lowered together in the sensitivity analysis: one layer, every
-- layer of one sub-module kind (q, k, v, o, gate, up, down), or every
-- layer of one block. The *score* of a configuration is one number, lower
-- is better: the proxy's KL or NLL (S.proxy), or 100 - F1 on a dev slice.

local P = require("qr.precision")

local S = {}

S.METHODS = {"greedy", "ilp", "evo"}
S.METRICS = {"bytes", "bitops"}
S.SCORES = {"kl", "nll", "f1"}
S.UNITS = {"layers", "kinds", "blocks"}

local function fail(fmt, ...) error("search: " .. string.format(fmt, ...), 0) end

function S.split(s)
  local t = {}
  if type(s) == "table" then
    for i, v in ipairs(s) do t[i] = v end
    return t
  end
  for it in tostring(s or ""):gmatch("[^,%s]+") do t[#t + 1] = it end
  return t
end

local function set_of(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end

local function one_of(name, value, known)
  for _, k in ipairs(known) do if k == value then return value end end
  fail("--%s: no %s named '%s' (known: %s)", name, name, tostring(value), table.concat(known, ","))
end

-- The list option `name` (comma-separated) checked against `known`.
local function list_of(name, value, known, allow_empty)
  local items = S.split(value)
  if #items == 0 and not allow_empty then fail("--%s is empty (known: %s)", name, table.concat(known, ",")) end
  local k, seen = set_of(known), {}
  for _, it in ipairs(items) do
    if not k[it] then fail("--%s: no %s named '%s' (known: %s)", name, name, it, table.concat(known, ",")) end
    if seen[it] then fail("--%s: '%s' given twice", name, it) end
    seen[it] = true
  end
  return items
end

local function posint(name, v, min)
  local n = math.tointeger(v)
  if not n or n < (min or 1) then fail("--%s=%s: expected an integer >= %d", name, tostring(v), min or 1) end
  return n
end

-- S.parse_budgets("0.25,0.35") -> {0.25, 0.35} (ratios to fp, in (0, 1]).
function S.parse_budgets(s)
  local out = {}
  for _, it in ipairs(S.split(s)) do
    local b = tonumber(it)
    if not b or b ~= b or b <= 0 or b > 1 then
      fail("--budget=%s: '%s' is not a ratio to fp in (0, 1] (e.g. --budget=0.25,0.35,0.5)", tostring(s), it)
    end
    out[#out + 1] = b
  end
  if #out == 0 then fail("--budget is empty (e.g. --budget=0.25,0.35,0.5)") end
  return out
end

-- Every check that needs no model: raises a message naming the option.
-- o: method, metric, budget, score, sens, sens_separate, pop, gens, elite,
-- tournament, mutation, calib_limit, sens_limit, sens_cache_mb, corr_min, seed.
-- Returns {methods=, budgets=, sens = set, separate = set}.
function S.check(o)
  local r = {}
  r.methods = list_of("method", o.method or "greedy,ilp,evo", S.METHODS)
  one_of("metric", o.metric or "bytes", S.METRICS)
  one_of("score", o.score or "kl", S.SCORES)
  r.budgets = S.parse_budgets(o.budget or "0.25,0.35,0.5")
  r.sens = set_of(list_of("sens", o.sens or "layers,kinds,blocks", S.UNITS, true))
  r.separate = set_of(list_of("sens-separate", o.sens_separate or "", S.UNITS, true))
  local need_layers = false
  for _, m in ipairs(r.methods) do need_layers = need_layers or m == "greedy" or m == "ilp" end
  if need_layers and not r.sens.layers then
    fail("--sens=%s: greedy and ilp need the per-layer sensitivities (add 'layers')", tostring(o.sens))
  end
  if o.pop ~= nil then posint("pop", o.pop, 2) end
  if o.gens ~= nil then posint("gens", o.gens, 0) end
  if o.elite ~= nil then
    local e = posint("elite", o.elite, 0)
    if o.pop and e >= o.pop then fail("--elite=%d: expected fewer than --pop=%d", e, o.pop) end
  end
  if o.tournament ~= nil then posint("tournament", o.tournament, 1) end
  if o.mutation ~= nil and not (type(o.mutation) == "number" and o.mutation >= 0) then
    fail("--mutation=%s: expected a number >= 0 (layers changed per child, on average)", tostring(o.mutation))
  end
  for _, k in ipairs{"calib_limit", "corr_min"} do
    if o[k] ~= nil then posint((k:gsub("_", "-")), o[k], 1) end
  end
  if o.sens_limit ~= nil then posint("sens-limit", o.sens_limit, 0) end
  if o.sens_cache_mb ~= nil and not (type(o.sens_cache_mb) == "number" and o.sens_cache_mb >= 0) then
    fail("--sens-cache-mb=%s: expected a number of megabytes >= 0 (0: no block-input cache)", tostring(o.sens_cache_mb))
  end
  if o.seed ~= nil and not math.tointeger(o.seed) then fail("--seed=%s: expected an integer", tostring(o.seed)) end
  return r
end

-- ---------------------------------------------------------------- choices

-- A choice's precision order: w * a, then w, then a, then the group size
-- (a smaller group is finer; none = one scale per output channel, the coarsest).
local function higher(x, y)
  if x.w * x.a ~= y.w * y.a then return x.w * x.a > y.w * y.a end
  if x.w ~= y.w then return x.w > y.w end
  if x.a ~= y.a then return x.a > y.a end
  local gx, gy = x.g or math.huge, y.g or math.huge
  if gx ~= gy then return gx < gy end
  return false
end

local function choice_name(w, a, g) return P.pair_name(w, a, g) end
S.choice_name = choice_name

-- S.parse_choices("fp,w8a8,w4a8") -> {{name=, w=, a=, g=}, ...}, highest
-- first. Each item is anything P.parse accepts (a group size where
-- precision.lua has them: "w4a8g32").
function S.parse_choices(s)
  local out, seen = {}, {}
  for _, it in ipairs(S.split(s)) do
    local ok, w, a, g = pcall(P.parse, it)
    if not ok then fail("--choices: %s", tostring(w):gsub("^precision: ", "")) end
    local c = {w = w, a = a, g = g}
    c.name = choice_name(w, a, g)
    if seen[c.name] then fail("--choices: '%s' given twice", c.name) end
    seen[c.name] = true
    out[#out + 1] = c
  end
  if #out < 2 then fail("--choices=%s: expected at least two precisions (the highest is the base)", tostring(s)) end
  table.sort(out, higher)
  return out
end

-- The distinct (w, a) pairs of a set of configurations (the pairs a LoRA
-- bank trained on them has adapters for), highest first, as a choices string.
function S.trained_pairs(cfgs)
  local seen, list = {}, {}
  for _, c in ipairs(cfgs) do
    for _, l in ipairs(c.layers) do
      local n = choice_name(l.w, l.a, l.g)
      if not seen[n] then seen[n] = true; list[#list + 1] = {name = n, w = l.w, a = l.a, g = l.g} end
    end
  end
  table.sort(list, higher)
  local names = {}
  for i, c in ipairs(list) do names[i] = c.name end
  return table.concat(names, ",")
end

-- S.with_groups(choices_s, groups_s) -> choices_s with, for each choice of
-- at most 4 weight bits and no group, the same choice again with a scale
-- per g input channels for each g of groups_s ("32,64"; "" adds none): the
-- group-wise option the search may take where per-channel 4 bits is too
-- coarse (it runs on the adapter of its (w, a)). Bad groups raise as
-- --groups.
function S.with_groups(choices_s, groups_s)
  local gs = S.split(groups_s or "")
  if #gs == 0 then return choices_s end
  local names, seen = S.split(choices_s), {}
  for _, n in ipairs(names) do seen[n] = true end
  local out = {}
  for _, n in ipairs(names) do
    out[#out + 1] = n
    local ok, w, a, g = pcall(P.parse, n)
    if ok and not g and w <= 4 then
      for _, gv in ipairs(gs) do
        local okg, e, _, g2 = pcall(P.parse, string.format("w%da%dg%s", w, a, gv))
        if not okg then fail("--groups: '%s': %s", gv, tostring(e):gsub("^precision: ", "")) end
        local c = choice_name(w, a, g2)
        if not seen[c] then seen[c] = true; out[#out + 1] = c end
      end
    end
  end
  return table.concat(out, ",")
end

-- ---------------------------------------------------------------- units

-- S.units(layers) -> {block = {[i] = index or nil}, kind = {[i] = short},
-- blocks = {indices ascending}, kinds = {shorts in block order}, grid =
-- {[block] = {[kind] = i}}}. Names <prefix>.<index>.<role>; the kind is
-- the role's last component without "_proj" (q, k, v, o, gate, up, down),
-- or the whole role where that would be ambiguous (GPT-2's attn.c_proj
-- and mlp.c_proj).
function S.units(layers)
  local u = {block = {}, kind = {}, role = {}, blocks = {}, kinds = {}, grid = {}}
  local roles, short_of, by_short = {}, {}, {}
  for i, l in ipairs(layers) do
    local _, idx, role = l.name:match("^(.-)%.?(%d+)%.(.+)$")
    if idx then
      u.block[i] = tonumber(idx)
      u.role[i] = role
      if not short_of[role] then
        roles[#roles + 1] = role
        local s = role:match("([^.]+)$"):gsub("_proj$", "")
        short_of[role] = s
        by_short[s] = (by_short[s] or 0) + 1
      end
    end
  end
  for _, r in ipairs(roles) do
    if by_short[short_of[r]] > 1 then short_of[r] = r end
    u.kinds[#u.kinds + 1] = short_of[r]
  end
  local seen = {}
  for i in ipairs(layers) do
    if u.block[i] then
      local b, k = u.block[i], short_of[u.role[i]]
      u.kind[i] = k
      if not seen[b] then seen[b] = true; u.blocks[#u.blocks + 1] = b end
      u.grid[b] = u.grid[b] or {}
      u.grid[b][k] = i
    end
  end
  table.sort(u.blocks)
  return u
end

-- ---------------------------------------------------------------- the problem

-- One layer's cost at a choice, in the metric (precision.lua's cost model,
-- so a group size is counted as precision.lua counts it).
local function layer_cost(l, ch, metric)
  local c = P.cost({name = "?", layers = {{name = l.name, w = ch.w, a = ch.a, g = ch.g}}}, {l}, 1)
  return metric == "bitops" and c.bitops or c.bytes, metric == "bitops" and c.fp_bitops or c.fp_bytes
end

-- S.problem(target, choices, metric) -> {layers=, choices=, metric=, n=,
-- cost = {[i] = {[c] = cost}}, fp_total=, units=}. target: a model or a
-- layer list {name=, in_features=, out_features=}.
function S.problem(target, choices, metric)
  local list = target
  if type(target) == "userdata" or (type(target) == "table" and target.linears) then list = target:linears() end
  one_of("metric", metric, S.METRICS)
  local prob = {layers = list, choices = choices, metric = metric, n = #list, cost = {}, fp_total = 0}
  for i, l in ipairs(list) do
    prob.cost[i] = {}
    local fp
    for c, ch in ipairs(choices) do prob.cost[i][c], fp = layer_cost(l, ch, metric) end
    prob.fp_total = prob.fp_total + fp
  end
  prob.units = S.units(list)
  return prob
end

function S.cost(prob, pick)
  local s = 0
  for i = 1, prob.n do s = s + prob.cost[i][pick[i]] end
  return s
end

function S.ratio(prob, pick) return S.cost(prob, pick) / prob.fp_total end

function S.budget_abs(prob, ratio) return ratio * prob.fp_total end

function S.uniform(prob, c)
  local p = {}
  for i = 1, prob.n do p[i] = c end
  return p
end

-- The cheapest reachable configuration: each layer at its cheapest choice
-- (ties to the higher precision).
function S.cheapest(prob)
  local p = {}
  for i = 1, prob.n do
    local best = 1
    for c = 2, #prob.choices do if prob.cost[i][c] < prob.cost[i][best] then best = c end end
    p[i] = best
  end
  return p
end

-- Refuse a budget below the cheapest reachable configuration, naming it.
function S.check_budget(prob, ratio)
  local lo = S.cheapest(prob)
  local lr = S.ratio(prob, lo)
  if S.budget_abs(prob, ratio) < S.cost(prob, lo) then
    local names, seen = {}, {}
    for i = 1, prob.n do
      local n = prob.choices[lo[i]].name
      if not seen[n] then seen[n] = true; names[#names + 1] = n end
    end
    fail("--budget=%g is below the cheapest reachable configuration (every layer at its cheapest choice, %s: "
      .. "%.4f of fp %s)", ratio, table.concat(names, "/"), lr, prob.metric)
  end
end

-- pick -> a precision.lua configuration {name=, layers = {{name=, w=, a=[, g=]}, ...}}
function S.config(prob, pick, name)
  local layers = {}
  for i, l in ipairs(prob.layers) do
    local ch = prob.choices[pick[i]]
    if not ch then fail("config '%s': layer %s has no choice %s", tostring(name), l.name, tostring(pick[i])) end
    layers[i] = {name = l.name, w = ch.w, a = ch.a, g = ch.g}
  end
  return {name = name, layers = layers}
end

-- cfg -> pick, or nil and the first layer whose precision is not a choice.
function S.pick_of(prob, cfg)
  local idx = {}
  for c, ch in ipairs(prob.choices) do idx[ch.name] = c end
  local p = {}
  for i, l in ipairs(cfg.layers) do
    p[i] = idx[choice_name(l.w, l.a, l.g)]
    if not p[i] then return nil, l.name end
  end
  return p
end

-- ---------------------------------------------------------------- adapters

-- S.adapters(train_cfgs) -> function(cfg) -> run configuration with every
-- layer's adapter: the slot the bank trained for that layer's (w, a), or
-- the nearest one (the smallest |w - w'| + |a - a'|, plus 1/2 for another
-- weight group; ties to the higher w x a), as cpt.lua maps its evaluation
-- configurations. A layer may name
-- the pair whose adapter it wants (aw, aa: the sensitivity analysis'
-- weights-only and activations-only variants keep the choice's adapter).
-- train_cfgs nil or empty: no bank, adapter -1 everywhere.
-- The second result counts the layers mapped to a nearest pair.
function S.adapters(train_cfgs)
  local have = train_cfgs and #train_cfgs > 0
  return function(cfg)
    local run, nearest = {name = cfg.name, layers = {}}, 0
    for i, l in ipairs(cfg.layers) do
      local ad = -1
      if have then
        local w, a, g = l.aw or l.w, l.aa or l.a, l.aw and l.ag or l.g
        local bd, bp
        for _, c in ipairs(train_cfgs) do
          local t = c.layers[i]
          local d = math.abs(t.w - w) + math.abs(t.a - a) + (t.g == g and 0 or 0.5) -- the same group first
          if not bd or d < bd or (d == bd and t.w * t.a > bp) then ad, bd, bp = t.adapter, d, t.w * t.a end
        end
        if bd > 0 then nearest = nearest + 1 end
      end
      run.layers[i] = {name = l.name, w = l.w, a = l.a, g = l.g, adapter = ad}
    end
    return run, nearest
  end
end

-- The canonical string of a run configuration: runs of equal layers
-- "<w><a>[g]:<adapter>*<count>" in layer order. Two configurations that
-- run the same have the same key.
function S.key(run)
  local parts, prev, count = {}, nil, 0
  for _, l in ipairs(run.layers) do
    local t = choice_name(l.w, l.a, l.g) .. ":" .. tostring(l.adapter or -1)
    if t == prev then
      count = count + 1
    else
      if prev then parts[#parts + 1] = prev .. "*" .. count end
      prev, count = t, 1
    end
  end
  if prev then parts[#parts + 1] = prev .. "*" .. count end
  return table.concat(parts, ",")
end

-- FNV-1a 64 of a string, as 16 hex digits (short keys for long strings).
function S.fnv(s)
  local h = -3750763034362895579 -- 0xcbf29ce484222325
  for i = 1, #s do
    h = h ~ s:byte(i)
    h = h * 1099511628211
  end
  return string.format("%016x", h)
end

-- ---------------------------------------------------------------- the proxy

-- The proxy of a configuration on calibration sequences (sp_data.lua's
-- format: ids, targets = -1 except on the answer positions), model:proxy
-- (core/train/proxy.c, one forward pass per sequence): the mean negative
-- log-likelihood of the gold answer tokens under teacher forcing, and the
-- mean KL(p_ref || q) from the reference's answer-token distribution p_ref
-- to this configuration's q; each a mean over examples of the example's
-- mean over its answer tokens.
--
-- The reference is the model's CURRENT configuration (the caller sets the
-- base: fp with its tuned adapter for sp.lua's bank), not the untuned fp
-- model: the tuned bank answers in short spans, the untuned model in
-- sentences, and a distance to the latter would not measure what
-- quantization does to the tuned answers. opts: batch, topk (model:proxy_ref's).
function S.proxy_ref(model, seqs, opts)
  opts = opts or {}
  return model:proxy_ref(seqs, {batch = opts.batch or 8, topk = opts.topk or 0, current = true})
end

function S.proxy(model, seqs, opts)
  return model:proxy(seqs, opts)
end

-- ---------------------------------------------------------------- progress

local function hms(s)
  if not s or s ~= s or s < 0 or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, s // 60 % 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return s .. "s"
end
S.hms = hms

-- A progress printer for a loop of `total` evaluations: a line on stderr
-- at most every `every` seconds (and at the end): label n/total, seconds
-- per evaluation, ETA. Returns function(done, extra).
function S.progress(label, total, enabled, every)
  local t0, last = qr.now(), -math.huge
  every = every or 5
  local finished = false
  return function(done, extra)
    if not enabled or finished then return end
    local now = qr.now()
    if done < total and now - last < every then return end
    last, finished = now, done >= total
    local el = now - t0
    local per = done > 0 and el / done or 0
    io.stderr:write(string.format("search: %s %d/%d  %.2fs/eval  elapsed %s  eta %s%s\n", label, done, total, per,
      hms(el), hms(per * (total - done)), extra and ("  " .. extra) or ""))
    io.stderr:flush()
  end
end

-- ---------------------------------------------------------------- the scorer

-- S.scorer{model=, adapters= (S.adapters(...)), base_run=, slices =
-- {[name] = {id=, data=, kind = "proxy" | "f1"}}, cache=, key=, score=,
-- f1 = function(model, data) -> {f1=, em=, n=, seconds=}, batch=, cost =
-- function(cfg) -> {bitops_ratio=, bytes_ratio=}}
--
-- sc:get(cfg, slice, label [, cache]) -> entry {nll=, kl=, n=, tokens=,
-- seconds=, f1=, bitops_ratio=, bytes_ratio=, label=}: from the cache when
-- there, else measured (the model runs cfg) and cached; the second result
-- is model:proxy's (skipped_blocks, blocks) when it was measured from a
-- block-input cache (sc:block_cache; the scores are bit-identical to the
-- uncached ones). The cache file (JSON,
-- rewritten atomically by qr.json.write at least every `save_every`
-- seconds and by sc:flush()) is keyed by `key` (model, adapters, prompts,
-- the reference's topk): another key starts it empty. Its entries are
-- keyed "<slice id>|<S.key of the run configuration>".
-- sc:value(entry) -> the score (lower is better).
-- sc:block_cache(cfg, slice [, max_mb]) -> a qr.ProxyCache of the slice
-- under cfg's run configuration (model:proxy_cache, the scorer's batch),
-- or nil and why: an f1 slice, or a cache larger than max_mb.
function S.scorer(a)
  local sc = {computed = 0, hits = 0, seconds = 0, slices = a.slices, score = a.score or "kl"}
  local doc = a.cache and qr.json.read(a.cache)
  if not doc or doc.key ~= a.key or type(doc.entries) ~= "table" then doc = {key = a.key, entries = {}} end
  sc.doc = doc
  local refs, last_save = {}, qr.now()
  local dirty = false
  function sc:flush()
    if a.cache and dirty then
      assert(qr.json.write(a.cache, doc))
      dirty = false
    end
    last_save = qr.now()
  end
  local function slot(cfg, slice)
    local s = a.slices[slice]
    if not s then fail("no slice named '%s'", tostring(slice)) end
    local run = a.adapters(cfg)
    return s, run, s.id .. "|" .. S.key(run)
  end
  function sc:run_of(cfg) return (a.adapters(cfg)) end
  function sc:has(cfg, slice)
    local _, _, k = slot(cfg, slice)
    return doc.entries[k] ~= nil
  end
  function sc:lookup(cfg, slice)
    local _, _, k = slot(cfg, slice)
    return doc.entries[k]
  end
  function sc:block_cache(cfg, slice, max_mb)
    local s, run = slot(cfg, slice)
    if s.kind == "f1" then return nil, "slice '" .. slice .. "' is scored by F1 (generation), not the proxy" end
    a.model:precision(run)
    local ok, c = pcall(function() return a.model:proxy_cache(s.data, {batch = a.batch or 8, max_mb = max_mb}) end)
    if ok then return c end
    if not tostring(c):find("allowed (max_mb)", 1, true) then error(c, 0) end -- only its size is a reason to go without
    return nil, tostring(c)
  end
  function sc:get(cfg, slice, label, cache)
    local s, run, k = slot(cfg, slice)
    local e = doc.entries[k]
    if e then
      sc.hits = sc.hits + 1
      return e
    end
    if s.kind ~= "f1" and not refs[slice] then -- the reference, once per slice (not counted in seconds)
      a.model:precision(a.base_run)
      refs[slice] = S.proxy_ref(a.model, s.data, {batch = a.batch or 8, topk = a.topk})
    end
    local t0 = qr.now()
    local from
    if s.kind == "f1" then
      a.model:precision(run)
      local r = a.f1(a.model, s.data)
      e = {f1 = r.f1, em = r.em, n = r.n}
    else
      a.model:precision(run)
      local r = S.proxy(a.model, s.data, {ref = refs[slice], batch = a.batch or 8, cache = cache})
      e = {nll = r.nll, kl = r.kl, n = r.n, tokens = r.tokens}
      if cache then from = {skipped_blocks = r.skipped_blocks, blocks = r.blocks} end
    end
    e.seconds = qr.now() - t0
    e.label = label
    if a.cost then
      local c = a.cost(cfg)
      e.bitops_ratio, e.bytes_ratio = c.bitops_ratio, c.bytes_ratio
    end
    -- as a rerun will read it back (qr.json keeps ~15 significant digits),
    -- so that a search decides the same whether its scores are fresh or cached
    e = qr.json.decode(qr.json.encode(e))
    doc.entries[k] = e
    dirty = true
    sc.computed = sc.computed + 1
    sc.seconds = sc.seconds + e.seconds
    if qr.now() - last_save >= (a.save_every or 10) then sc:flush() end
    return e, from
  end
  function sc:value(e)
    if sc.score == "f1" then return 100 - e.f1 end
    return e[sc.score]
  end
  -- every entry of a slice: {key=, entry=}
  function sc:entries(slice)
    local id, out = a.slices[slice].id .. "|", {}
    for k, e in pairs(doc.entries) do
      if k:sub(1, #id) == id then out[#out + 1] = {key = k:sub(#id + 1), entry = e} end
    end
    table.sort(out, function(x, y) return x.key < y.key end)
    return out
  end
  return sc
end

-- ---------------------------------------------------------------- sensitivity

-- The jobs of the sensitivity analysis: for each unit (one layer, one
-- kind, one block, as o.units asks), each choice below the base and each
-- variant (both sides lowered; with o.separate[unit kind], also weights
-- only and activations only, keeping the lowered choice's adapter; a
-- variant identical to the base or to "both" is left out), the base
-- configuration with the unit's layers lowered.
function S.sens_jobs(prob, o)
  local u, base = prob.units, prob.choices[1]
  local jobs = {}
  local function add(kind, id, layers)
    for c = 2, #prob.choices do
      local ch = prob.choices[c]
      local variants = {"both"}
      if o.separate and o.separate[kind] then
        if (ch.w ~= base.w or ch.g ~= base.g) and ch.a ~= base.a then
          variants[#variants + 1] = "w"
          variants[#variants + 1] = "a"
        end
      end
      for _, v in ipairs(variants) do
        local cfg = S.config(prob, S.uniform(prob, 1), nil)
        for _, i in ipairs(layers) do
          local l = cfg.layers[i]
          if v == "both" then
            l.w, l.a, l.g = ch.w, ch.a, ch.g
          elseif v == "w" then
            l.w, l.g, l.aw, l.aa, l.ag = ch.w, ch.g, ch.w, ch.a, ch.g
          else
            l.a, l.aw, l.aa, l.ag = ch.a, ch.w, ch.a, ch.g
          end
        end
        cfg.name = string.format("sens-%s-%s-%s-%s", kind, tostring(id), ch.name, v)
        jobs[#jobs + 1] = {unit = kind, id = id, choice = c, variant = v, cfg = cfg, label = cfg.name}
      end
    end
  end
  if o.units.layers then
    for i = 1, prob.n do add("layers", i, {i}) end
  end
  if o.units.kinds then
    for _, k in ipairs(u.kinds) do
      local ls = {}
      for i = 1, prob.n do if u.kind[i] == k then ls[#ls + 1] = i end end
      add("kinds", k, ls)
    end
  end
  if o.units.blocks then
    for _, b in ipairs(u.blocks) do
      local ls = {}
      for i = 1, prob.n do if u.block[i] == b then ls[#ls + 1] = i end end
      add("blocks", b, ls)
    end
  end
  return jobs
end

-- The blocks a job need not recompute from a block-input cache of the
-- base: those before the first block with a layer whose run differs from
-- the base's (bits, group or adapter), by the layer names' block indices
-- (prob.units); layers outside any block count as block 0. The C side
-- decides for itself (core/train/proxy.c); this is for deciding whether a
-- cache is worth building and for saying what it should save.
local function first_lowered_block(prob, base_run, run)
  local first = math.huge
  for i, l in ipairs(run.layers) do
    local b = base_run.layers[i]
    if l.w ~= b.w or l.a ~= b.a or l.g ~= b.g or l.adapter ~= b.adapter then
      first = math.min(first, prob.units.block[i] or 0)
    end
  end
  return first
end

-- S.sensitivity(prob, sc, o) -> the table (JSON-ready) and loss[i][c]:
-- every job of S.sens_jobs scored on o.slice; a sensitivity is score(job)
-- - score(base), for the score and for nll/kl/f1 as measured.
-- o: units, separate (sets), slice, progress (boolean), say, block_cache
-- (default true; false: every job runs the whole forward), cache_mb (the
-- bound on the block-input cache, model:proxy_cache's max_mb).
--
-- Every job lowers a few layers below the base, so on a proxy slice the
-- base's input of every block is kept (sc:block_cache, once) and each job
-- runs from the first block it changes: the same scores to the last bit
-- (model:proxy's cache), a layer job in block b skipping b blocks. Without
-- any job to gain (only kinds lowered, or nothing to measure) or when the
-- cache would pass cache_mb (said once), the jobs run the whole forward.
function S.sensitivity(prob, sc, o)
  local base_cfg = S.config(prob, S.uniform(prob, 1), "base")
  local base = sc:get(base_cfg, o.slice, "base")
  local jobs = S.sens_jobs(prob, o)
  local pending, gain = 0, 0
  for _, j in ipairs(jobs) do if not sc:has(j.cfg, o.slice) then pending = pending + 1 end end
  if o.say then
    o.say(string.format("sensitivity: %d configurations (%d to measure, %d in the cache) on slice '%s'", #jobs, pending,
      #jobs - pending, o.slice))
  end
  local cache, cache_s = nil, 0
  if o.block_cache ~= false and pending > 0 and sc.slices[o.slice] and sc.slices[o.slice].kind ~= "f1" then
    local base_run = sc:run_of(base_cfg)
    for _, j in ipairs(jobs) do
      if not sc:has(j.cfg, o.slice) then
        local f = first_lowered_block(prob, base_run, sc:run_of(j.cfg))
        if f ~= math.huge and f > 0 then gain = gain + 1 end
      end
    end
    if gain > 0 then
      local t0 = qr.now()
      local why
      cache, why = sc:block_cache(base_cfg, o.slice, o.cache_mb)
      cache_s = qr.now() - t0
      if o.say then
        if cache then
          o.say(string.format("sensitivity: block-input cache of the base, %.1f MB in %.1fs (%d of %d configurations "
            .. "to measure start after block 0)", cache:bytes() / 1e6, cache_s, gain, pending))
        else
          o.say("sensitivity: no block-input cache, every configuration runs the whole forward: " .. why)
        end
      end
    elseif o.say then
      o.say("sensitivity: no block-input cache: every configuration to measure changes block 0")
    end
  end
  local skipped, blocks, eval_s = 0, 0, 0
  local function cache_note()
    if not cache or blocks == 0 then return nil end
    return string.format("%.0f%% of blocks from the cache", 100 * skipped / blocks)
  end
  local prog = S.progress("sensitivity", pending, o.progress)
  local done = 0
  local function delta(e)
    local d = {value = sc:value(e) - sc:value(base)}
    for _, k in ipairs{"nll", "kl", "f1"} do if e[k] and base[k] then d[k] = e[k] - base[k] end end
    return d
  end
  local t = {slice = o.slice, score = sc.score, choices = {}, variants = {both = "weights and activations",
    w = "weights only (the lowered choice's adapter)", a = "activations only (the lowered choice's adapter)"},
    base = {name = prob.choices[1].name, nll = base.nll, kl = base.kl, f1 = base.f1, value = sc:value(base)},
    layers = {}, kinds = {}, blocks = {}}
  for c = 2, #prob.choices do t.choices[#t.choices + 1] = prob.choices[c].name end
  local rows = {layers = {}, kinds = {}, blocks = {}}
  local function row(kind, id)
    local r = rows[kind][id]
    if not r then
      r = {d = {}}
      if kind == "layers" then
        local l = prob.layers[id]
        r.name, r.index, r.block, r.kind = l.name, id, prob.units.block[id], prob.units.kind[id]
        r.params = l.in_features * l.out_features
      elseif kind == "kinds" then
        r.kind = id
      else
        r.block = id
      end
      rows[kind][id] = r
      t[kind][#t[kind] + 1] = r
    end
    return r
  end
  for _, j in ipairs(jobs) do
    local cached = sc:has(j.cfg, o.slice)
    local e, from = sc:get(j.cfg, o.slice, j.label, cache)
    if not cached then
      done = done + 1
      eval_s = eval_s + (e.seconds or 0)
      if from then skipped, blocks = skipped + from.skipped_blocks, blocks + from.blocks end
      prog(done, cache_note())
    end
    local r = row(j.unit, j.id)
    local cn = prob.choices[j.choice].name
    r.d[cn] = r.d[cn] or {}
    r.d[cn][j.variant] = delta(e)
  end
  sc:flush()
  if cache and o.say then
    -- what the skipped blocks would have cost, at this run's seconds per block
    local per_block = blocks > skipped and eval_s / (blocks - skipped) or 0
    o.say(string.format("sensitivity: %d configurations measured in %s from the block-input cache: %d of %d blocks "
      .. "skipped (%.0f%%), about %s saved (cache built in %.1fs)", done, hms(eval_s), skipped, blocks,
      blocks > 0 and 100 * skipped / blocks or 0, hms(per_block * skipped - cache_s), cache_s))
  end
  if cache then cache:close() end
  local loss
  if o.units.layers then
    loss = {}
    for i = 1, prob.n do
      loss[i] = {0}
      for c = 2, #prob.choices do loss[i][c] = rows.layers[i].d[prob.choices[c].name].both.value end
    end
  end
  return t, loss
end

-- ---------------------------------------------------------------- greedy

-- S.greedy(prob, loss, budget) -> pick, info. Start at the base (every
-- layer at the highest choice) and, while the cost is over the budget,
-- lower the layer whose move has the smallest sensitivity increase per
-- unit of cost saved, (loss[i][c'] - loss[i][c]) / (cost[i][c] -
-- cost[i][c']), over every cheaper choice c' of every layer (ties: the
-- lower layer index, then the cheaper choice). Then fill: while some layer
-- can be raised within the budget and lowers the summed sensitivity, raise
-- the one with the largest decrease per unit of cost added. Deterministic.
-- Never returns a pick over the budget (raises if none exists).
function S.greedy(prob, loss, budget)
  local pick = S.uniform(prob, 1)
  local cost = S.cost(prob, pick)
  local moves, fills = 0, 0
  local nc = #prob.choices
  while cost > budget do
    local bi, bc, br
    for i = 1, prob.n do
      local cc = prob.cost[i][pick[i]]
      for c = 1, nc do
        local saved = cc - prob.cost[i][c]
        if saved > 0 then
          local r = (loss[i][c] - loss[i][pick[i]]) / saved
          if not br or r < br or (r == br and (i < bi or (i == bi and prob.cost[i][c] < prob.cost[bi][bc]))) then
            bi, bc, br = i, c, r
          end
        end
      end
    end
    if not bi then fail("greedy: no configuration within the budget %.6g (%s)", budget, prob.metric) end
    cost = cost - prob.cost[bi][pick[bi]] + prob.cost[bi][bc]
    pick[bi] = bc
    moves = moves + 1
  end
  while true do
    local bi, bc, br
    for i = 1, prob.n do
      local cc = prob.cost[i][pick[i]]
      for c = 1, nc do
        local added = prob.cost[i][c] - cc
        local gain = loss[i][pick[i]] - loss[i][c]
        if added > 0 and gain > 0 and cost + added <= budget then
          local r = gain / added
          if not br or r > br or (r == br and i < bi) then bi, bc, br = i, c, r end
        end
      end
    end
    if not bi then break end
    cost = cost - prob.cost[bi][pick[bi]] + prob.cost[bi][bc]
    pick[bi] = bc
    fills = fills + 1
  end
  assert(S.cost(prob, pick) <= budget, "greedy: over budget")
  return pick, {moves = moves, fills = fills, predicted = S.sum_loss(loss, pick)}
end

function S.sum_loss(loss, pick)
  local s = 0
  for i, c in ipairs(pick) do s = s + loss[i][c] end
  return s
end

-- ---------------------------------------------------------------- the ILP

-- S.ilp(prob, loss, budget) -> pick, info: HAWQ-V3's integer linear
-- program over per-layer choices with additive sensitivities,
--   minimize sum_i sum_c loss[i][c] x_ic
--   s.t.     sum_i sum_c cost[i][c] x_ic <= budget,  sum_c x_ic = 1,  x binary
-- solved by GLPK (qr.ilp, a multiple-choice knapsack).
function S.ilp(prob, loss, budget)
  if type(qr.ilp) ~= "function" then fail("qr.ilp is not available in this build") end
  local groups = {}
  for i = 1, prob.n do
    local g = {}
    for c = 1, #prob.choices do g[c] = {cost = prob.cost[i][c], loss = loss[i][c]} end
    groups[i] = g
  end
  local r = qr.ilp{groups = groups, budget = budget}
  if type(r) ~= "table" or type(r.choice) ~= "table" or #r.choice ~= prob.n then
    fail("ilp: the solver gave no solution (status %s)", tostring(type(r) == "table" and r.status or r))
  end
  local pick = {}
  for i = 1, prob.n do pick[i] = math.tointeger(r.choice[i]) end
  if S.cost(prob, pick) > budget then
    fail("ilp: the solver's configuration costs %.6g, over the budget %.6g", S.cost(prob, pick), budget)
  end
  return pick, {status = r.status, predicted = S.sum_loss(loss, pick), solver_loss = r.loss}
end

-- The exact optimum by enumeration (tests: tiny problems only): the
-- lowest summed loss within the budget, ties to the lower cost.
function S.brute(prob, loss, budget)
  local nc, n = #prob.choices, prob.n
  local pick, best, bl, bc = {}, nil, nil, nil
  local function rec(i, l, c)
    if c > budget then return end
    if i > n then
      if not bl or l < bl - 1e-12 or (math.abs(l - bl) <= 1e-12 and c < bc) then
        best, bl, bc = table.move(pick, 1, n, 1, {}), l, c
      end
      return
    end
    for k = 1, nc do
      pick[i] = k
      rec(i + 1, l + loss[i][k], c + prob.cost[i][k])
    end
  end
  rec(1, 0, 0)
  return best, bl
end

-- ---------------------------------------------------------------- evolution

-- A deterministic generator (xorshift64*), independent of math.random.
function S.rng(seed)
  local s = (math.tointeger(seed) or 1) * -7046029254386353131 + 7640891576956012809 -- golden-ratio mixing
  if s == 0 then s = 1 end
  local r = {}
  function r.next()
    s = s ~ (s >> 12)
    s = s ~ (s << 25)
    s = s ~ (s >> 27)
    local x = s * 2685821657736338717
    return ((x >> 11) & 0x1FFFFFFFFFFFFF) / 9007199254740992.0
  end
  function r.int(n) return 1 + math.floor(r.next() * n) end
  return r
end

-- Lower layers one step (to the next cheaper choice) until the pick is
-- within the budget. Each step draws `k` candidate layers at random (those
-- that can still be lowered) and, with sensitivities (loss[i][c]), lowers
-- the one whose step costs the least sensitivity per unit of cost saved;
-- without, the first drawn.
local function repair(prob, pick, budget, rng, loss, k)
  local cost = S.cost(prob, pick)
  k = k or 4
  local function next_down(i)
    local cur, nxt = prob.cost[i][pick[i]], nil
    for c = 1, #prob.choices do
      local v = prob.cost[i][c]
      if v < cur and (not nxt or v > prob.cost[i][nxt]) then nxt = c end
    end
    return nxt
  end
  while cost > budget do
    local cand = {}
    for i = 1, prob.n do
      if prob.cost[i][pick[i]] > prob.cost[i][S.cheapest_choice(prob, i)] then cand[#cand + 1] = i end
    end
    if #cand == 0 then fail("evo: no configuration within the budget %.6g", budget) end
    local bi, bc, br
    for t = 1, loss and k or 1 do
      local i = cand[rng.int(#cand)]
      local c = next_down(i)
      local r = loss and (loss[i][c] - loss[i][pick[i]]) / (prob.cost[i][pick[i]] - prob.cost[i][c]) or 0
      if t == 1 or r < br then bi, bc, br = i, c, r end
    end
    cost = cost - prob.cost[bi][pick[bi]] + prob.cost[bi][bc]
    pick[bi] = bc
  end
  return pick
end

function S.cheapest_choice(prob, i)
  local best = 1
  for c = 2, #prob.choices do if prob.cost[i][c] < prob.cost[i][best] then best = c end end
  return best
end

local function pkey(pick) return table.concat(pick, ",") end

-- S.evo(prob, budget, fit, o) -> best pick, its score, info.
-- fit(pick) -> score (lower is better; the real proxy of the whole
-- configuration, cached by the caller). o: pop (16), gens (10), elite (2),
-- tournament (3), mutation (expected layers changed per child, 2), seed
-- (1), seeds (picks to start from, e.g. greedy's and the ILP's), loss
-- (per-layer sensitivities, to guide the repair; optional), progress.
-- Population: the seeds, mutated copies of them, random configurations;
-- every member repaired into the budget. Each generation keeps the elite
-- and fills the rest with children: two parents by tournament, block-wise
-- uniform crossover (each block's layers from one parent), mutation (each
-- layer to a random other choice with probability mutation / n), repair
-- (layers lowered one step at a time until it fits: of 4 drawn at random,
-- the one with the least sensitivity per cost saved).
-- A child already seen is mutated again (up to 10 times). Only
-- configurations within the budget are ever scored or returned.
-- Deterministic under the seed (and a deterministic fit).
function S.evo(prob, budget, fit, o)
  o = o or {}
  local popn, gens, elite = o.pop or 16, o.gens or 10, o.elite or 2
  local tour, mut = o.tournament or 3, (o.mutation or 2) / prob.n
  local rng = S.rng(o.seed or 1)
  local nc = #prob.choices
  local seen, evals = {}, 0
  local best, bv
  local function score(p)
    local k = pkey(p)
    if seen[k] == nil then
      assert(S.cost(prob, p) <= budget, "evo: a configuration over the budget reached the scorer")
      seen[k] = fit(p)
      evals = evals + 1
      if not bv or seen[k] < bv then best, bv = table.move(p, 1, prob.n, 1, {}), seen[k] end
    end
    return seen[k]
  end
  local function mutate(p)
    for i = 1, prob.n do
      if rng.next() < mut then
        local c = rng.int(nc - 1)
        if c >= p[i] then c = c + 1 end
        p[i] = c
      end
    end
    return p
  end
  local function novel(p)
    for _ = 1, 10 do
      if seen[pkey(p)] == nil then break end
      p = repair(prob, mutate(p), budget, rng, o.loss)
    end
    return p
  end
  -- the first population
  local pop, inpop = {}, {}
  local function add(p)
    local k = pkey(p)
    if not inpop[k] then inpop[k] = true; pop[#pop + 1] = p end
  end
  for _, s in ipairs(o.seeds or {}) do
    if #pop < popn then add(repair(prob, table.move(s, 1, prob.n, 1, {}), budget, rng, o.loss)) end
  end
  local nseeds = #pop
  local tries = 0
  while #pop < popn and tries < 50 * popn do
    tries = tries + 1
    local p
    if nseeds > 0 and #pop < popn // 2 + nseeds // 2 then
      p = mutate(table.move(pop[rng.int(nseeds)], 1, prob.n, 1, {}))
    else
      p = {}
      for i = 1, prob.n do p[i] = rng.int(nc) end
    end
    add(repair(prob, p, budget, rng, o.loss))
  end
  local total = #pop + gens * math.max(0, #pop - elite)
  local prog = S.progress("evo", total, o.progress)
  local history = {}
  local function rank()
    for _, p in ipairs(pop) do score(p); prog(evals) end
    table.sort(pop, function(x, y)
      local a, b = seen[pkey(x)], seen[pkey(y)]
      if a ~= b then return a < b end
      return pkey(x) < pkey(y)
    end)
    history[#history + 1] = {best = bv, evals = evals}
  end
  rank()
  local blocks = prob.units and #prob.units.blocks > 0 and prob.units or nil
  local function pick_parent()
    local b = rng.int(#pop)
    for _ = 2, tour do b = math.min(b, rng.int(#pop)) end -- pop is sorted: the lower index wins
    return pop[b]
  end
  for _ = 1, gens do
    local nxt, innext = {}, {}
    for k = 1, math.min(elite, #pop) do nxt[k] = pop[k]; innext[pkey(pop[k])] = true end
    local guard = 0
    while #nxt < #pop and guard < 20 * #pop do
      guard = guard + 1
      local x, y = pick_parent(), pick_parent()
      local child = {}
      if blocks then
        local from = {}
        for _, b in ipairs(blocks.blocks) do from[b] = rng.next() < 0.5 end
        for i = 1, prob.n do
          local b = blocks.block[i]
          local take_x = b ~= nil and from[b] or (b == nil and rng.next() < 0.5)
          child[i] = take_x and x[i] or y[i]
        end
      else
        for i = 1, prob.n do child[i] = rng.next() < 0.5 and x[i] or y[i] end
      end
      child = novel(repair(prob, mutate(child), budget, rng, o.loss))
      local k = pkey(child)
      if not innext[k] then innext[k] = true; nxt[#nxt + 1] = child end
    end
    pop = nxt
    rank()
  end
  prog(total)
  return best, bv, {evals = evals, generations = gens, population = #pop, history = history}
end

-- ---------------------------------------------------------------- statistics

-- Ranks 1..n, ties given the average of their ranks.
function S.ranks(v)
  local idx = {}
  for i = 1, #v do idx[i] = i end
  table.sort(idx, function(a, b) if v[a] ~= v[b] then return v[a] < v[b] end return a < b end)
  local r, i = {}, 1
  while i <= #idx do
    local j = i
    while j < #idx and v[idx[j + 1]] == v[idx[i]] do j = j + 1 end
    local avg = (i + j) / 2
    for k = i, j do r[idx[k]] = avg end
    i = j + 1
  end
  return r
end

-- Spearman's rank correlation (ties averaged): Pearson's r of the ranks.
-- nil when fewer than 2 values or a constant series.
function S.spearman(x, y)
  assert(#x == #y, "spearman: two series of one length expected")
  local n = #x
  if n < 2 then return nil end
  local rx, ry = S.ranks(x), S.ranks(y)
  local mx, my = 0, 0
  for i = 1, n do mx, my = mx + rx[i], my + ry[i] end
  mx, my = mx / n, my / n
  local sxy, sxx, syy = 0, 0, 0
  for i = 1, n do
    local dx, dy = rx[i] - mx, ry[i] - my
    sxy, sxx, syy = sxy + dx * dy, sxx + dx * dx, syy + dy * dy
  end
  if sxx == 0 or syy == 0 then return nil end
  return sxy / math.sqrt(sxx * syy)
end

-- The points not dominated in (x, y), both to minimize, sorted by x.
-- points: array; xf, yf: functions point -> number.
function S.pareto(points, xf, yf)
  local idx = {}
  for i = 1, #points do idx[i] = i end
  table.sort(idx, function(a, b)
    local xa, xb = xf(points[a]), xf(points[b])
    if xa ~= xb then return xa < xb end
    local ya, yb = yf(points[a]), yf(points[b])
    if ya ~= yb then return ya < yb end
    return a < b
  end)
  local front, by = {}, math.huge
  for _, i in ipairs(idx) do
    local y = yf(points[i])
    if y < by then front[#front + 1] = points[i]; by = y end
  end
  return front
end

-- ---------------------------------------------------------------- config files

-- The text of a configuration file P.load reads back as cfg (same name,
-- every layer's w, a and g): ordered entries {pattern, "w4a8[g32]"},
-- compressed by P.rows when the names are <prefix>.<block>.<role>, else
-- one entry per layer. comments: lines put at the top.
function S.config_text(cfg, comments)
  local out = {}
  for _, c in ipairs(comments or {}) do out[#out + 1] = "-- " .. c end
  out[#out + 1] = "return {"
  out[#out + 1] = string.format("  name = %q,", cfg.name)
  local rows = P.rows(cfg)
  local structured = true
  for _, r in ipairs(rows) do
    if r[1]:find(" .. ", 1, true) then structured = false; break end
  end
  if structured then
    for _, r in ipairs(rows) do
      out[#out + 1] = string.format("  {%q, %q},", r[1], P.pair_name(r[2], r[3], r[4]))
    end
  else
    for _, l in ipairs(cfg.layers) do
      out[#out + 1] = string.format("  {%q, %q},", l.name, P.pair_name(l.w, l.a, l.g))
    end
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

-- Whether two configurations give every layer the same name, w, a and g.
function S.same_layers(x, y)
  if #x.layers ~= #y.layers then return false, "layer count" end
  for i, l in ipairs(x.layers) do
    local m = y.layers[i]
    if l.name ~= m.name or l.w ~= m.w or l.a ~= m.a or l.g ~= m.g then return false, l.name end
  end
  return true
end

-- Write cfg to path (atomically), check that P.load(path, target) reads it
-- back identically, return the path.
function S.write_config(path, cfg, target, comments)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(S.config_text(cfg, comments))
  f:close()
  assert(os.rename(tmp, path))
  local back = P.load({path}, target)
  local ok, where = S.same_layers(back[1], cfg)
  if #back ~= 1 or back[1].name ~= cfg.name or not ok then
    fail("%s does not read back as configuration '%s' (%s)", path, cfg.name, tostring(where))
  end
  return path
end

-- ---------------------------------------------------------------- hand-made policies

-- The kind of hand-made policies the earlier reports tried, built from the
-- model's units and the choices (high = the base, mid = the second, low =
-- the cheapest): mlp-low (the MLP at low, the rest at mid: sp.lua's mlp4
-- for SmolLM2's bank), edges-mid (the first and last tenth of the blocks,
-- at least one each, at mid, the rest at low: edges8), attn-high (attention
-- at high, the MLP at mid), edges-high (the edge blocks at high, the rest
-- at mid). Returns configurations (no layer left unmatched).
function S.hand_policies(prob)
  local u, nc = prob.units, #prob.choices
  if #u.blocks == 0 then return {} end
  local high, mid, low = 1, math.min(2, nc), nc
  local nb = #u.blocks
  local edge = math.max(1, nb // 10)
  local is_edge = {}
  for k, b in ipairs(u.blocks) do is_edge[b] = k <= edge or k > nb - edge end
  local function mlp(i) return (u.role[i] or ""):find("mlp") ~= nil end
  local function make(name, f)
    local p = {}
    for i = 1, prob.n do p[i] = f(i) end
    return S.config(prob, p, name)
  end
  local out = {
    make("mlp-low", function(i) return mlp(i) and low or mid end),
    make("edges-mid", function(i) return (u.block[i] and is_edge[u.block[i]]) and mid or low end),
    make("attn-high", function(i) return mlp(i) and mid or high end),
    make("edges-high", function(i) return (u.block[i] and is_edge[u.block[i]]) and high or mid end),
  }
  return out
end

-- ---------------------------------------------------------------- plots

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
S.sh_quote = sh_quote

local function have_gnuplot()
  if os.execute("command -v gnuplot >/dev/null 2>&1") then return true end
  os.execute("bash " .. sh_quote(qr.source_dir .. "/scripts/setup_plot.sh") .. " >&2")
  return os.execute("command -v gnuplot >/dev/null 2>&1") and true or false
end

local function run_gnuplot(gp, lines)
  local f = assert(io.open(gp, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  if not os.execute("gnuplot " .. sh_quote(gp) .. " 2>&1") then return nil, "gnuplot failed on " .. gp end
  return true
end

local function gq(s) return (tostring(s):gsub('"', "'")) end -- a label inside a data file's "..."

-- <run_dir>/heatmap.png: the per-layer sensitivities as blocks x
-- sub-modules, one panel per lowered choice and variant. Returns the path,
-- or nil and why.
function S.plot_heatmap(run_dir, prob, sens)
  if not have_gnuplot() then return nil, "gnuplot is not installed and could not be (scripts/setup_plot.sh)" end
  local u = prob.units
  if #u.blocks == 0 or #sens.layers == 0 then return nil, "no per-layer sensitivities on a blocks x kinds grid" end
  local pdir = run_dir .. "/plot"
  os.execute("mkdir -p " .. sh_quote(pdir))
  local panels = {}
  for _, cn in ipairs(sens.choices) do
    for _, v in ipairs{"both", "w", "a"} do
      local any = false
      for _, r in ipairs(sens.layers) do any = any or (r.d[cn] and r.d[cn][v] ~= nil) end
      if any then panels[#panels + 1] = {choice = cn, variant = v} end
    end
  end
  local by_index = {}
  for _, r in ipairs(sens.layers) do by_index[r.index] = r end
  local ytics = {}
  for k, kind in ipairs(u.kinds) do ytics[#ytics + 1] = string.format('"%s" %d', gq(kind), k - 1) end
  local lines = {string.format("set terminal png size %d,%d noenhanced", 1400, math.max(420, 330 * #panels)),
    "set output '" .. run_dir .. "/heatmap.png'", string.format("set multiplot layout %d,1", #panels),
    "set ytics (" .. table.concat(ytics, ", ") .. ")", "set xlabel 'block'", "set ylabel 'sub-module'",
    "set palette rgbformulae 22,13,-31", #u.blocks <= 40 and "set xtics 1" or "set xtics auto", string.format("set xrange [%g:%g]", u.blocks[1] - 0.5, u.blocks[#u.blocks] + 0.5),
    string.format("set yrange [-0.5:%g]", #u.kinds - 0.5)}
  for n, pn in ipairs(panels) do
    local dat = string.format("%s/heat-%d.dat", pdir, n)
    local f = assert(io.open(dat, "w"))
    for _, b in ipairs(u.blocks) do
      for k, kind in ipairs(u.kinds) do
        local i = u.grid[b] and u.grid[b][kind]
        local r = i and by_index[i]
        local d = r and r.d[pn.choice] and r.d[pn.choice][pn.variant]
        f:write(string.format("%d %d %s\n", b, k - 1, d and string.format("%.6g", d.value) or "NaN"))
      end
      f:write("\n")
    end
    f:close()
    local what = ({both = "weights and activations", w = "weights only", a = "activations only"})[pn.variant]
    lines[#lines + 1] = string.format("set title 'sensitivity (%s increase over %s): one layer lowered to %s, %s'",
      sens.score, sens.base.name, pn.choice, what)
    lines[#lines + 1] = "plot '" .. dat .. "' using 1:2:3 with image notitle"
  end
  lines[#lines + 1] = "unset multiplot"
  local ok, why = run_gnuplot(pdir .. "/heatmap.gp", lines)
  if not ok then return nil, why end
  return run_dir .. "/heatmap.png"
end

-- <run_dir>/pareto.png: the score (top) and dev F1 (bottom) against the
-- BitOPs (left) and weight-byte (right) ratios: everything evaluated, its
-- Pareto front, each method's configurations, the uniform presets and the
-- hand-made policies. Returns the path, or nil and why.
function S.plot_pareto(run_dir, doc)
  if not have_gnuplot() then return nil, "gnuplot is not installed and could not be (scripts/setup_plot.sh)" end
  local pdir = run_dir .. "/plot"
  os.execute("mkdir -p " .. sh_quote(pdir))
  local function write(name, rows, fmt)
    local f = assert(io.open(pdir .. "/" .. name, "w"))
    for _, r in ipairs(rows) do f:write(fmt(r), "\n") end
    if #rows == 0 then f:write("NaN NaN NaN \"\"\n") end
    f:close()
    return "'" .. pdir .. "/" .. name .. "'"
  end
  local function pt(r) return string.format('%.8g %.8g %.8g "%s"', r.bitops_ratio, r.bytes_ratio, r.value, gq(r.name)) end
  local all = write("points.dat", doc.pareto.points, pt)
  local fb = write("front-bitops.dat", doc.pareto.bitops, pt)
  local fy = write("front-bytes.dat", doc.pareto.bytes, pt)
  local groups = {}
  for _, m in ipairs(S.METHODS) do
    local rows = {}
    for _, r in ipairs(doc.found) do if r.method == m then rows[#rows + 1] = r end end
    if #rows > 0 then groups[#groups + 1] = {name = m, file = write("found-" .. m .. ".dat", rows, pt)} end
  end
  local uni, hand = {}, {}
  for _, r in ipairs(doc.presets) do
    if r.kind == "uniform" then uni[#uni + 1] = r else hand[#hand + 1] = r end
  end
  local fu, fh = write("uniform.dat", uni, pt), write("hand.dat", hand, pt)
  local f1rows = {}
  for _, r in ipairs(doc.confirm) do
    f1rows[#f1rows + 1] = {bitops_ratio = r.bitops_ratio, bytes_ratio = r.bytes_ratio, f1 = r.f1, lo = r.f1_ci[1],
      hi = r.f1_ci[2], name = r.name, kind = r.kind}
  end
  local function f1fmt(r)
    return string.format('%.8g %.8g %.6g %.6g %.6g "%s"', r.bitops_ratio, r.bytes_ratio, r.f1, r.lo, r.hi, gq(r.name))
  end
  local ff = {}
  for _, kind in ipairs{"method", "uniform", "hand", "extra"} do
    local rows = {}
    for _, r in ipairs(f1rows) do if r.kind == kind then rows[#rows + 1] = r end end
    if #rows > 0 then ff[#ff + 1] = {kind = kind, file = write("f1-" .. kind .. ".dat", rows, f1fmt)} end
  end
  local ylab = doc.score == "f1" and "100 - F1 on the search slice" or
    string.format("proxy %s (answer tokens, calibration slice)", doc.score == "kl" and "KL to the base" or "NLL")
  local L = {"set terminal png size 1600,1200 noenhanced", "set output '" .. run_dir .. "/pareto.png'",
    "set multiplot layout 2,2", "set logscale x", "set key top right", "set grid"}
  local pts = {"7", "5", "9", "11", "13"}
  for col, axis in ipairs{{1, "BitOPs"}, {2, "weight bytes"}} do
    local c = axis[1]
    local front = c == 1 and fb or fy
    local parts = {string.format("%s using %d:3 with points pt 7 ps 0.4 lc rgb '#b0b0b0' title 'evaluated (%d)'", all, c,
        #doc.pareto.points),
      string.format("%s using %d:3 with steps lw 2 lc rgb '#404040' title 'Pareto front'", front, c)}
    for k, g in ipairs(groups) do
      parts[#parts + 1] = string.format("%s using %d:3 with points pt %s ps 2 title '%s'", g.file, c, pts[k], g.name)
    end
    parts[#parts + 1] = string.format("%s using %d:3 with points pt 8 ps 2 lc rgb 'black' title 'uniform'", fu, c)
    parts[#parts + 1] = string.format("%s using %d:3:4 with labels offset 0,1 font ',8' notitle", fu, c)
    parts[#parts + 1] = string.format("%s using %d:3 with points pt 4 ps 2 lc rgb 'brown' title 'hand-made'", fh, c)
    parts[#parts + 1] = string.format("%s using %d:3:4 with labels offset 0,-1 font ',8' notitle", fh, c)
    L[#L + 1] = string.format("set xlabel '%s, ratio to fp (log)'", axis[2])
    L[#L + 1] = "set ylabel '" .. ylab .. "'"
    L[#L + 1] = string.format("set title '%s against %s'", doc.score == "f1" and "search score" or "proxy", axis[2])
    L[#L + 1] = "plot " .. table.concat(parts, ", ")
    _ = col
  end
  for _, axis in ipairs{{1, "BitOPs"}, {2, "weight bytes"}} do
    local c = axis[1]
    local parts = {}
    for k, g in ipairs(ff) do
      parts[#parts + 1] = string.format("%s using %d:3:4:5 with yerrorbars pt %s ps 1.5 title '%s'", g.file, c, pts[k], g.kind)
      parts[#parts + 1] = string.format("%s using %d:3:6 with labels offset 0,1 font ',7' notitle", g.file, c)
    end
    L[#L + 1] = string.format("set xlabel '%s, ratio to fp (log)'", axis[2])
    L[#L + 1] = "set ylabel 'dev F1 (95% CI)'"
    L[#L + 1] = string.format("set title 'dev F1 against %s'", axis[2])
    if #parts > 0 then L[#L + 1] = "plot " .. table.concat(parts, ", ") end
  end
  L[#L + 1] = "unset multiplot"
  local ok, why = run_gnuplot(pdir .. "/pareto.gp", L)
  if not ok then return nil, why end
  return run_dir .. "/pareto.png"
end

-- ---------------------------------------------------------------- a bank to search

-- S.train_bank{model=, configs= (adapters assigned), slots=, data=, dir=,
-- steps=, batch=, seq=, lr=, min_lr=, warmup=, clip=, rank=, seed=,
-- checkpoint_every=, meta=}: sp.lua's training (the static schedule, ce,
-- every configuration at every step) into dir (checkpoint, train.jsonl,
-- adapters.safetensors; resumed from its checkpoint, a no-op when done),
-- then dir/results.json with sp.lua's fields (meta; results = {}: no
-- evaluation) so that dir is a run directory search.lua accepts.
function S.train_bank(a)
  os.execute("mkdir -p " .. sh_quote(a.dir))
  a.model:lora{rank = a.rank, alpha = 2 * a.rank, slots = a.slots, seed = a.seed}
  local r = qr.train{model = a.model, configs = a.configs, data = a.data, steps = a.steps, batch = a.batch,
    accum = 1, seq = a.seq, lr = a.lr, min_lr = a.min_lr, warmup = math.min(a.warmup or 0, a.steps), clip = a.clip,
    schedule = "static", loss = "ce", teacher = "none", seed = a.seed, run_dir = a.dir,
    checkpoint_every = a.checkpoint_every or 5, log_every = 1, progress = a.progress}
  local doc = {results = {}, trained_by = "search.lua"}
  for k, v in pairs(a.meta or {}) do doc[k] = v end
  assert(qr.json.write(a.dir .. "/results.json", doc, {indent = true}))
  return r
end

-- ---------------------------------------------------------------- the whole search

-- The plan: how many evaluations each part makes (at most), for the
-- progress lines and the ETA. o as in S.run.
function S.plan(prob, o)
  local jobs = S.sens_jobs(prob, {units = o.sens, separate = o.separate})
  local nb = #o.budgets
  local evo = 0
  local m = set_of(o.methods)
  if m.evo then evo = o.pop + o.gens * (o.pop - o.elite) end
  local per_budget = (m.greedy and 1 or 0) + (m.ilp and 1 or 0) + evo
  local presets = #prob.choices - 1 + (o.n_hand or 0)
  local f1 = #o.methods * nb + #prob.choices + (o.n_hand or 0)
  return {sens = #jobs, per_budget = per_budget, evo = evo, budgets = nb, presets = presets,
    search = 1 + nb * per_budget + presets, f1 = math.max(f1, o.corr_min or 12), jobs = jobs}
end

local function strip(cfg) -- without the adapter hints, for P.cost
  local out = {name = cfg.name, layers = {}}
  for i, l in ipairs(cfg.layers) do out.layers[i] = {name = l.name, w = l.w, a = l.a, g = l.g} end
  return out
end

local function budget_tag(prob, b)
  return (prob.metric == "bytes" and "" or (prob.metric .. "-")) .. string.format("%g", b)
end

-- S.run{model=, train_cfgs=, slices=, o=, run_dir=, evaluate=, f1=, hand=, meta=, cache_key=, say=}
--   slices: {main = (the search's score), sens = (the sensitivity
--            analysis'), calib = (the proxy reported next to F1)}, each
--            {id=, data=, kind = "proxy" | "f1"} (S.scorer)
--   o: choices (S.parse_choices), metric, budgets, methods, sens, separate
--      (sets), score, pop, gens, elite, tournament, mutation, seed,
--      corr_min, seq_cost, batch, plot, progress, builtin_hand,
--      sens_cache_mb (the sensitivity's block-input cache bound; 0: none)
--   evaluate(model, run_cfg) -> {em=, f1=, em_ci=, f1_ci=, n=, seconds=,
--            predictions = {{em=, f1=}, ...}}: the dev evaluation (EM/F1 in %)
--   f1(model, data) -> {f1=, em=, n=}: the score of an "f1" slice
--   hand: more configurations to place next to the search's (a --hand file)
--   meta: fields for results.json; meta.key must match for old dev
--         evaluations to be kept
-- Writes <run_dir>/{proxy-cache.json, sensitivity.json, results.json,
-- configs/<method>-<budget>.lua, heatmap.png, pareto.png}. Resumable: a
-- rerun takes every score from the cache and every dev evaluation from
-- results.json. Returns the results document.
function S.run(a)
  local say = a.say or print
  local o, model, dir = a.o, a.model, a.run_dir
  os.execute("mkdir -p " .. sh_quote(dir .. "/configs"))
  local prob = S.problem(model, o.choices, o.metric)
  for _, b in ipairs(o.budgets) do S.check_budget(prob, b) end
  local adapters = S.adapters(a.train_cfgs)
  local base_cfg = S.config(prob, S.uniform(prob, 1), "base")
  local function cost(cfg) return P.cost(strip(cfg), model, o.seq_cost or 1) end
  local sc = S.scorer{model = model, adapters = adapters, base_run = adapters(base_cfg), slices = a.slices,
    cache = dir .. "/proxy-cache.json", key = a.cache_key, score = o.score, f1 = a.f1, batch = o.batch, topk = o.topk, cost = cost}
  local methods = set_of(o.methods)

  -- the hand-made policies: built in (S.hand_policies) and given
  local presets = {}
  for c, ch in ipairs(prob.choices) do
    presets[#presets + 1] = {cfg = S.config(prob, S.uniform(prob, c), ch.name), kind = "uniform"}
  end
  if o.builtin_hand ~= false then
    for _, cfg in ipairs(S.hand_policies(prob)) do presets[#presets + 1] = {cfg = cfg, kind = "hand"} end
  end
  for _, cfg in ipairs(a.hand or {}) do presets[#presets + 1] = {cfg = cfg, kind = "hand"} end
  local n_hand = #presets - #prob.choices

  local plan = S.plan(prob, {sens = o.sens, separate = o.separate, budgets = o.budgets, methods = o.methods,
    pop = o.pop or 16, gens = o.gens or 10, elite = o.elite or 2, n_hand = n_hand, corr_min = o.corr_min})
  local base = sc:get(base_cfg, "main", "base")
  local per = base.seconds and base.n and base.n > 0 and sc.computed > 0 and base.seconds / base.n or nil
  local ns, nm = #a.slices.sens.data, #a.slices.main.data
  say(string.format("search: %d layers, choices %s (base %s), metric %s, budgets %s, methods %s, score %s",
    prob.n, table.concat((function() local t = {} for i, c in ipairs(prob.choices) do t[i] = c.name end return t end)(), ","),
    prob.choices[1].name, prob.metric, table.concat(o.budgets, ","), table.concat(o.methods, ","), sc.score))
  say(string.format("plan: sensitivity %d evaluations x %d examples; search <= %d x %d examples (%d per budget, "
    .. "%d presets/policies); dev F1 on <= %d configurations (>= %d)", plan.sens, ns, plan.search, nm,
    plan.per_budget, plan.presets, plan.f1, o.corr_min or 12))
  if per then
    say(string.format("plan: one example took %.3fs (base); the proxy part would take ~%s uncached", per,
      hms(per * (plan.sens * ns + plan.search * nm))))
  end

  -- sensitivity
  local sens, loss = S.sensitivity(prob, sc, {units = o.sens, separate = o.separate, slice = "sens",
    progress = o.progress, say = say, block_cache = o.sens_cache_mb ~= 0, cache_mb = o.sens_cache_mb})
  assert(qr.json.write(dir .. "/sensitivity.json", sens, {indent = true}))
  say("wrote " .. dir .. "/sensitivity.json")
  local low = prob.choices[#prob.choices].name
  for _, unit in ipairs{"kinds", "blocks"} do
    if #sens[unit] > 0 then
      local parts = {}
      for _, r in ipairs(sens[unit]) do
        local d = r.d[low]
        parts[#parts + 1] = string.format("%s %+.3g", tostring(r.kind or r.block), d.both.value) ..
          (d.w and string.format(" (w %+.3g, a %+.3g)", d.w.value, d.a.value) or "")
      end
      say(string.format("  one %s lowered to %s (%s increase): %s", unit == "kinds" and "kind" or "block", low,
        sc.score, table.concat(parts, ", ")))
    end
  end

  -- the searches
  local doc = {found = {}, presets = {}, score = sc.score, metric = prob.metric, budgets = o.budgets,
    choices = {}, methods = o.methods}
  for i, c in ipairs(prob.choices) do doc.choices[i] = c.name end
  local function record(list, row, cfg, e)
    local c = cost(cfg)
    row.bitops_ratio, row.bytes_ratio = c.bitops_ratio, c.bytes_ratio
    row.nll, row.kl, row.f1_slice, row.value = e.nll, e.kl, e.f1, sc:value(e)
    list[#list + 1] = row
    return row
  end
  local picks = {}
  for _, b in ipairs(o.budgets) do
    local babs = S.budget_abs(prob, b)
    local tag = budget_tag(prob, b)
    picks[b] = {}
    for _, m in ipairs(S.METHODS) do
      if methods[m] then
        local t0, c0 = qr.now(), sc.computed
        local pick, info
        if m == "greedy" then
          pick, info = S.greedy(prob, loss, babs)
        elseif m == "ilp" then
          pick, info = S.ilp(prob, loss, babs)
        else
          local seeds = {}
          if picks[b].greedy then seeds[#seeds + 1] = picks[b].greedy end
          if picks[b].ilp then seeds[#seeds + 1] = picks[b].ilp end
          local k = 0
          local pick_e, v
          pick_e, v, info = S.evo(prob, babs, function(p)
            k = k + 1
            return sc:value(sc:get(S.config(prob, p), "main", string.format("evo-%s #%d", tag, k)))
          end, {pop = o.pop, gens = o.gens, elite = o.elite, tournament = o.tournament, mutation = o.mutation,
            seed = o.seed, seeds = seeds, loss = loss, progress = o.progress})
          pick = pick_e
          info.history = nil
          info.best = v
        end
        assert(S.cost(prob, pick) <= babs, m .. ": a configuration over the budget")
        picks[b][m] = pick
        local name = m .. "-" .. tag
        local cfg = S.config(prob, pick, name)
        local e = sc:get(cfg, "main", name)
        local file = dir .. "/configs/" .. name .. ".lua"
        local row = record(doc.found, {method = m, budget = b, name = name, file = file, info = info,
          evals = sc.computed - c0, seconds = qr.now() - t0, cost_ratio = S.ratio(prob, pick)}, cfg, e)
        S.write_config(file, cfg, prob.layers, {
          string.format("%s: the %s search's configuration for a budget of %g of fp %s (found %.4f)", name, m, b,
            prob.metric, row.cost_ratio),
          string.format("BitOPs %.4f, weight bytes %.4f of fp; score (%s) %.6g", row.bitops_ratio, row.bytes_ratio,
            sc.score, row.value),
          "written by recipes/search.lua; load with P.load(\"" .. name .. ".lua\", model) or any recipe's --configs"})
        say(string.format("  %-7s budget %-6g cost %.4f  %s %.5g  (%d evaluations, %.0fs)  %s", m, b, row.cost_ratio,
          sc.score, row.value, row.evals, row.seconds, file))
        sc:flush()
      end
    end
  end

  -- the uniform presets and hand-made policies
  for _, p in ipairs(presets) do
    local e = sc:get(p.cfg, "main", p.cfg.name)
    record(doc.presets, {name = p.cfg.name, kind = p.kind}, p.cfg, e)
  end
  sc:flush()

  -- confirmation on dev: each method's configuration at each budget, the
  -- presets and policies, and more greedy ones if fewer than corr_min
  local out = dir .. "/results.json"
  local old = qr.json.read(out)
  local f1done = (old and old.key == (a.meta and a.meta.key) and type(old.f1) == "table") and old.f1 or {}
  doc.f1 = f1done
  for k, v in pairs(a.meta or {}) do doc[k] = v end
  local function save() assert(qr.json.write(out, doc, {indent = true})) end
  local list, seen = {}, {}
  local function add(cfg, kind, extra)
    local k = S.key(adapters(cfg))
    if seen[k] then
      seen[k].also = seen[k].also or {}
      table.insert(seen[k].also, {name = cfg.name, kind = kind, method = extra and extra.method,
        budget = extra and extra.budget})
      return
    end
    local item = {cfg = cfg, kind = kind, key = k}
    for kk, vv in pairs(extra or {}) do item[kk] = vv end
    seen[k] = item
    list[#list + 1] = item
  end
  for _, r in ipairs(doc.found) do add(S.config(prob, picks[r.budget][r.method], r.name), "method",
    {method = r.method, budget = r.budget}) end
  for _, p in ipairs(presets) do add(p.cfg, p.kind) end
  local corr_min = o.corr_min or 12
  if #list < corr_min and loss then
    -- greedy at budgets spread between the cheapest and the base
    local lo, hi = S.ratio(prob, S.cheapest(prob)), 1
    local want = corr_min - #list
    for k = 1, 4 * want do
      if #list >= corr_min then break end
      local b = lo + (hi - lo) * (k - 0.5) / (4 * want)
      local pick = S.greedy(prob, loss, S.budget_abs(prob, b))
      add(S.config(prob, pick, string.format("extra-greedy-%.4f", b)), "extra")
    end
  end
  doc.confirm = {}
  local pending = 0
  for _, it in ipairs(list) do if not f1done[it.key] then pending = pending + 1 end end
  say(string.format("dev evaluation: %d configurations (%d to evaluate)", #list, pending))
  local done = 0
  for _, it in ipairs(list) do
    local r = f1done[it.key]
    if not r then
      done = done + 1
      local run = adapters(it.cfg)
      model:precision(run)
      if o.progress then io.stderr:write(string.format("search: dev evaluation %d/%d: %s\n", done, pending, it.cfg.name)) end
      local ev = a.evaluate(model, run)
      local pf, pe = {}, {}
      for i, p in ipairs(ev.predictions) do pf[i], pe[i] = p.f1, p.em end
      r = {em = ev.em, f1 = ev.f1, em_ci = ev.em_ci, f1_ci = ev.f1_ci, n = ev.n, seconds = ev.seconds,
        per_question = {f1 = pf, em = pe}}
      f1done[it.key] = r
      save()
    end
    local e = sc:get(it.cfg, "calib", it.cfg.name)
    local c = cost(it.cfg)
    doc.confirm[#doc.confirm + 1] = {name = it.cfg.name, kind = it.kind, method = it.method, budget = it.budget,
      also = it.also, key = it.key, em = r.em, f1 = r.f1, em_ci = r.em_ci, f1_ci = r.f1_ci, n = r.n,
      bitops_ratio = c.bitops_ratio, bytes_ratio = c.bytes_ratio, nll = e.nll, kl = e.kl}
    say(string.format("  %-22s %-7s bitops %.4f bytes %.4f  EM %6.2f  F1 %6.2f [%5.2f, %5.2f]  kl %.4g nll %.4g",
      it.cfg.name, it.kind, c.bitops_ratio, c.bytes_ratio, r.em, r.f1, r.f1_ci[1], r.f1_ci[2], e.kl or 0, e.nll or 0))
  end
  sc:flush()

  -- the Pareto front over everything evaluated on the search slice
  local points = {}
  for _, x in ipairs(sc:entries("main")) do
    local e = x.entry
    if e.bitops_ratio and sc:value(e) then
      points[#points + 1] = {name = e.label or "?", bitops_ratio = e.bitops_ratio, bytes_ratio = e.bytes_ratio,
        value = sc:value(e), nll = e.nll, kl = e.kl, f1_slice = e.f1}
    end
  end
  doc.pareto = {points = points,
    bitops = S.pareto(points, function(p) return p.bitops_ratio end, function(p) return p.value end),
    bytes = S.pareto(points, function(p) return p.bytes_ratio end, function(p) return p.value end)}
  say(string.format("pareto: %d configurations evaluated; front: %d (BitOPs), %d (bytes)", #points,
    #doc.pareto.bitops, #doc.pareto.bytes))

  -- the proxy against dev F1
  doc.spearman = {n = #doc.confirm}
  local f1s = {}
  for i, r in ipairs(doc.confirm) do f1s[i] = r.f1 end
  for _, k in ipairs{"kl", "nll"} do
    local xs, ok = {}, true
    for i, r in ipairs(doc.confirm) do xs[i] = r[k]; ok = ok and r[k] ~= nil end
    if ok then doc.spearman[k] = S.spearman(xs, f1s) end
  end
  local rho = doc.spearman[sc.score == "f1" and "kl" or sc.score]
  local strength = not rho and "undefined" or (-rho >= 0.8 and "strong") or (-rho >= 0.6 and "moderate") or "weak"
  doc.spearman.strength = strength
  doc.spearman.sentence = string.format("Spearman rank correlation of the proxy with dev F1 over %d configurations: "
    .. "KL %s, NLL %s (%s for %s; a good proxy is strongly negative)", #doc.confirm,
    doc.spearman.kl and string.format("%+.3f", doc.spearman.kl) or "n/a",
    doc.spearman.nll and string.format("%+.3f", doc.spearman.nll) or "n/a", strength,
    sc.score == "f1" and "kl" or sc.score)
  if strength == "weak" then
    doc.spearman.sentence = doc.spearman.sentence .. ": the proxy is weak here; search on F1 of a small dev slice "
      .. "instead (--score=f1 --score-limit=N)"
  elseif strength == "undefined" then
    doc.spearman.sentence = doc.spearman.sentence .. ": F1 or the proxy is constant over these configurations"
  end
  if #doc.confirm < 12 then
    doc.spearman.sentence = doc.spearman.sentence .. string.format(" (only %d configurations)", #doc.confirm)
  end
  say(doc.spearman.sentence)

  -- per budget: each method next to the uniform presets at similar cost
  local C = require("qr.cpt")
  local function metric_ratio(r) return prob.metric == "bitops" and r.bitops_ratio or r.bytes_ratio end
  doc.by_budget = {}
  for _, b in ipairs(o.budgets) do
    local row = {budget = b, metric = prob.metric, methods = {}}
    local named = {}
    for _, r in ipairs(doc.confirm) do
      named[#named + 1] = {name = r.name, kind = r.kind, method = r.method, budget = r.budget, row = r}
      for _, x in ipairs(r.also or {}) do
        named[#named + 1] = {name = x.name, kind = x.kind, method = x.method, budget = x.budget, row = r}
      end
    end
    local below, above
    for _, x in ipairs(named) do
      if x.kind == "uniform" then
        local c = metric_ratio(x.row)
        if c <= b * (1 + 1e-12) and (not below or c > metric_ratio(below.row)) then below = x end
        if c > b and (not above or c < metric_ratio(above.row)) then above = x end
      end
    end
    row.uniform_within = below and below.name
    row.uniform_above = above and above.name
    for _, x in ipairs(named) do
      if x.kind == "method" and x.budget == b then
        local r = x.row
        local entry = {method = x.method, name = x.name, f1 = r.f1, em = r.em, f1_ci = r.f1_ci, em_ci = r.em_ci,
          cost = metric_ratio(r), same_as = r.name ~= x.name and r.name or nil}
        if below then
          local pq, bq = f1done[r.key].per_question.f1, f1done[below.row.key].per_question.f1
          if #pq == #bq and #pq > 0 then
            local p = C.paired(pq, bq)
            entry.vs_uniform = {vs = below.name, diff = p.diff, ci = p.ci, verdict = p.verdict,
              sentence = string.format("%s vs uniform %s (the best uniform within the budget): F1 %+.1f [%+.1f, %+.1f] (%s)",
                x.name, below.name, p.diff, p.ci[1], p.ci[2], p.verdict)}
          end
        end
        row.methods[#row.methods + 1] = entry
      end
    end
    doc.by_budget[#doc.by_budget + 1] = row
    say(string.format("budget %g of fp %s: uniform within %s, above %s", b, prob.metric, tostring(row.uniform_within),
      tostring(row.uniform_above)))
    for _, e in ipairs(row.methods) do
      say(string.format("  %-18s cost %.4f  F1 %6.2f [%5.2f, %5.2f]%s", e.name, e.cost, e.f1, e.f1_ci[1], e.f1_ci[2],
        e.vs_uniform and ("  " .. e.vs_uniform.sentence) or ""))
    end
  end
  doc.sensitivity = "sensitivity.json"
  doc.evaluations = {computed = sc.computed, cached = sc.hits, proxy_seconds = sc.seconds}
  save()
  if o.plot ~= false then
    local png, why = S.plot_heatmap(dir, prob, sens)
    say(png and ("wrote " .. png) or ("heatmap.png skipped: " .. why))
    png, why = S.plot_pareto(dir, doc)
    say(png and ("wrote " .. png) or ("pareto.png skipped: " .. why))
  end
  say(string.format("search: %d scores computed, %d from the cache; wrote %s", sc.computed, sc.hits, out))
  return doc, prob, sc
end

return S
