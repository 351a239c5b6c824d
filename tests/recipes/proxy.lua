-- proxy.lua - the configuration proxy (core/train/proxy.c, model:proxy and
-- model:proxy_ref) on a tiny random Llama (2 layers, 64 wide, vocab 97),
-- 21 sequences of 6..40 tokens with 1..6 answer positions each:
--   proxy-1  the NLL equals a direct computation, one m:logits(prefix) per
--            answer position, log-softmax in Lua, mean per example then over
--            examples (fp, w8a8, w4a4), max difference printed. fp: every
--            example within 1e-6 (a padded batch vs one prefix at a time,
--            float32). Quantized: at most a quarter of the 21 examples off
--            by more than 1e-6, none by more than 1e-3, the mean within
--            1e-4: a last-bit difference between the two forwards can
--            cross a rounding boundary of the fake quantizer
--            (docs/TRAINING.md, determinism). How often depends on the
--            BLAS kernels: once at w8a8 on the AMD EPYC (3.2e-4 on example
--            10), twice on an Intel Xeon with OpenBLAS's own kernels
--            (3.19e-4; scripts/probe_kernels.sh measures the same effect
--            on answers)
--   proxy-2  KL of fp against its own reference is exactly 0 (same batch
--            size); with another batch size it is below 1e-6
--   proxy-3  under quantized configurations KL >= 0 for every example,
--            larger at w4a4 than at w8a8; KL equals a direct computation
--            from m:logits at fp and at w4a4 (relative 1e-3 + 1e-7
--            absolute), max difference printed
--   proxy-4  topk references: KL of fp against them is exactly 0; KL_k is
--            a lower bound of the exact KL for every example, and close to
--            it at k = V - 1; their memory is what proxy.h says
--   proxy-5  bad input is refused naming what is wrong: no sequences, a
--            sequence without an answer token (its index), ids outside the
--            vocabulary, targets not as long as ids, a reference built on
--            other sequences, unknown options, a topk out of range; and
--            proxy_ref puts the model's configuration back
--   proxy-6  shared = true (a common prefix through the KV cache)
--   proxy-7  model:proxy_prefix (a prefix kept across calls)
--   proxy-8  the block-input cache (model:proxy_cache) on a tiny Llama and a
--            tiny GPT-2 (4 blocks, a LoRA bank of 2 slots trained 2 steps):
--            built at the base (fp, slot 0), the evaluation from the cache
--            of a configuration lowering one layer of the first, a middle
--            and the last block, an adapter only, one kind in every block,
--            and the base itself gives every example's NLL and KL EXACTLY
--            the uncached ones (max |diff| 0, printed), also with another
--            batch size (3: 7 batches of other padded lengths); it skips
--            the blocks before the first one changed (0, 2, 3, 1, 0, 4);
--            a stale cache is refused naming why (adapters loaded, lora()
--            again, quantize again, a training step, other sequences,
--            another batch, another model), as are a cache with shared or
--            prefix, a closed one and one over max_mb (naming the bytes);
--            its size is n_layer x padded tokens x n_embd x 4 bytes; the
--            seconds of every single-layer job, cached and not, printed
--            (a ratio, no bound: timing on a shared machine)
local T = require("qr.qrtest")
local P = require("qr.precision")

local V = 97
local m = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = V,
  n_ctx = 64, seed = 5}
m:quantize{weight = "minmax", act = "minmax"}

local s = 11
local function rnd(n) s = (s * 1103515245 + 12345) % 2147483648; return s % n end
local seqs = {}
for i = 1, 21 do
  local len = 6 + rnd(35)
  local na = 1 + rnd(math.min(6, len - 1)) -- answer positions: the last na
  local ids, tg = {}, {}
  for j = 1, len do ids[j] = 1 + rnd(V - 1) end
  for j = 1, len do tg[j] = -1 end
  for j = len - na + 1, len do tg[j] = j < len and ids[j + 1] or 2 end -- the last predicts an end marker
  seqs[i] = {ids = ids, targets = tg}
