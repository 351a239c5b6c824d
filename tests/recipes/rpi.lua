-- rpi.lua - random precision inference (model:rpi, model:rpi_next, and
-- model:generate under it) on a tiny random GPT-2 with a LoRA bank.
local T = require("qr.qrtest")
local P = require("qr.precision")

-- the fuzz corpus's tiny Llama: random weights and a small tokenizer (generation needs one)
local m = assert(qr.model(qr.source_dir .. "/tests/fuzz/corpus/fuzz_model/tiny_llama.gguf"))
m:quantize{weight = "minmax", act = "minmax"}
local cfgs = P.load("fp,w8a8,w4a4", m)
local slots = P.assign_adapters(cfgs)
m:lora{rank = 2, alpha = 4, slots = slots, seed = 1}
T.eq("rpi-1.0", slots, 3)

-- off by default; on, the state reads back
T.eq("rpi-1.1", m:rpi(), nil)
m:rpi{configs = cfgs, probs = {0.5, 0.3, 0.2}, seed = 7}
local st = m:rpi()
T.eq("rpi-1.2", st.configs, {"fp", "w8a8", "w4a4"})
T.near("rpi-1.3", st.probs[2], 0.3, 1e-12)
T.eq("rpi-1.4", st.seed, 7)

-- the draws follow the probabilities: chi-square over 30000 draws, df 2,
-- critical value 13.82 at p = 0.001
local N, count = 30000, {0, 0, 0}
for _ = 1, N do
  local k = m:rpi_next()
  count[k] = count[k] + 1
end
local chi = 0
for k, p in ipairs{0.5, 0.3, 0.2} do chi = chi + (count[k] - N * p) ^ 2 / (N * p) end
T.ok("rpi-2.1", chi < 13.82, string.format("chi-square %.2f (counts %d %d %d)", chi, count[1], count[2], count[3]))
print(string.format("  chi-square %.3f over %d draws (counts %d %d %d; critical 13.82 at p = 0.001)", chi, N,
  count[1], count[2], count[3]))
T.eq("rpi-2.2", m:rpi().draws, N)
-- a probability-0 configuration is never drawn
m:rpi{configs = cfgs, probs = {0.5, 0, 0.5}, seed = 1}
local zero = 0
for _ = 1, 2000 do if m:rpi_next() == 2 then zero = zero + 1 end end
T.eq("rpi-2.3", zero, 0)

-- the same seed gives the same draws; another seed others
local function draws(seed, n)
  m:rpi{configs = cfgs, seed = seed}
  local t = {}
  for i = 1, n do t[i] = m:rpi_next() end
  return t
end
T.eq("rpi-3.1", draws(11, 50), draws(11, 50))
T.ok("rpi-3.2", table.concat(draws(11, 50), ",") ~= table.concat(draws(12, 50), ","), "seeds 11 and 12 drew alike")

-- generate under RPI = each prompt generated alone at its drawn configuration
local prompts = {}
for i = 1, 12 do prompts[i] = {1 + i, 2 + (i * 7) % 40, 3 + (i * 3) % 40} end
m:precision(cfgs[1])
m:rpi{configs = cfgs, seed = 5}
local texts, info = m:generate(prompts, {max_new_tokens = 6, eos = false, batch = 4})
T.eq("rpi-4.1", #info.rpi, 12)
T.eq("rpi-4.2", info.rpi_names, {"fp", "w8a8", "w4a4"})
local seen = {}
for _, k in ipairs(info.rpi) do seen[k] = true end
T.ok("rpi-4.3", seen[1] and seen[2] and seen[3], "12 prompts did not draw every configuration")
m:rpi(false)
local same = true
for i, p in ipairs(prompts) do
  m:precision(cfgs[info.rpi[i]])
  local _, one = m:generate({p}, {max_new_tokens = 6, eos = false})
  if table.concat(one.ids[1], ",") ~= table.concat(info.ids[i], ",") then
    same = false
    print(string.format("  prompt %d (draw %d): %s vs %s", i, info.rpi[i], table.concat(one.ids[1], ","),
      table.concat(info.ids[i], ",")))
  end
end
T.ok("rpi-4.4", same, "a prompt's RPI output differs from generating it at its draw")
-- the precision the model had is restored after an RPI generate
m:precision(cfgs[2])
local _, ref = m:generate({prompts[1]}, {max_new_tokens = 6, eos = false})
m:rpi{configs = cfgs, seed = 5}
m:generate(prompts, {max_new_tokens = 2, eos = false})
m:rpi(false)
local _, after = m:generate({prompts[1]}, {max_new_tokens = 6, eos = false})
T.eq("rpi-4.5", after.ids[1], ref.ids[1])
T.eq("rpi-4.6", m:rpi(), nil)

-- bad input, refused naming it; the previous set is kept
m:rpi{configs = cfgs, seed = 1}
T.errors("rpi-5.1", function() m:rpi{configs = {}} end, "configs is empty")
T.errors("rpi-5.2", function() m:rpi{configs = cfgs, probs = {0.5, 0.3, 0.3}} end, "probs sum to 1.1")
T.errors("rpi-5.3", function() m:rpi{configs = cfgs, probs = {0.5, 0.5}} end, "probs has 2 entries for 3")
T.errors("rpi-5.4", function() m:rpi{configs = cfgs, probs = {1.5, -0.25, -0.25}} end, "probs%[1%]")
local untrained = P.load("w6a6", m)[1]
for _, l in ipairs(untrained.layers) do l.adapter = 5 end
T.errors("rpi-5.5", function() m:rpi{configs = {cfgs[1], untrained}} end, "configuration 'w6a6'")
T.errors("rpi-5.6", function() m:rpi{configs = {{layers = {}}}} end, "has no name")
T.errors("rpi-5.7", function() m:rpi{} end, "configs: expected an array")
T.eq("rpi-5.8", m:rpi().configs, {"fp", "w8a8", "w4a4"})
m:rpi(false)
T.errors("rpi-5.9", function() m:rpi_next() end, "random precision inference is off")
T.done()
