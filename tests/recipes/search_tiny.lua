-- search_tiny.lua - recipe regression test for the configuration search
-- (recipes/lib/qr/search.lua, driven by recipes/search.lua) on a tiny
-- random GPT-2 (2 blocks, 8 linear layers) with a LoRA bank trained for a
-- few steps on synthetic copy-task data: options refused naming them, costs
-- against precision.lua, a budget below the cheapest configuration refused,
-- the proxy, the sensitivity analysis, greedy and evo deterministic under a
-- seed and never over budget (many budgets), the ILP equal to brute force
-- (hand-made problems and one from the tiny model's sensitivities),
-- configuration files read back identically, a configuration naming an
-- unknown layer refused, Spearman with ties, the Pareto front, and the
-- whole search end to end in a temp run dir and rerun without recomputing.
--
-- The dev evaluation is SYNTHETIC here (no tokenizer, no SQuAD): each of 12
-- held-out sequences is a "question" whose F1 is exp(-loss / 4) under the
-- configuration being evaluated (model:loss), as cpt_tiny.lua does.
-- Run from the repo root: qrun tests/recipes/search_tiny.lua
local T = require("qr.qrtest")
local P = require("qr.precision")
local S = require("qr.search")

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")

local m = qr.model_new{arch = "gpt2", n_layer = 2, n_embd = 32, n_head = 2, n_vocab = 61, n_ctx = 48, seed = 1}
m:quantize{weight = "minmax", act = "minmax"}

local s = 11
local function rnd(n) s = (s * 1103515245 + 12345) % 2147483648; return s % n end
local function copy_seqs(n)
  local out = {}
  for i = 1, n do
    local plen = 4 + rnd(8)
    local ids, tg = {}, {}
    for j = 1, plen do ids[j] = 1 + rnd(59) end
    for j = 1, plen do ids[plen + j] = ids[j] end
    for j = 1, #ids do tg[j] = (j >= plen and j < #ids) and ids[j + 1] or -1 end
    out[i] = {ids = ids, targets = tg}
  end
  return out
end
local train, calib, held = copy_seqs(24), copy_seqs(8), copy_seqs(12)

-- 1. options refused, naming them
local function chk(k, v)
  local o = {}
  o[k] = v
  return function() S.check(o) end
end
T.errors("search-1.1", chk("method", "greedy,annealing"), "--method: no method named 'annealing' (known: greedy,ilp,evo)")
T.errors("search-1.2", chk("metric", "flops"), "--metric: no metric named 'flops'")
T.errors("search-1.3", chk("budget", "0.3,abc"), "--budget=0.3,abc: 'abc' is not a ratio to fp in (0, 1]")
T.errors("search-1.4", chk("budget", "1.5"), "'1.5' is not a ratio to fp")
T.errors("search-1.5", chk("score", "f2"), "--score: no score named 'f2'")
T.errors("search-1.6", chk("method", "ilp,ilp"), "--method: 'ilp' given twice")
T.errors("search-1.7", chk("sens", "kinds"), "greedy and ilp need the per-layer sensitivities")
T.errors("search-1.8", function() S.parse_choices("fp,w4a99") end, "--choices: 'w4a99': activation bits 99")
T.errors("search-1.9", function() S.parse_choices("w8a8") end, "expected at least two precisions")
T.eq("search-1.10", S.check{}.methods, {"greedy", "ilp", "evo"})
T.eq("search-1.11", S.check{budget = "0.25, 0.5"}.budgets, {0.25, 0.5})

-- 2. the problem: costs against precision.lua, the cheapest configuration, a budget below it
local choices = S.parse_choices("w4a8,fp,w8a8") -- sorted highest first
T.eq("search-2.1", {choices[1].name, choices[2].name, choices[3].name}, {"fp", "w8a8", "w4a8"})
local prob = S.problem(m, choices, "bytes")
local probb = S.problem(m, choices, "bitops")
T.eq("search-2.2", prob.n, 8)
local c48 = P.cost(P.config(m, "w4a8"), m)
T.near("search-2.3", {S.ratio(prob, S.uniform(prob, 3)), S.ratio(probb, S.uniform(probb, 3))},
  {c48.bytes_ratio, c48.bitops_ratio}, 1e-15)
local mixed = {1, 2, 3, 3, 2, 1, 3, 2}
local cm = P.cost(S.config(prob, mixed, "mixed"), m)
T.near("search-2.4", {S.ratio(prob, mixed), S.ratio(probb, mixed)}, {cm.bytes_ratio, cm.bitops_ratio}, 1e-15)
T.eq("search-2.5", S.cheapest(prob), S.uniform(prob, 3))
T.errors("search-2.6", function() S.check_budget(prob, 0.1) end, string.format(
  "--budget=0.1 is below the cheapest reachable configuration (every layer at its cheapest choice, w4a8: %.4f of fp bytes)",
  c48.bytes_ratio))
T.ok("search-2.7", pcall(S.check_budget, prob, c48.bytes_ratio), "the cheapest configuration's own ratio is a budget")
T.eq("search-2.8", S.units(prob.layers).kinds, {"c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"})
local llama = {}
for b = 0, 1 do
  for _, r in ipairs{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
    "mlp.up_proj", "mlp.down_proj"} do
    llama[#llama + 1] = {name = "model.layers." .. b .. "." .. r, in_features = 8, out_features = 8}
  end
end
local lu = S.units(llama)
T.eq("search-2.9", {lu.kinds, lu.blocks, lu.grid[1].down}, {{"q", "k", "v", "o", "gate", "up", "down"}, {0, 1}, 14})

-- 3. a bank trained as sp.lua trains one (S.train_bank), rerun a no-op
local train_cfgs = P.load("fp,w8a8,w4a8", m)
local slots = P.assign_adapters(train_cfgs)
local bank = dir .. "/sp"
local tr = S.train_bank{model = m, configs = train_cfgs, slots = slots, data = train, dir = bank, steps = 4, batch = 4,
  seq = 48, lr = 1e-2, min_lr = 1e-3, warmup = 1, clip = 1, rank = 2, seed = 3, progress = false,
  meta = {configs = "fp,w8a8,w4a8", rank = 2, shots = 0, train_limit = 24}}
T.eq("search-3.1", tr.steps, 4)
T.eq("search-3.2", qr.json.read(bank .. "/results.json").trained_by, "search.lua")
local tr2 = S.train_bank{model = m, configs = train_cfgs, slots = slots, data = train, dir = bank, steps = 4, batch = 4,
  seq = 48, lr = 1e-2, min_lr = 1e-3, warmup = 1, clip = 1, rank = 2, seed = 3, progress = false, meta = {}}
T.eq("search-3.3", tr2.resumed_from, 4)
m:lora{rank = 2, alpha = 4, slots = slots, seed = 1}
assert(m:load_adapters(bank .. "/adapters.safetensors"))
T.eq("search-3.4", S.trained_pairs(train_cfgs), "fp,w8a8,w4a8")

-- 4. the proxy (model:proxy) against the base configuration's reference
local adapters = S.adapters(train_cfgs)
local base_run = adapters(S.config(prob, S.uniform(prob, 1), "base"))
m:precision(base_run)
local full = {ids = calib[1].ids, targets = {}}
for j = 1, #full.ids do full.targets[j] = j < #full.ids and full.ids[j + 1] or -1 end
local ref = S.proxy_ref(m, {full})
local px = S.proxy(m, {full}, {ref = ref})
T.near("search-4.1", px.nll, m:loss(full.ids), 1e-5) -- every position scored: the NLL is model:loss
T.near("search-4.2", px.kl, 0, 1e-6)                 -- the reference against itself
T.eq("search-4.3", {px.n, px.tokens}, {1, #full.ids - 1})
local r48, nearest = adapters(S.config(prob, S.uniform(prob, 3), "w4a8"))
m:precision(r48)
local p48 = S.proxy(m, {full}, {ref = ref})
T.ok("search-4.4", p48.kl > 0 and nearest == 0, string.format("w4a8 is off the fp reference: kl %.3g", p48.kl))
local _, n6 = adapters(P.config(m, "w6a6"))
T.eq("search-4.5", n6, 8) -- w6a6 has no adapter of its own: every layer takes the nearest

-- 5. the sensitivity analysis on the tiny model
local sens_slice = {id = "t4", data = {calib[1], calib[2], calib[3], calib[4]}, kind = "proxy"}
local main_slice = {id = "t8", data = calib, kind = "proxy"}
local function scorer(cache)
  return S.scorer{model = m, adapters = adapters, base_run = base_run, slices = {sens = sens_slice, main = main_slice,
    calib = main_slice}, cache = cache, key = "tiny", score = "kl",
    cost = function(cfg) return P.cost(cfg, m) end}
end
local sc = scorer(dir .. "/cache-5.json")
local units = {layers = true, kinds = true, blocks = true}
local sens, loss = S.sensitivity(prob, sc, {units = units, separate = {kinds = true, blocks = true}, slice = "sens"})
-- 8 layers x 2 lowered choices; 4 kinds and 2 blocks x 2 choices x 3 variants; the base
T.eq("search-5.1", sc.computed, 8 * 2 + (4 + 2) * 2 * 3 + 1)
T.eq("search-5.2", {#sens.layers, #sens.kinds, #sens.blocks, #loss, #loss[1]}, {8, 4, 2, 8, 3})
T.eq("search-5.3", loss[1][1], 0)
T.ok("search-5.4", sens.blocks[1].d.w4a8.w ~= nil and sens.blocks[1].d.w4a8.a ~= nil and
  sens.layers[1].d.w4a8.w == nil, "weights and activations separately for blocks, not for layers")
local sc2 = scorer(dir .. "/cache-5.json") -- a fresh scorer on the same cache file recomputes nothing
local sens2, loss2 = S.sensitivity(prob, sc2, {units = units, separate = {kinds = true, blocks = true}, slice = "sens"})
T.eq("search-5.5", {sc2.computed, loss2}, {0, loss})
local sc3 = S.scorer{model = m, adapters = adapters, base_run = base_run, slices = {sens = sens_slice},
  cache = dir .. "/cache-5.json", key = "another model", score = "kl"}
sc3:get(S.config(prob, S.uniform(prob, 1)), "sens")
T.eq("search-5.6", sc3.computed, 1) -- another key: the cache starts empty
_ = sens2
-- the block-input cache (on by default) changes the time, not the scores:
-- fresh scorers (no cache file) with and without it agree on every entry
do
  local said = {}
  local opt = {units = units, separate = {kinds = true, blocks = true}, slice = "sens",
    say = function(l) said[#said + 1] = l end}
  local scA = scorer(nil)
  local sensA, lossA = S.sensitivity(prob, scA, opt)
  opt.block_cache = false
  local scB = scorer(nil)
  local sensB, lossB = S.sensitivity(prob, scB, opt)
  T.eq("search-5.7 the same sensitivities with and without the block-input cache", {sensA, lossA}, {sensB, lossB})
  local n, same, md = 0, true, 0
  for k, e in pairs(scA.doc.entries) do
    local f = scB.doc.entries[k]
    n = n + 1
    same = same and f ~= nil and e.nll == f.nll and e.kl == f.kl
    if f then md = math.max(md, math.abs(e.nll - f.nll), math.abs(e.kl - f.kl)) end
  end
  print(string.format("search-5.8: %d entries with and without the block-input cache: max |nll or kl diff| %.3g "
    .. "(tolerance 0)", n, md))
  T.ok("search-5.8 every entry's nll and kl identical", same and n == scB.computed and n == 8 * 2 + (4 + 2) * 2 * 3 + 1,
    string.format("%d entries, max diff %.3g", n, md))
  local text = table.concat(said, "\n")
  T.ok("search-5.9 the cache is built and its savings said", text:find("block-input cache of the base", 1, true) and
    text:find("blocks skipped", 1, true), text)
  print(text)
  local tiny = {}
  opt.block_cache, opt.cache_mb, opt.say = nil, 1e-4, function(l) tiny[#tiny + 1] = l end
  local scC = scorer(nil)
  local sensC = S.sensitivity(prob, scC, opt)
  local why = "no block%-input cache, every configuration runs the whole forward: .*more than the 0%.0 MB allowed"
  T.eq("search-5.10 a cache over cache_mb: said, and the same scores without it",
    {sensC, tiny[2] and tiny[2]:match(why) ~= nil}, {sensA, true})
end

-- 6. greedy: never over budget, deterministic, the base when the budget allows it
local lo = S.ratio(prob, S.cheapest(prob))
local over, fill_ok, detail = 0, true, ""
for k = 0, 60 do
  local b = lo + (1 - lo) * k / 60
  local babs = S.budget_abs(prob, b)
  local pick = S.greedy(prob, loss, babs)
  if S.cost(prob, pick) > babs then over = over + 1; detail = detail .. " " .. b end
  -- after the fill no single raise fits the budget and helps
  for i = 1, prob.n do
    for c = 1, 3 do
      if prob.cost[i][c] > prob.cost[i][pick[i]] and loss[i][c] < loss[i][pick[i]] and
         S.cost(prob, pick) - prob.cost[i][pick[i]] + prob.cost[i][c] <= babs then fill_ok = false end
    end
  end
  local again = S.greedy(prob, loss, babs)
  if table.concat(again, ",") ~= table.concat(pick, ",") then over = over + 100 end
end
T.eq("search-6.1", over, 0, detail)
T.ok("search-6.2", fill_ok, "greedy leaves no helpful raise that fits")
T.eq("search-6.3", S.greedy(prob, loss, S.budget_abs(prob, 1)), S.uniform(prob, 1))
T.eq("search-6.4", S.greedy(prob, loss, S.budget_abs(prob, lo)), S.cheapest(prob))
T.errors("search-6.5", function() S.greedy(prob, loss, S.budget_abs(prob, lo) * 0.99) end, "greedy: no configuration within")

-- 7. the ILP against brute force
local function toy(costs, losses)
  local p = {n = #costs, cost = costs, choices = {}, fp_total = 1, units = {blocks = {}, block = {}}}
  for c = 1, #costs[1] do p.choices[c] = {name = "c" .. c, w = 8, a = 8} end
  return {p, losses}
end
do
  local probs = {
    {toy({{10, 6, 3}, {8, 5, 1}, {7, 7, 2}}, {{0, 0.5, 2}, {0, 0.1, 3}, {0, 0.2, 0.3}}), {25, 18, 12, 9, 6}},
    {toy({{4, 2}, {4, 2}, {6, 3}, {9, 1}}, {{0, 1}, {0, 1.5}, {0, 0.4}, {0, 2}}), {23, 16, 12, 10, 8}},
  }
  -- a random one, five layers, four choices each
  local rc, rl = {}, {}
  local r = S.rng(5)
  for i = 1, 5 do
    rc[i], rl[i] = {}, {}
    local cst, l = 20, 0
    for c = 1, 4 do
      rc[i][c], rl[i][c] = cst, l
      cst, l = cst - 1 - r.int(5), l + r.next()
    end
  end
  local cmin, cmax = 0, 0
  for i = 1, 5 do cmin, cmax = cmin + rc[i][4], cmax + rc[i][1] end
  probs[#probs + 1] = {toy(rc, rl), {cmax, cmin + 0.75 * (cmax - cmin), cmin + 0.5 * (cmax - cmin), cmin + 1, cmin}}
  local n, bad = 0, {}
  for k, pb in ipairs(probs) do
    local p, l = pb[1][1], pb[1][2]
    for _, b in ipairs(pb[2]) do
      local want, wl = S.brute(p, l, b)
      local got = S.ilp(p, l, b)
      n = n + 1
      if math.abs(S.sum_loss(l, got) - wl) > 1e-9 or S.cost(p, got) > b then
        bad[#bad + 1] = string.format("problem %d budget %g: ilp %s (%g) brute %s (%g)", k, b, table.concat(got, ","),
          S.sum_loss(l, got), table.concat(want, ","), wl)
      end
    end
  end
  T.eq("search-7.1", bad, {})
  -- the tiny model's own sensitivities: 3^8 = 6561 configurations enumerated
  local bad2 = {}
  for k = 0, 10 do
    local babs = S.budget_abs(prob, lo + (1 - lo) * k / 10)
    local want, wl = S.brute(prob, loss, babs)
    local got = S.ilp(prob, loss, babs)
    if math.abs(S.sum_loss(loss, got) - wl) > 1e-9 or S.cost(prob, got) > babs then
      bad2[#bad2 + 1] = string.format("%d: %s vs %s", k, table.concat(got, ","), table.concat(want, ","))
    end
    -- greedy is never better than the optimum
    if S.sum_loss(loss, S.greedy(prob, loss, babs)) < wl - 1e-9 then bad2[#bad2 + 1] = "greedy beat brute force" end
  end
  T.eq("search-7.2", bad2, {})
  T.ok("search-7.3", n == 15, "hand-made budgets checked: " .. n)
end
do -- a build without qr.ilp refuses, saying so
  local ilp = qr.ilp
  qr.ilp = nil
  T.errors("search-7.4", function() S.ilp(prob, loss, S.budget_abs(prob, 0.5)) end, "qr.ilp is not available in this build")
  qr.ilp = ilp
end

-- 8. evo: never over budget on many budgets, deterministic under a seed
local function run_evo(b, seed, guided)
  local babs = S.budget_abs(prob, b)
  local seen_over = 0
  local fit = function(p)
    if S.cost(prob, p) > babs then seen_over = seen_over + 1 end
    return sc:value(sc:get(S.config(prob, p), "main", "evo"))
  end
  local pick, v, info = S.evo(prob, babs, fit, {pop = 6, gens = 3, elite = 2, seed = seed,
    seeds = {(S.greedy(prob, loss, babs))}, loss = guided and loss or nil})
  return pick, v, info, seen_over
end
local bad8 = {}
for k = 0, 8 do
  local b = lo + (1 - lo) * k / 8
  local guided = k % 2 == 0 -- the repair guided by the sensitivities, or random
  local pick, v, info, ov = run_evo(b, 7, guided)
  if ov > 0 or S.cost(prob, pick) > S.budget_abs(prob, b) then bad8[#bad8 + 1] = "over at " .. b end
  local pick2, v2, info2 = run_evo(b, 7, guided)
  if table.concat(pick, ",") ~= table.concat(pick2, ",") or v ~= v2 or T.show(info.history) ~= T.show(info2.history) then
    bad8[#bad8 + 1] = "not deterministic at " .. b
  end
  -- the best it returns is the best it scored
  for _, h in ipairs(info.history) do if h.best < v then bad8[#bad8 + 1] = "returned not the best at " .. b end end
end
T.eq("search-8.1", bad8, {})
local r1, r2 = S.rng(3), S.rng(3)
local same = true
for _ = 1, 100 do same = same and r1.next() == r2.next() end
T.ok("search-8.2", same, "the generator is deterministic")
T.ok("search-8.3", S.rng(3).next() ~= S.rng(4).next(), "seeds differ")

-- 9. configuration files: read back identically; an unknown layer refused, naming it
local bad9 = {}
local picks = {S.uniform(prob, 1), S.uniform(prob, 3), mixed, {3, 3, 3, 3, 1, 1, 1, 1}, {2, 1, 2, 1, 2, 1, 2, 1}}
for k, p in ipairs(picks) do
  local cfg = S.config(prob, p, "cfg-" .. k)
  local path = S.write_config(dir .. "/cfg-" .. k .. ".lua", cfg, m, {"test"})
  local back = P.load(path, m)[1]
  local ok, where = S.same_layers(back, cfg)
  if not ok or back.name ~= cfg.name then bad9[#bad9 + 1] = k .. ": " .. tostring(where) end
end
T.eq("search-9.1", bad9, {})
-- weight groups (precision.lua's g) as choices: ordered by precision, costed, written and read back
local gch = S.parse_choices("w4a8,fp,w4a8g8,w8a8,w4a8g16")
local gnames = {}
for i, c in ipairs(gch) do gnames[i] = c.name end
T.eq("search-9.5", gnames, {"fp", "w8a8", "w4a8g8", "w4a8g16", "w4a8"})
local gp = S.problem(m, gch, "bytes")
local gpick = {1, 3, 4, 5, 3, 3, 2, 4}
local gcfg = S.config(gp, gpick, "grouped")
T.near("search-9.6", S.ratio(gp, gpick), P.cost(gcfg, m).bytes_ratio, 1e-15)
T.ok("search-9.7", S.ratio(gp, S.uniform(gp, 3)) > S.ratio(gp, S.uniform(gp, 4)) and
  S.ratio(gp, S.uniform(gp, 4)) > S.ratio(gp, S.uniform(gp, 5)), "a smaller group stores more scales")
S.write_config(dir .. "/grouped.lua", gcfg, m)
T.ok("search-9.8", S.same_layers(P.load(dir .. "/grouped.lua", m)[1], gcfg) and
  S.config_text(gcfg):find('"w4a8g8"', 1, true) ~= nil, S.config_text(gcfg))
-- a group choice takes the adapter trained for its (w, a) when the bank has no group
local grun, gnear = adapters(gcfg)
T.eq("search-9.9", {grun.layers[2].adapter, grun.layers[3].adapter, gnear}, {2, 2, 5})
-- unstructured names: one entry per layer
local odd = {{name = "enc.a", in_features = 4, out_features = 4}, {name = "enc.b", in_features = 4, out_features = 4},
  {name = "head", in_features = 4, out_features = 8}}
local op = S.problem(odd, choices, "bytes")
local ocfg = S.config(op, {3, 3, 1}, "odd")
T.ok("search-9.2", S.config_text(ocfg):find('{"enc.a", "w4a8"}', 1, true) ~= nil, S.config_text(ocfg))
S.write_config(dir .. "/odd.lua", ocfg, odd)
T.ok("search-9.3", S.same_layers(P.load(dir .. "/odd.lua", odd)[1], ocfg), "unstructured names read back")
local f = assert(io.open(dir .. "/unknown.lua", "w"))
f:write('return {name = "unknown", {"h.0.attn.c_attn", "w8a8"}, {"h.7.mlp.c_fc", "w4a8"}}\n')
f:close()
T.errors("search-9.4", function() P.load(dir .. "/unknown.lua", m) end, "pattern 'h.7.mlp.c_fc' matches no layer")

-- 10. Spearman (ties averaged) and the Pareto front
T.near("search-10.1", S.spearman({1, 2, 2, 3}, {1, 3, 2, 4}), 4.5 / math.sqrt(22.5), 1e-12)
T.near("search-10.2", S.spearman({1, 2, 3, 4, 5}, {5, 4, 3, 2, 1}), -1, 1e-12)
T.eq("search-10.3", S.ranks({3, 1, 3, 2, 3}), {4, 1, 4, 2, 4})
T.eq("search-10.4", S.spearman({1, 1, 1}, {1, 2, 3}), nil)
local pts = {{x = 1, y = 5}, {x = 2, y = 3}, {x = 2, y = 4}, {x = 3, y = 3}, {x = 4, y = 1}, {x = 0.5, y = 9}}
local front = S.pareto(pts, function(p) return p.x end, function(p) return p.y end)
local fx = {}
for _, p in ipairs(front) do fx[#fx + 1] = p.x end
T.eq("search-10.5", fx, {0.5, 1, 2, 4})

-- 11. the whole search, end to end, with the synthetic dev evaluation; then a rerun
local evaluated = 0
local function evaluate(model)
  evaluated = evaluated + 1
  local preds, sf = {}, 0
  for i, q in ipairs(held) do
    local f1 = math.exp(-model:loss(q.ids) / 4)
    preds[i] = {f1 = f1, em = f1 > 0.4 and 1 or 0}
    sf = sf + f1
  end
  return {em = 0, f1 = 100 * sf / #held, em_ci = {0, 0}, f1_ci = {0, 100}, n = #held, seconds = 0, predictions = preds}
end
local run_dir = dir .. "/run"
local chk2 = S.check{budget = "0.2,0.3", method = "greedy,ilp,evo"}
local o = {choices = choices, metric = "bytes", budgets = chk2.budgets, methods = chk2.methods, sens = chk2.sens,
  separate = {kinds = true, blocks = true}, score = "kl", pop = 6, gens = 3, elite = 2, seed = 5, corr_min = 12,
  plot = false, progress = false}
local function run_all()
  local lines = {}
  local doc, _, scr = S.run{model = m, train_cfgs = train_cfgs, slices = {main = main_slice, calib = main_slice,
    sens = sens_slice}, o = o, run_dir = run_dir, evaluate = evaluate, cache_key = "tiny", meta = {key = "tiny"},
    say = function(x) lines[#lines + 1] = x end}
  return doc, scr, table.concat(lines, "\n")
end
local doc, scr, out = run_all()
local over11, files = {}, 0
for _, r in ipairs(doc.found) do
  if r.bytes_ratio > r.budget then over11[#over11 + 1] = r.name end
  local back = P.load(r.file, m)[1]
  if back.name == r.name and S.same_layers(back, S.config(prob, S.pick_of(prob, back), r.name)) then files = files + 1 end
end
T.eq("search-11.1", over11, {})
T.eq("search-11.2", {#doc.found, files}, {#o.methods * 2, #o.methods * 2})
T.ok("search-11.3", #doc.confirm >= 12 and evaluated == #doc.confirm, string.format("%d dev evaluations for %d rows",
  evaluated, #doc.confirm))
T.ok("search-11.4", doc.spearman.n == #doc.confirm and doc.spearman.kl ~= nil and doc.spearman.nll ~= nil,
  doc.spearman.sentence)
local missing = {}
for _, r in ipairs(doc.found) do table.insert(doc.presets, r) end
for _, r in ipairs(doc.presets) do
  local hit = false
  for _, p in ipairs(doc.pareto.points) do
    hit = hit or (p.value == r.value and p.bytes_ratio == r.bytes_ratio and p.bitops_ratio == r.bitops_ratio)
  end
  if not hit then missing[#missing + 1] = r.name end
end
for _ = 1, #doc.found do table.remove(doc.presets) end
T.ok("search-11.5", #missing == 0 and #doc.pareto.points == #scr:entries("main") and #doc.pareto.bytes >= 2,
  string.format("%d points, front %d, missing %s", #doc.pareto.points, #doc.pareto.bytes, table.concat(missing, ",")))
T.eq("search-11.6", #doc.by_budget, 2)
local rj = qr.json.read(run_dir .. "/results.json")
T.ok("search-11.7", rj and #rj.confirm == #doc.confirm and qr.json.read(run_dir .. "/sensitivity.json") ~= nil,
  "results.json and sensitivity.json written")
T.ok("search-11.8", out:find("Spearman rank correlation", 1, true) ~= nil, "the Spearman sentence is printed")
local first = {}
for _, r in ipairs(doc.found) do first[r.name] = r.value end
local before = evaluated
local doc2, scr2 = run_all()
T.eq("search-11.9", {scr2.computed, evaluated - before}, {0, 0}) -- the rerun recomputes nothing
local same2 = #doc2.found == #doc.found
for _, r in ipairs(doc2.found) do same2 = same2 and first[r.name] == r.value end
T.ok("search-11.10", same2, "the rerun finds the same configurations")
T.near("search-11.11", doc2.spearman.kl, doc.spearman.kl, 0)

-- 12. plots (gnuplot is optional: skipped when it is not installed)
if os.execute("command -v gnuplot >/dev/null 2>&1") then
  local hp, why = S.plot_heatmap(run_dir, prob, doc.sens or qr.json.read(run_dir .. "/sensitivity.json"))
  T.ok("search-12.1", hp ~= nil and io.open(hp, "rb") ~= nil, tostring(why))
  local pp, why2 = S.plot_pareto(run_dir, doc)
  T.ok("search-12.2", pp ~= nil and io.open(pp, "rb") ~= nil, tostring(why2))
else
  T.skip("search-12.1", "no gnuplot")
end

os.execute("rm -rf '" .. dir .. "'")
-- the group-wise choices offered by --groups: each <= 4-bit choice without a group, once per group
T.eq("groups-1.1", S.with_groups("fp,w8a8,w4a8", "32"), "fp,w8a8,w4a8,w4a8g32")
T.eq("groups-1.2", S.with_groups("fp,w8a8,w4a8,w2a8", "32,64"), "fp,w8a8,w4a8,w4a8g32,w4a8g64,w2a8,w2a8g32,w2a8g64")
T.eq("groups-1.3", S.with_groups("fp,w4a8,w4a8g32", "32"), "fp,w4a8,w4a8g32")
T.eq("groups-1.4", S.with_groups("fp,w8a8,w4a8", ""), "fp,w8a8,w4a8")
T.errors("groups-1.5", function() S.with_groups("fp,w4a8", "1") end, "--groups: '1'")
T.done()
