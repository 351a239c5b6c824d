-- probe_act_paths.lua - how far the answer NLL of the KV-cache (decode)
-- path is from the full forward's under each configuration, on the first
-- N dev questions (zero-shot prompts, no adapters): the context decoded
-- first as a kept prefix, then question and answer, as an attack's query
-- is scored, against one teacher-forced forward of the whole sequence.
-- The two paths compute the same function in a different float order; a
-- configuration whose activation quantizer turns float-level differences
-- into other levels shows it here.
--
--   qrun scripts/probe_act_paths.lua [N=32] [configs=fp,w8a32,w8a8,w4a8]
local qa = require("qr.squad_qa")
local D = require("qr.sp_data")
local P = require("qr.precision")
local n = tonumber(arg[1]) or 32
local list = {}
for c in (arg[2] or "fp,w8a32,w8a8,w4a8"):gmatch("[^,]+") do list[#list + 1] = c end
local m = assert(qr.model(qr.default_model()))
m:quantize{weight = "minmax", act = "minmax"}
qa.set_shots(0)
local dev = qa.load(qr.source_dir .. "/datasets/squad/dev-sample.json", n)
local seqs = D.build(m.tokenizer, dev, {seq = 384, max_warnings = 0})
print(string.format("%d sequences; per configuration: mean and max |decode - forward| and mean (decode - forward) "
  .. "of the answer NLL (nats/token)", #seqs))
local out = {n = #seqs, rows = {}}
for _, name in ipairs(list) do
  m:precision(P.load(name, m)[1])
  local sa, mx, sd = 0, 0, 0
  for _, s in ipairs(seqs) do
    local first
    for i, t in ipairs(s.targets) do if t >= 0 then first = first or i end end
    local pre = table.move(s.ids, 1, first - 1, 1, {})
    local pc = m:proxy_prefix(pre, {slots = 1})
    local d = m:proxy({s}, {prefix = pc}).per[1] - m:proxy({s}).per[1]
    sa, sd, mx = sa + math.abs(d), sd + d, math.max(mx, math.abs(d))
  end
  local r = {config = name, mean_abs = sa / #seqs, max_abs = mx, mean = sd / #seqs}
  out.rows[#out.rows + 1] = r
  print(string.format("  %-6s mean |d| %.3g  max |d| %.3g  mean d %+.3g", name, r.mean_abs, r.max_abs, r.mean))
end
if arg[3] then assert(qr.json.write(arg[3], out, {indent = true})) print("wrote " .. arg[3]) end
