-- quant_tiny.lua - recipe regression test for quantization and the LoRA
-- bank on tiny random models (qr.model_new: the weights are a function of
-- the seed, so the losses below are stable). Expected values were recorded
-- from a first run; tolerance 1e-5 relative (float summation order may
-- differ across BLAS builds), max difference printed.
local T = require("qr.qrtest")
local P = require("qr.precision")

local ids = {}
for i = 1, 24 do ids[i] = (i * 37 + 11) % 97 end

local expected = {
  gpt2 = {fp = 4.6112127304077, w8a8 = 4.6110124588013, w4a8 = 4.6130127906799, w4a4 = 4.6192603111267},
  llama = {fp = 4.6254615783691, w8a8 = 4.6252212524414, w4a8 = 4.6245999336243, w4a4 = 4.6193404197693},
}

local record = {}
for _, arch in ipairs{"gpt2", "llama"} do
  local m = qr.model_new{arch = arch, n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97, seed = 7}
  local plain = m:loss(ids)
  m:quantize{weight = "minmax", act = "minmax"}
  local cfgs = P.load("fp,w8a8,w4a8,w4a4", m)
  local slots = P.assign_adapters(cfgs)
  T.eq("qt-" .. arch .. "-1.1", slots, 4)
  m:lora{rank = 4, alpha = 8, slots = slots, seed = 3}
  record[arch] = {}
  for _, cfg in ipairs(cfgs) do
    m:precision(cfg)
    local l = m:loss(ids)
    record[arch][cfg.name] = l
    T.near("qt-" .. arch .. "-2." .. cfg.name, l, expected[arch][cfg.name], 1e-5 * expected[arch][cfg.name])
  end
  -- fp with zero-initialised adapters is the plain model, exactly
  m:precision(cfgs[1])
  T.eq("qt-" .. arch .. "-3.1", m:loss(ids), plain)
  -- quantization changes the loss, and more at lower precision (relative to fp)
  T.ok("qt-" .. arch .. "-3.2", record[arch].w8a8 ~= record[arch].fp, "w8a8 differs from fp")
  -- adapters round-trip
  local path = os.tmpname()
  T.ok("qt-" .. arch .. "-4.1", m:save_adapters(path))
  local m2 = qr.model_new{arch = arch, n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97, seed = 7}
  m2:quantize{weight = "minmax", act = "minmax"}
  T.ok("qt-" .. arch .. "-4.2", m2:load_adapters(path))
  m2:precision(cfgs[2])
  m:precision(cfgs[2])
  T.eq("qt-" .. arch .. "-4.3", m2:loss(ids), m:loss(ids))
  os.remove(path)
  local ok, msg = m2:load_adapters("/nonexistent/adapters.safetensors")
  T.ok("qt-" .. arch .. "-4.4", ok == nil and msg:find("/nonexistent/adapters.safetensors", 1, true), msg)
  -- errors name what is wrong
  T.errors("qt-" .. arch .. "-5.1", function() m:precision{default = "w4a17"} end, "17")
  T.errors("qt-" .. arch .. "-5.2", function() m:precision{default = "w8a8", ["h.9.*"] = "w4a4"} end, "matches no layer")
  T.errors("qt-" .. arch .. "-5.3", function() m:quantize{weight = "nosuchquantizer"} end, "nosuchquantizer")
  local m3 = qr.model_new{arch = arch, n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97, seed = 7}
  T.errors("qt-" .. arch .. "-5.4", function() m3:precision("w8a8") end, "quantizer")
  -- with a LoRA bank, a configuration must say which adapter each layer uses
  T.errors("qt-" .. arch .. "-5.5", function() m:precision("w8a8") end, "has a LoRA bank (4 slots) but layers[1]")
  local off = {name = "w8a8-base", layers = {}}
  for i, l in ipairs(cfgs[2].layers) do off.layers[i] = {name = l.name, w = l.w, a = l.a, adapter = -1} end
  m:precision(off)
  T.ok("qt-" .. arch .. "-5.6", m:loss(ids) == record[arch].w8a8, "adapter = -1 runs the base (B = 0: same loss)")
end
if os.getenv("QRTEST_RECORD") then
  for arch, r in pairs(record) do
    for k, v in pairs(r) do print(string.format("record %s %s = %.13f", arch, k, v)) end
  end
end
-- the kernels' fingerprint (qr.squad_qa.kernel_fingerprint): 16 hex digits, the same twice on one model and
-- machine, another for another model; the model is left at fp with its adapters off
do
  local qa = require("qr.squad_qa")
  local m = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97, seed = 7}
  local before = m:loss(ids)
  local a, b = qa.kernel_fingerprint(m), qa.kernel_fingerprint(m)
  T.ok("fingerprint-1.1", type(a) == "string" and #a == 16 and a:match("^%x+$"), tostring(a))
  T.eq("fingerprint-1.2", b, a)
  local o = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97, seed = 8}
  T.ok("fingerprint-1.3", qa.kernel_fingerprint(o) ~= a, "another model's fingerprint equals this one's")
  T.near("fingerprint-1.4", m:loss(ids), before, 0) -- left at fp, adapters off: the loss of before
  -- and it leaves nothing behind: a model fingerprinted, then quantized and set as a recipe does, computes what a
  -- fresh one does, to the bit (sp.lua fingerprints its model before quantizing it)
  for _, q in ipairs{"minmax", "log"} do
    local function loss(fingerprinted)
      local x = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_vocab = 97, seed = 7}
      if fingerprinted then qa.kernel_fingerprint(x) end
      x:quantize{weight = q, act = q}
      local cfg = P.load({"w4a8"}, x)[1]
      x:precision(cfg)
      return x:loss(ids)
    end
    T.near("fingerprint-1.5 " .. q, loss(true), loss(false), 0)
  end
end
T.done()