end
local tokens = 0
for _, q in ipairs(seqs) do for _, t in ipairs(q.targets) do if t >= 0 then tokens = tokens + 1 end end end

local function log_softmax(l)
  local mx = -math.huge
  for _, x in ipairs(l) do if x > mx then mx = x end end
  local s = 0
  for _, x in ipairs(l) do s = s + math.exp(x - mx) end
  local lse = mx + math.log(s)
  local out = {}
  for i, x in ipairs(l) do out[i] = x - lse end
  return out
end

-- every answer position's log-softmax under the model's current configuration
local function direct_rows(q)
  local rows = {}
  for j, t in ipairs(q.targets) do
    if t >= 0 then
      local prefix = table.move(q.ids, 1, j, 1, {})
      rows[#rows + 1] = {lp = log_softmax(m:logits(prefix)), t = t}
    end
  end
  return rows
end

local function direct_nll()
  local per, sum = {}, 0
  for i, q in ipairs(seqs) do
    local e, rows = 0, direct_rows(q)
    for _, r in ipairs(rows) do e = e - r.lp[r.t + 1] end
    per[i] = e / #rows
    sum = sum + per[i]
  end
  return sum / #seqs, per
end

local cfgs = P.load("fp,w8a8,w4a4", m)
local ref = m:proxy_ref(seqs)

-- proxy-1: NLL against the direct computation
for _, cfg in ipairs(cfgs) do
  m:precision(cfg)
  local r = m:proxy(seqs, {ref = ref})
  local want, per = direct_nll()
  local maxd, off = math.abs(r.nll - want), 0
  for i = 1, #seqs do
    local d = math.abs(r.per[i] - per[i])
    maxd = math.max(maxd, d)
    if d > 1e-6 then off = off + 1 end
  end
  local detail = string.format("nll %.7f, direct %.7f, max diff %.2e, %d examples off by more than 1e-6", r.nll,
    want, maxd, off)
  if cfg.name == "fp" then
    T.ok("proxy-1." .. cfg.name, maxd <= 1e-6, detail)
  else
    T.ok("proxy-1." .. cfg.name, off <= #seqs // 4 and maxd <= 1e-3 and math.abs(r.nll - want) <= 1e-4, detail)
  end
  print(string.format("proxy-1.%s: %s, kl %.3e", cfg.name, detail, r.kl))
  T.eq("proxy-1." .. cfg.name .. ".n", {r.n, r.tokens, #r.per, #r.per_kl}, {#seqs, tokens, #seqs, #seqs})
end

-- proxy-2: fp against its own reference
m:precision(cfgs[1])
local r = m:proxy(seqs, {ref = ref})
T.eq("proxy-2.1 fp KL is exactly 0", r.kl, 0.0)
local allzero = true
for _, k in ipairs(r.per_kl) do allzero = allzero and k == 0 end
T.ok("proxy-2.2 every example's KL is 0", allzero)
local r3 = m:proxy(seqs, {ref = ref, batch = 3})
T.ok("proxy-2.3 another batch size: KL below 1e-6", math.abs(r3.kl) < 1e-6, string.format("kl %.3e", r3.kl))
print(string.format("proxy-2.3: fp KL with batch 3 against a batch-8 reference: %.3e", r3.kl))
T.eq("proxy-2.4 no ref: no kl", {m:proxy(seqs).kl, m:proxy(seqs).per_kl}, {nil, nil})

-- proxy-3: quantized
local kl = {}
for k = 2, 3 do
  m:precision(cfgs[k])
  local q = m:proxy(seqs, {ref = ref})
  kl[cfgs[k].name] = q
  local nonneg = q.kl >= 0
  for _, x in ipairs(q.per_kl) do nonneg = nonneg and x >= 0 end
  T.ok("proxy-3.1." .. cfgs[k].name .. " KL >= 0", nonneg, string.format("kl %.3e", q.kl))
end
T.ok("proxy-3.2 w4a4 diverges more than w8a8", kl.w4a4.kl > kl.w8a8.kl,
  string.format("w8a8 %.3e, w4a4 %.3e", kl.w8a8.kl, kl.w4a4.kl))
do -- KL directly, first 5 sequences
  local fp_rows, q_rows = {}, {}
  m:precision(cfgs[1])
  for i = 1, 5 do fp_rows[i] = direct_rows(seqs[i]) end
  m:precision(cfgs[3])
  for i = 1, 5 do q_rows[i] = direct_rows(seqs[i]) end
  local maxd, ok = 0, true
  for i = 1, 5 do
    local e = 0
    for k, pr in ipairs(fp_rows[i]) do
      local qr_ = q_rows[i][k]
      for j = 1, V do e = e + math.exp(pr.lp[j]) * (pr.lp[j] - qr_.lp[j]) end
    end
    e = e / #fp_rows[i]
    local d = math.abs(e - kl.w4a4.per_kl[i])
    maxd = math.max(maxd, d)
    ok = ok and d <= 1e-3 * e + 1e-7
  end
  T.ok("proxy-3.3 KL equals the direct computation", ok, string.format("max diff %.2e", maxd))
  print(string.format("proxy-3.3: w4a4 KL of 5 examples vs direct: max diff %.2e (kl %.3e)", maxd, kl.w4a4.kl))
end

-- proxy-4: top-k references
local rows = ref:info().rows
T.eq("proxy-4.1 full reference memory", {ref:info().bytes, ref:info().topk, ref:info().n, rows},
  {rows * (V * 4 + 8), 0, #seqs, tokens})
for _, k in ipairs{1, 5, V - 1} do
  local rk = m:proxy_ref(seqs, {topk = k})
  T.eq("proxy-4.2.k" .. k .. " memory", rk:info().bytes, rows * (k * 8 + 16))
  m:precision(cfgs[1])
  T.eq("proxy-4.3.k" .. k .. " fp KL is exactly 0", m:proxy(seqs, {ref = rk}).kl, 0.0)
  m:precision(cfgs[3])
  local b = m:proxy(seqs, {ref = rk})
  local lower = true
  for i, x in ipairs(b.per_kl) do lower = lower and x <= kl.w4a4.per_kl[i] + 1e-12 and x >= -1e-12 end
  T.ok("proxy-4.4.k" .. k .. " a lower bound of the exact KL", lower,
    string.format("KL_%d %.4e, exact %.4e", k, b.kl, kl.w4a4.kl))
  print(string.format("proxy-4: w4a4 KL with a top-%d reference %.4e, exact %.4e (%s)", k, b.kl, kl.w4a4.kl,
    tostring(rk)))
  if k == V - 1 then
    T.near("proxy-4.5 k = V - 1 is the exact KL", b.kl, kl.w4a4.kl, 1e-9)
  end
end

-- proxy-5: refusals
T.errors("proxy-5.1 no sequences", function() m:proxy({}) end, "no sequences")
T.errors("proxy-5.2 no sequences (ref)", function() m:proxy_ref({}) end, "no sequences")
local bad = {seqs[1], seqs[2], {ids = {1, 2, 3}, targets = {-1, -1, -1}}}
T.errors("proxy-5.3 no answer token, named", function() m:proxy(bad) end,
  "sequence 3 (1-based) has no answer token")
bad[3] = {ids = {1, V, 3}, targets = {-1, 3, 4}}
T.errors("proxy-5.4 id outside the vocabulary", function() m:proxy(bad) end,
  "sequence 3 (1-based), position 2: token id 97 is outside the vocabulary [0, 97)")
bad[3] = {ids = {1, 2, 3}, targets = {-1, 3, V}}
T.errors("proxy-5.5 target outside the vocabulary", function() m:proxy_ref(bad) end, "position 3: target 97")
bad[3] = {ids = {1, 2, 3}, targets = {-1, 3}}
T.errors("proxy-5.6 targets shorter than ids", function() m:proxy(bad) end,
  "seqs[3].targets must be an array as long as ids (3)")
bad[3] = {ids = {1, 2.5, 3}, targets = {-1, 3, 4}}
T.errors("proxy-5.7 a non-integer id", function() m:proxy(bad) end, "seqs[3] position 2")
T.errors("proxy-5.8 a reference of other sequences", function() m:proxy({seqs[1], seqs[2]}, {ref = ref}) end,
  "the reference was built on other sequences (21 sequences")
T.errors("proxy-5.9 unknown option", function() m:proxy(seqs, {reff = ref}) end, "unknown option 'reff'")
T.errors("proxy-5.10 topk out of range", function() m:proxy_ref(seqs, {topk = V}) end, "topk 97")
T.errors("proxy-5.11 batch 0", function() m:proxy(seqs, {batch = 0}) end, "batch 0")
T.errors("proxy-5.12 ref of the wrong type", function() m:proxy(seqs, {ref = {}}) end, "ref must be a qr.ProxyRef")
local long = {ids = {}, targets = {}}
for j = 1, 65 do long.ids[j] = 1; long.targets[j] = 1 end
T.errors("proxy-5.13 longer than the context", function() m:proxy({long}) end,
  "sequence 1 (1-based) has 65 tokens, more than the model's context of 64")
m:precision(cfgs[2])
local before = m:loss(seqs[1].ids)
m:proxy_ref(seqs)
T.eq("proxy-5.14 proxy_ref puts the configuration back", m:loss(seqs[1].ids), before)
local cur = m:proxy_ref(seqs, {current = true})
T.eq("proxy-5.15 current = true: the reference is the current configuration", m:proxy(seqs, {ref = cur}).kl, 0.0)
-- shared = true: sequences with a common prefix (an attack's candidates)
-- run it once through the KV cache; the scores equal the full forward's up
-- to summation order (at fp within 1e-6 here; under activation
-- quantization a last-bit difference can flip a rounding, so only fp is
-- held to it)
do
  local P = require("qr.precision")
  m:precision(P.load("fp", m)[1])
  local base = seqs[1]
  local cands = {}
  for k = 1, 5 do
    local ids, tg = {}, {}
    for i, v in ipairs(base.ids) do ids[i] = v end
    for i, v in ipairs(base.targets) do tg[i] = v end
    local first = #ids
    for i, v in ipairs(tg) do if v >= 0 then first = math.min(first, i) end end
    local at = math.max(2, first - k) -- change one token shortly before the answer
    ids[at] = (ids[at] + k) % V
    if at >= 2 and tg[at - 1] >= 0 then tg[at - 1] = ids[at] end
    cands[k] = {ids = ids, targets = tg}
  end
  local a, b = m:proxy(cands, {batch = 2}), m:proxy(cands, {batch = 2, shared = true})
  local md = 0
  for i = 1, #cands do md = math.max(md, math.abs(a.per[i] - b.per[i])) end
  print(string.format("  shared prefix %d tokens: max |nll diff| %.3g (tolerance 1e-6)", b.shared_prefix, md))
  T.ok("proxy-6.1 shared: a common prefix was found", b.shared_prefix >= 1, tostring(b.shared_prefix))
  T.ok("proxy-6.2 shared = full forward at fp", md <= 1e-6, string.format("max diff %.3g", md))
  local two = {cands[1], {ids = {}, targets = cands[2].targets}}
  for i, v in ipairs(cands[2].ids) do two[2].ids[i] = v end
  two[2].ids[1] = (two[1].ids[1] + 1) % V -- the first tokens differ: no common prefix
  local c2 = m:proxy(two, {shared = true})
  T.eq("proxy-6.3 no common prefix: nothing shared", c2.shared_prefix, 0)
  T.near("proxy-6.3b ... and the full forward's scores", c2.per[2], m:proxy(two).per[2], 0)
  T.errors("proxy-6.4 shared is checked like the other keys", function() m:proxy(cands, {sharde = true}) end, "sharde")
end
-- model:proxy_prefix: a prefix kept across calls, per precision configuration
do
  local P = require("qr.precision")
  local base = seqs[1]
  local first = #base.ids
  for i, v in ipairs(base.targets) do if v >= 0 then first = math.min(first, i) end end
  local n = first - 2
  local pre = {}
  for i = 1, n do pre[i] = base.ids[i] end
  local pc = m:proxy_prefix(pre, {slots = 2})
  local function variant(k)
    local ids, tg = {}, {}
    for i, v in ipairs(base.ids) do ids[i] = v end
    for i, v in ipairs(base.targets) do tg[i] = v end
    ids[n + 1] = (ids[n + 1] + k) % V
    return {ids = ids, targets = tg}
  end
  local md = 0
  for _, c in ipairs{"fp", "w4a4", "fp", "w8a8", "fp"} do
    m:precision(P.load(c, m)[1])
    for k = 0, 3 do
      local s = variant(k)
      local d = math.abs(m:proxy({s}).per[1] - m:proxy({s}, {prefix = pc}).per[1])
      if c == "fp" then md = math.max(md, d) end
    end
  end
  local inf = pc:info()
  print(string.format("  prefix %d tokens: max |nll diff| at fp %.3g (tolerance 1e-6); %d hits, %d misses, %d kept",
    n, md, inf.hits, inf.misses, inf.kept))
  T.ok("proxy-7.1 prefix = full forward at fp", md <= 1e-6, string.format("%.3g", md))
  -- fp, w4a4, fp (hit), w8a8 (evicts w4a4: 2 slots), fp (hit): 3 misses, 17 hits
  T.eq("proxy-7.2 one computation per configuration, LRU over 2 slots", {inf.misses, inf.hits, inf.kept}, {3, 17, 2})
  local bad = variant(0)
  bad.ids[1] = (bad.ids[1] + 1) % V
  T.errors("proxy-7.3 a sequence that does not start with the prefix", function() m:proxy({bad}, {prefix = pc}) end,
    "does not start with the prefix")
  local inside = variant(0)
  inside.targets[1] = inside.ids[2]
  T.errors("proxy-7.4 a scored position inside the prefix", function() m:proxy({inside}, {prefix = pc}) end,
    "inside the prefix")
  T.errors("proxy-7.5 slots are bounded", function() m:proxy_prefix(pre, {slots = 0}) end, "slots 0")
  T.errors("proxy-7.6 ids are checked", function() m:proxy_prefix({V + 5}) end, "outside the vocabulary")
  local other = qr.model_new{arch = "llama", n_layer = 1, n_embd = 16, n_head = 2, n_kv_head = 1, n_vocab = V,
    n_ctx = 64, seed = 9}
  T.errors("proxy-7.7 another model's prefix", function() other:proxy({variant(0)}, {prefix = pc}) end,
    "another model")
  -- the weights change under the same precision (a training step of the active adapter): the kept
  -- keys and values are not found again, they are recomputed, and the result is still the full forward's
  local tm = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = V,
    n_ctx = 128, seed = 5}
  tm:quantize{weight = "minmax", act = "minmax"}
  local one = P.load({"fp"}, tm)
  tm:lora{rank = 2, alpha = 4, slots = P.assign_adapters(one), seed = 1}
  local tpc = tm:proxy_prefix(pre, {slots = 2})
  local s = variant(1)
  tm:precision(one[1])
  tm:proxy({s}, {prefix = tpc}) -- kept at this precision
  qr.train{model = tm, configs = one, data = seqs, steps = 1, batch = 4, seq = 64, lr = 1e-2, seed = 2, progress = false}
  tm:precision(one[1])
  local before = tpc:info().misses
  local d = math.abs(tm:proxy({s}).per[1] - tm:proxy({s}, {prefix = tpc}).per[1])
  T.ok("proxy-7.8 a weights change is a miss", tpc:info().misses == before + 1,
    string.format("misses %d -> %d", before, tpc:info().misses))
  T.ok("proxy-7.9 ... and the recomputed prefix = full forward", d <= 1e-6, string.format("%.3g", d))
end
-- proxy-8: the block-input cache
local function cache_suite(arch)
  local id = "proxy-8." .. arch
  local L = 4
  local cm = qr.model_new{arch = arch, n_layer = L, n_embd = 32, n_head = 2, n_kv_head = arch == "llama" and 1 or nil,
    n_vocab = V, n_ctx = 64, seed = 7}
  cm:quantize{weight = "minmax", act = "minmax"}
  local two = P.load("fp,w4a4", cm)
  cm:lora{rank = 2, alpha = 4, slots = P.assign_adapters(two), seed = 3}
  -- B != 0: the adapters take part (2 steps at a large rate)
  qr.train{model = cm, configs = two, data = seqs, steps = 2, batch = 4, seq = 64, lr = 5e-2, seed = 1, progress = false}
  local base, low = two[1], two[2]
  local per = #base.layers // L
  local function with(layers, fields)
    local c = {name = "job", layers = {}}
    for i, l in ipairs(base.layers) do c.layers[i] = {name = l.name, w = l.w, a = l.a, adapter = l.adapter} end
    for _, i in ipairs(layers) do
      for _, f in ipairs(fields or {"w", "a", "adapter"}) do c.layers[i][f] = low.layers[i][f] end
    end
    return c
  end
  local kind = {}
  for b = 0, L - 1 do kind[#kind + 1] = b * per + 2 end -- the second linear of every block
  local jobs = {
    {"first block", with({1}), 0},
    {"middle block", with({2 * per + per}), 2},
    {"last block", with({(L - 1) * per + 1}), 3},
    {"an adapter only, block 1", with({per + 1}, {"adapter"}), 1},
    {"one kind in every block", with(kind), 0},
    {"the base", with({}), L},
  }
  cm:precision(base)
  local ref = cm:proxy_ref(seqs, {current = true})
  for _, batch in ipairs{8, 3} do
    cm:precision(base)
    local c = cm:proxy_cache(seqs, {batch = batch})
    -- the size: n_layer x padded tokens x n_embd x 4 bytes, the batches of run_batches
    local order = {}
    for i, q in ipairs(seqs) do order[i] = {len = #q.ids, i = i} end
    table.sort(order, function(x, y) return x.len < y.len or (x.len == y.len and x.i < y.i) end)
    local padded = 0
    for s0 = 1, #order, batch do
      local last = math.min(#order, s0 + batch - 1)
      padded = padded + (last - s0 + 1) * math.min(64, (order[last].len + 31) // 32 * 32)
    end
    T.eq(id .. ".b" .. batch .. ".bytes", {c:bytes(), c:info().n, c:info().batch}, {L * padded * 32 * 4, #seqs, batch})
    for k, j in ipairs(jobs) do
      cm:precision(j[2])
      local want = cm:proxy(seqs, {ref = ref, batch = batch})
      local got = cm:proxy(seqs, {ref = ref, batch = batch, cache = c})
      local dn, dk = math.abs(got.nll - want.nll), math.abs(got.kl - want.kl)
      for e = 1, #seqs do
        dn = math.max(dn, math.abs(got.per[e] - want.per[e]))
        dk = math.max(dk, math.abs(got.per_kl[e] - want.per_kl[e]))
      end
      print(string.format("%s batch %d, %s: from block %d of %d, max |nll diff| %.3g, max |kl diff| %.3g "
        .. "(kl %.3e; tolerance 0)", id, batch, j[1], got.skipped_blocks, got.blocks, dn, dk, want.kl))
      T.ok(string.format("%s.b%d.%d exact (%s)", id, batch, k, j[1]), dn == 0 and dk == 0 and got.nll == want.nll and
        got.kl == want.kl, string.format("max |nll diff| %.3g, max |kl diff| %.3g", dn, dk))
      T.eq(string.format("%s.b%d.%d skipped blocks (%s)", id, batch, k, j[1]), {got.skipped_blocks, got.blocks},
        {j[3], L})
    end
    c:close()
  end
  -- stale caches, refused naming why
  cm:precision(base)
  local c = cm:proxy_cache(seqs)
  T.errors(id .. ".stale.data", function() cm:proxy({seqs[1], seqs[2]}, {cache = c}) end,
    "the cache was built on other sequences (21 sequences")
  T.errors(id .. ".stale.batch", function() cm:proxy(seqs, {cache = c, batch = 3}) end,
    "the cache was built with batch 8, this evaluation has batch 3")
  local other = qr.model_new{arch = arch, n_layer = L, n_embd = 32, n_head = 2, n_kv_head = arch == "llama" and 1 or nil,
    n_vocab = V, n_ctx = 64, seed = 7}
  T.errors(id .. ".stale.model", function() other:proxy(seqs, {cache = c}) end, "built for another model")
  T.errors(id .. ".shared", function() cm:proxy(seqs, {cache = c, shared = true}) end, "cache with shared")
  T.errors(id .. ".type", function() cm:proxy(seqs, {cache = ref}) end, "cache must be a qr.ProxyCache")
  local file = os.tmpname()
  assert(cm:save_adapters(file))
  assert(cm:load_adapters(file))
  os.remove(file)
  T.errors(id .. ".stale.adapters", function() cm:proxy(seqs, {cache = c}) end,
    "weights, adapters or quantizers changed since the cache was built")
  c = cm:proxy_cache(seqs)
  cm:quantize{weight = "minmax", act = "minmax"}
  T.errors(id .. ".stale.quantize", function() cm:proxy(seqs, {cache = c}) end, "quantizers changed since")
  cm:precision(base)
  c = cm:proxy_cache(seqs)
  qr.train{model = cm, configs = two, data = seqs, steps = 1, batch = 4, seq = 64, lr = 1e-3, seed = 2, progress = false}
  cm:precision(base)
  T.errors(id .. ".stale.train", function() cm:proxy(seqs, {cache = c}) end, "changed since the cache was built")
  c = cm:proxy_cache(seqs)
  cm:lora{rank = 3, alpha = 4, slots = 2, seed = 3}
  local none = P.load("fp", cm)[1]
  for _, l in ipairs(none.layers) do l.adapter = -1 end
  cm:precision(none)
  local msg = T.errors(id .. ".stale.lora", function() cm:proxy(seqs, {cache = c}) end,
    "LoRA bank was replaced since the cache was built %(2 slots, rank 2, alpha 4 then; 2, 3, 4 now%)")
  print(id .. ": " .. tostring(msg))
  local cost = 0
  T.errors(id .. ".max_mb", function() cost = cm:proxy_cache(seqs, {max_mb = 0.01}) end,
    "proxy cache: 21 sequences at batch 8 need [%d.]+ MB %(4 blocks x %d+ padded tokens x 32 x 4 bytes%), more "
    .. "than the 0.0 MB allowed %(max_mb%): use fewer sequences")
  T.errors(id .. ".max_mb.bad", function() cm:proxy_cache(seqs, {max_mb = -1}) end, "max_mb: expected a positive")
  c:close()
  T.errors(id .. ".closed", function() cm:proxy(seqs, {cache = c}) end, "attempt to use a closed qr.ProxyCache")
  _ = cost
  -- the time of the single-layer jobs (a sensitivity's), with and without the cache
  cm:quantize{weight = "minmax", act = "minmax"}
  local lcfg = P.load("fp", cm)[1]
  for _, l in ipairs(lcfg.layers) do l.adapter = -1 end
  cm:precision(lcfg)
  c = cm:proxy_cache(seqs)
  local t = {0, 0}
  for i = 1, #lcfg.layers do
    local j = P.load("fp", cm)[1]
    for _, l in ipairs(j.layers) do l.adapter = -1 end
    j.layers[i].w, j.layers[i].a = 4, 4
    cm:precision(j)
    local t0 = qr.now()
    local a = cm:proxy(seqs)
    local t1 = qr.now()
    local b = cm:proxy(seqs, {cache = c})
    t[1], t[2] = t[1] + (t1 - t0), t[2] + (qr.now() - t1)
    T.ok(id .. ".time.exact." .. i, a.nll == b.nll, string.format("%.17g vs %.17g", a.nll, b.nll))
  end
  print(string.format("%s: %d single-layer jobs: %.3fs uncached, %.3fs from the cache (%.2fx; cache built in %.3fs)",
    id, #lcfg.layers, t[1], t[2], t[1] / t[2], c:info().seconds))
end
cache_suite("llama")
cache_suite("gpt2")

T.done()
