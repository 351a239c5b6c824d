-- bench_proxy_cache.lua - what the block-input cache (model:proxy_cache,
-- core/train/proxy.h) saves the sensitivity analysis of recipes/search.lua,
-- measured in one run on the same machine (a ratio; these machines are
-- noisy, never compare figures from different runs):
--
--   nice -n 19 build/qrun scripts/bench_proxy_cache.lua [--sens-limit=1] [--blocks=0,10,20,29]
--
-- The search's sensitivity setup on the model (SmolLM2 by default): the
-- minmax quantizer, a LoRA bank for the pairs fp, w8a8, w4a8 (rank 8; B = 0
-- as made: an adapter costs the same whatever its values), --sens-limit
-- SQuAD training questions as the search's calibration prompts
-- (squad_qa.lua, --shots, --seq), the fp base with its adapter as the
-- reference. For one layer of each of --blocks lowered to w4a8 (its
-- adapter), the proxy without and with the cache of the base: the seconds
-- of each, the scores compared (they must be equal to the last bit). Then
-- the whole sensitivity (S.sens_jobs, the search's defaults) predicted
-- from the measured seconds: a job starting at block b costs the head's
-- time (measured: the base from the cache, every block skipped) plus
-- (L - b) / L of the blocks' time.
local S = require("qr.search")
local P = require("qr.precision")
local qa = require("qr.squad_qa")
local D = require("qr.sp_data")

local o = qr.opts{
  {"model", "", "a .gguf file or a Hugging Face GPT-2 directory (default: SmolLM2)"},
  {"data", qr.source_dir .. "/datasets/squad/train-sample.json", "SQuAD v1.1 JSON the prompts come from"},
  {"sens-limit", 1, "calibration questions (the search's default is 16)"},
  {"shots", 2, "worked examples in the prompts"},
  {"seq", 384, "longest sequence in tokens"},
  {"batch", 8, "sequences per proxy forward pass"},
  {"blocks", "0,10,20,29", "blocks of the layers lowered (one layer each)"},
}
local path = o.model ~= "" and o.model or assert(qr.default_model())
local m = assert(qr.model(path))
m:quantize{weight = "minmax", act = "minmax"}
local train_cfgs = P.load("fp,w8a8,w4a8", m)
m:lora{rank = 8, slots = P.assign_adapters(train_cfgs), seed = 1}
qa.set_shots(o.shots)
local seqs = D.build(m.tokenizer, qa.load(o.data, o.sens_limit), {seq = o.seq})
local tokens = 0
for _, q in ipairs(seqs) do tokens = tokens + #q.ids end
local prob = S.problem(m, S.parse_choices("fp,w8a8,w4a8"), "bytes")
local adapters = S.adapters(train_cfgs)
local base = adapters(S.config(prob, S.uniform(prob, 1), "base"))
local L = m:info().n_layer
print(string.format("bench_proxy_cache: %s, %d blocks, %d linear layers; %d sequences (%d tokens), batch %d",
  path, L, prob.n, #seqs, tokens, o.batch))

m:precision(base)
local ref = m:proxy_ref(seqs, {batch = o.batch, current = true})
local t0 = qr.now()
local cache = m:proxy_cache(seqs, {batch = o.batch})
local build_s = qr.now() - t0
print(string.format("  cache: %.1f MB, built in %.2fs", cache:bytes() / 1e6, build_s))

local function timed(opts)
  local t = qr.now()
  local r = m:proxy(seqs, opts)
  return r, qr.now() - t
end

-- the head alone: the base from the cache (no block changes)
local _, head_s = timed({ref = ref, batch = o.batch, cache = cache})
local full, cached, n, equal = 0, 0, 0, true
local blocks_s = {}
for _, b in ipairs(S.split(o.blocks)) do
  b = math.tointeger(tonumber(b))
  assert(b and b >= 0 and b < L, "--blocks: expected block indices in 0.." .. (L - 1))
  local i -- the layer of block b, cycling through the kinds
  local want_kind = prob.units.kinds[b % #prob.units.kinds + 1]
  for k = 1, prob.n do if prob.units.block[k] == b and prob.units.kind[k] == want_kind then i = k end end
  local pick = S.uniform(prob, 1)
  pick[i] = 3
  m:precision(adapters(S.config(prob, pick, "job")))
  local a, ta = timed({ref = ref, batch = o.batch})
  local c, tc = timed({ref = ref, batch = o.batch, cache = cache})
  local same = a.nll == c.nll and a.kl == c.kl
  for e = 1, #seqs do same = same and a.per[e] == c.per[e] and a.per_kl[e] == c.per_kl[e] end
  equal = equal and same
  full, cached, n = full + ta, cached + tc, n + 1
  blocks_s[#blocks_s + 1] = ta - head_s
  print(string.format("  %-32s uncached %.2fs, from block %2d of %d %.2fs (%.2fx), scores %s", prob.layers[i].name, ta,
    c.skipped_blocks, L, tc, ta / tc, same and "identical" or "DIFFER"))
end
print(string.format("measured: %d single-layer jobs, %.2fs uncached, %.2fs from the cache: %.2fx (head alone %.2fs)",
  n, full, cached, full / cached, head_s))

-- the whole sensitivity (the search's defaults: layers, kinds, blocks; kinds and blocks separately for w and a)
local jobs = S.sens_jobs(prob, {units = {layers = true, kinds = true, blocks = true},
  separate = {kinds = true, blocks = true}})
local per_block = 0
for _, s in ipairs(blocks_s) do per_block = per_block + s / L end
per_block = per_block / #blocks_s
local unc, cac, skipped = 0, build_s, 0
for _, j in ipairs(jobs) do
  local run = adapters(j.cfg)
  local first = L
  for k, l in ipairs(run.layers) do
    local bl = base.layers[k]
    if l.w ~= bl.w or l.a ~= bl.a or l.g ~= bl.g or l.adapter ~= bl.adapter then
      first = math.min(first, prob.units.block[k] or 0)
    end
  end
  skipped = skipped + first
  unc = unc + head_s + L * per_block
  cac = cac + head_s + (L - first) * per_block
end
print(string.format("predicted: the whole sensitivity (%d configurations) %s uncached, %s from the cache (%.2fx; "
  .. "%.0f%% of the blocks skipped)", #jobs, S.hms(unc), S.hms(cac), unc / cac, 100 * skipped / (#jobs * L)))
if not equal then
  io.stderr:write("bench_proxy_cache: the cached scores DIFFER from the uncached ones\n")
  os.exit(1)
end
