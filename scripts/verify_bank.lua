-- verify_bank.lua - is a retrained switchable bank the bank an rpi.lua run
-- was made with? Loads the bank of --sp-dir as rpi.lua does and recomputes,
-- on the first --limit dev questions, what the committed rpi results.json
-- recorded: every target's clean answer (the generated text, fixed
-- precisions and RPI with its draws) and, for the fixed-precision sources,
-- the victim score (the gold answer's probability) that the attacks started
-- from (score_before in adv-<attack>-<source>.jsonl). Any difference, in a
-- character or in the last bit of a score, means another bank (or another
-- machine's kernels): exit 1. Only the same bank on the same kernels passes.
--   qrun scripts/verify_bank.lua --sp-dir=runs/study/sp \
--       --rpi-dir=reports/study-smollm2-default/rpi --limit=64
-- Prints one line per target and a summary; exit 0 when everything agrees.
local qa = require("qr.squad_qa")
local P = require("qr.precision")
local E = require("qr.attack_eval")

local o = qr.opts{
  {"sp-dir", "", "the sp.lua run directory holding the bank to check (results.json + adapters.safetensors)"},
  {"rpi-dir", "", "the rpi.lua run directory whose results.json and adv-*.jsonl the bank must reproduce"},
  {"limit", 64, "dev questions to recompute (the first ones, in dev order; a multiple of --batch-eval)"},
  {"scores", 16, "victim scores to recompute per fixed source and attack file"},
  {"batch-eval", 8, "questions generated together (rpi.lua's default; batching must match the run's)"},
  {"model", "", "the model (default: the sp run's)"},
}
local function die(msg) io.stderr:write("verify_bank: ", msg, "\n") os.exit(2) end
if o.sp_dir == "" or o.rpi_dir == "" then die("give --sp-dir and --rpi-dir") end
if o.limit % o.batch_eval ~= 0 then
  die(string.format("--limit=%d: a multiple of --batch-eval (%d), so the batches are the run's", o.limit, o.batch_eval))
end
local sp = qr.json.read(o.sp_dir .. "/results.json") or die(o.sp_dir .. "/results.json: missing or unreadable")
local doc = qr.json.read(o.rpi_dir .. "/results.json") or die(o.rpi_dir .. "/results.json: missing or unreadable")
local apath = o.sp_dir .. "/adapters.safetensors"

local path = o.model ~= "" and o.model or sp.model
local model = assert(qr.model(path))
model:quantize{weight = sp.quantizer or "minmax", act = sp.quantizer or "minmax"}
local items = {}
for it in sp.configs:gmatch("[^,%s]+") do
  items[#items + 1] = it == "mlp4" and {name = "mlp4", default = "w8a8", ["*.mlp.*"] = "w4a8"} or it
end
local cfgs = P.load(items, model)
local slots = P.assign_adapters(cfgs)
model:lora{rank = sp.rank, alpha = 2 * sp.rank, slots = slots, seed = sp.seed}
assert(model:load_adapters(apath))
qa.set_shots(sp.shots or 0)
print(string.format("bank %s (SHA-256 %s), checked against %s on %s", apath, qr.sha256(apath), o.rpi_dir,
  qa.cpu_model()))

-- rpi.lua's key holds eval_data at field 3, max_new_tokens at 11, seq at 12
local kf = {}
for f in (doc.key .. "|"):gmatch("([^|]*)|") do kf[#kf + 1] = f end
local eval_data, max_new, seq = kf[3], tonumber(kf[11]) or 24, tonumber(kf[12]) or 384
local rseed = tonumber(kf[8]) or 1
local dev = qa.load(eval_data, o.limit)

local bad, checked = 0, 0
local set = {}
for _, c in ipairs(cfgs) do set[#set + 1] = c end
local targets = {}
for _, c in ipairs(cfgs) do targets[#targets + 1] = E.victim(model, {kind = "fixed", config = c}) end
targets[#targets + 1] = E.victim(model, {kind = "rpi", configs = set, seed = rseed, name = "rpi"})
for _, v in ipairs(targets) do
  local ref = doc.clean[v.name]
  if not ref then die(string.format("%s/results.json: no clean answers for '%s'", o.rpi_dir, v.name)) end
  local preds = E.answer(model, v, dev, {batch = o.batch_eval, seed = rseed, max_new_tokens = max_new})
  local diff, first = 0, nil
  for i, p in ipairs(preds) do
    local r = ref.per[dev[i].id]
    -- compared as written: the JSON writer replaces a byte that is not UTF-8 (a cut multi-byte token) by U+FFFD
    local written = qr.json.decode(qr.json.encode({p.prediction}))[1]
    if not r or r.prediction ~= written or (r.rpi or "") ~= (p.rpi or "") then
      diff = diff + 1
      first = first or string.format("%s: %q%s vs committed %q%s", dev[i].id, p.prediction,
        p.rpi and (" [" .. p.rpi .. "]") or "", r and r.prediction or "(none)", r and r.rpi and (" [" .. r.rpi .. "]") or "")
    end
  end
  checked = checked + #preds
  bad = bad + diff
  print(string.format("clean %-6s %d of %d answers identical%s", v.name, #preds - diff, #preds,
    first and ("; first difference " .. first) or ""))
end

-- victim scores the fixed-source attacks started from. Files written before
-- qr.json printed every double exactly hold cJSON's %.15g where that read
-- back within an epsilon (an ulp lost): a score is the same when it is, or
-- when its %.15g is what the file holds.
local function as_written(s, ref)
  return s == ref or tonumber(string.format("%.15g", s)) == ref
end
local by_id = {}
for _, ex in ipairs(qa.load(eval_data, 0)) do by_id[ex.id] = ex end
for _, v in ipairs(targets) do
  if v.kind == "fixed" then
    for _, attack in ipairs{"typo", "textfooler", "bert_attack"} do
      local f = io.open(string.format("%s/adv-%s-%s.jsonl", o.rpi_dir, attack, v.name))
      if f then
        local n, diff, maxd = 0, 0, 0
        for line in f:lines() do
          if n >= o.scores then break end
          local x = qr.json.decode(line)
          local ex = by_id[x.id]
          if ex and x.score_before then
            n = n + 1
            local s = E.score(v, ex, x.original, seq)
            maxd = math.max(maxd, math.abs(s - x.score_before))
            if not as_written(s, x.score_before) then diff = diff + 1 end
          end
        end
        f:close()
        checked, bad = checked + n, bad + diff
        print(string.format("score %-6s %-11s %d of %d victim scores identical as written (max |difference| %.3g)", v.name,
          attack, n - diff, n, maxd))
      end
    end
  end
end
print(string.format("verify_bank: %d of %d checks agree: %s", checked - bad, checked,
  bad == 0 and "the same bank, on the same kernels" or "ANOTHER bank (or other kernels)"))
os.exit(bad == 0 and 0 or 1)
