-- precision.lua - recipe regression test for recipes/lib/qr/precision.lua:
-- presets, parsing, patterns and their precedence, every error message,
-- describe, cost (against hand-computed numbers), load, LoRA slot assignment,
-- on a synthetic GPT-2 layer list and on the real SmolLM2 model.
-- Run from the repo root: qrun tests/recipes/precision.lua
--
-- This file is itself named precision.lua, and qrun puts its own directory
-- first on package.path: require("qr.precision") still gets the library
-- (qr.X names are looked up in qrun's library folders only).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local root = here .. "/../.."
local P = require("qr.precision")
local T = require("qr.qrtest")

-- ---- a synthetic 12-layer GPT-2 (124M shapes) ----
local gpt2 = {}
for i = 0, 11 do
  local h = "h." .. i .. "."
  gpt2[#gpt2 + 1] = {name = h .. "attn.c_attn", in_features = 768, out_features = 2304}
  gpt2[#gpt2 + 1] = {name = h .. "attn.c_proj", in_features = 768, out_features = 768}
  gpt2[#gpt2 + 1] = {name = h .. "mlp.c_fc", in_features = 768, out_features = 3072}
  gpt2[#gpt2 + 1] = {name = h .. "mlp.c_proj", in_features = 3072, out_features = 768}
end

local function wa(cfg, name)
  for _, l in ipairs(cfg.layers) do
    if l.name == name then return {l.w, l.a} end
  end
  return nil
end

-- Layers whose (w, a) is not want, as a list of names.
local function off(cfg, want_fn)
  local bad = {}
  for _, l in ipairs(cfg.layers) do
    local w, a = want_fn(l.name)
    if l.w ~= w or l.a ~= a then bad[#bad + 1] = l.name .. "=" .. l.w .. "/" .. l.a end
  end
  return bad
end

-- ---- presets ----
for _, n in ipairs({"fp", "w8a8", "w6a6", "w4a8", "w4a4", "w16a16", "w8a16", "w4a16", "w2a8"}) do
  T.ok("prec-1.1." .. n, P.presets[n] ~= nil, "missing preset " .. n)
end
do
  local bad = {}
  for _, n in ipairs(P.preset_names) do
    local w, a = P.parse(n)
    if P.presets[n].w ~= w or P.presets[n].a ~= a or P.pair_name(w, a) ~= n then bad[#bad + 1] = n end
  end
  T.eq("prec-1.2", bad, {})
  local n = 0
  for _ in pairs(P.presets) do n = n + 1 end
  T.eq("prec-1.3", n, #P.preset_names)
  T.eq("prec-1.4", P.presets.fp, {w = 32, a = 32})
  T.eq("prec-1.5", P.presets.w4a8, {w = 4, a = 8})
end

-- ---- parse ----
T.eq("prec-2.1", {P.parse("w4a8")}, {4, 8})
T.eq("prec-2.2", {P.parse("fp")}, {32, 32})
T.eq("prec-2.3", {P.parse("W16A16")}, {16, 16})
T.eq("prec-2.4", {P.parse("w32a32")}, {32, 32})
T.eq("prec-2.5", {P.parse("w4a32")}, {4, 32})
T.eq("prec-2.6", {P.parse(" w2a16 ")}, {2, 16})
T.ok("prec-2.7", math.type((P.parse("w8a8"))) == "integer", "bits are integers")
T.errors("prec-2.8", function() P.parse("w1a8") end, "'w1a8': weight bits 1 out of range (2..16, or 32")
T.errors("prec-2.9", function() P.parse("w4a17") end, "'w4a17': activation bits 17 out of range")
T.errors("prec-2.10", function() P.parse("w24a8") end, "'w24a8': weight bits 24 out of range")
T.errors("prec-2.11", function() P.parse("w4a0") end, "activation bits 0 out of range")
T.errors("prec-2.12", function() P.parse("int8") end, "'int8' is not a precision: expected 'fp' or 'w<bits>a<bits>'")
T.errors("prec-2.13", function() P.parse("w4") end, "'w4' is not a precision")
T.errors("prec-2.14", function() P.parse("") end, "'' is not a precision")
T.errors("prec-2.15", function() P.parse(8) end, "expected a precision string like 'w4a8' or 'fp', got a number")
T.eq("prec-2.16", P.uniform(4, 8), "w4a8")
T.eq("prec-2.17", P.uniform(32, 32), "fp")
T.errors("prec-2.18", function() P.uniform(1, 8) end, "uniform: weight bits 1 out of range")
T.errors("prec-2.19", function() P.uniform(8, 4.5) end, "uniform: activation bits 4.5 out of range")

-- ---- pattern matching ----
T.ok("prec-3.1", P.match("h.0-3.mlp.*", "h.3.mlp.c_fc"))
T.ok("prec-3.2", not P.match("h.0-3.mlp.*", "h.4.mlp.c_fc"))
T.ok("prec-3.3", P.match("h.10-11.attn.c_*", "h.10.attn.c_proj"))
T.ok("prec-3.4", not P.match("h.1.attn.c_proj", "h.11.attn.c_proj"), "a number is a whole component")
T.ok("prec-3.5", P.match("*.down_proj", "model.layers.3.mlp.down_proj"), "leading * is one or more components")
T.ok("prec-3.6", P.match("model.layers.29.*", "model.layers.29.self_attn.q_proj"), "trailing * is one or more")
T.ok("prec-3.7", not P.match("model.layers.29.*", "model.layers.29"), "trailing * needs at least one")
T.ok("prec-3.8", not P.match("h.*.c_fc", "h.3.mlp.c_fc"), "inner * is exactly one component")
T.ok("prec-3.9", P.match("h.*.mlp.c_fc", "h.3.mlp.c_fc"))
T.ok("prec-3.10", P.match("h.**.c_fc", "h.3.mlp.c_fc"), "** spans components")
T.ok("prec-3.11", P.match("h.3.**.mlp.c_fc", "h.3.mlp.c_fc"), "** may be empty")
T.ok("prec-3.12", P.match("*", "model.layers.0.mlp.up_proj"), "a lone * matches everything")
T.ok("prec-3.13", P.match("*_proj", "o_proj") and not P.match("*_proj", "x.o_proj"))
T.ok("prec-3.14", P.match("model.layers.0-2.*", "model.layers.02.mlp.up_proj"), "ranges compare numbers")
T.ok("prec-3.15", not P.match("h.0-3.mlp.*", "h.x.mlp.c_fc"), "ranges need a number")
T.ok("prec-3.16", P.match("h.1-1.attn.c_attn", "h.1.attn.c_attn"))
T.ok("prec-3.17", P.match("h.3.mlp.c%d", "h.3.mlp.c%d") and not P.match("h.3.mlp.c%d", "h.3.mlp.c5"),
  "Lua pattern characters are literal")

-- ---- config on the GPT-2 list ----
do
  local c = P.config(gpt2, "w8a8")
  T.eq("prec-4.1", #c.layers, 48)
  T.eq("prec-4.2", c.name, "w8a8")
  T.eq("prec-4.3", c.layers[1], {name = "h.0.attn.c_attn", w = 8, a = 8})
  T.eq("prec-4.4", off(c, function() return 8, 8 end), {})
  T.eq("prec-4.5", P.config(gpt2, "W4A8").name, "w4a8")
  T.eq("prec-4.6", P.config(gpt2, "w4a8", "mine").name, "mine")
  T.eq("prec-4.7", off(P.config(gpt2, {}), function() return 32, 32 end), {})
  T.eq("prec-4.8", P.config(gpt2, {}).name, "fp")
  T.eq("prec-4.9", off(P.config(gpt2, {w = 4, a = 16}), function() return 4, 16 end), {})

  c = P.config(gpt2, {default = "w8a8", ["h.0-3.mlp.*"] = "w4a8", ["h.11.*"] = {w = 8, a = 16}}, "mix")
  T.eq("prec-4.10", c.name, "mix")
  T.eq("prec-4.11", off(c, function(n)
    local i = tonumber(n:match("^h%.(%d+)%."))
    if i == 11 then return 8, 16 end
    if i <= 3 and n:find(".mlp.", 1, true) then return 4, 8 end
    return 8, 8
  end), {})
  T.eq("prec-4.12", P.name(c), "mixed-w4/8a8/16")
  T.eq("prec-4.13", P.config(gpt2, {default = "w8a8", ["h.0-3.mlp.*"] = "w4a8"}).name, "mixed-w4/8a8")
  T.eq("prec-4.14", P.config(gpt2, {name = "named", default = "w6a6"}).name, "named")
  -- layers come back in the target's order
  local same = true
  for i, l in ipairs(c.layers) do same = same and l.name == gpt2[i].name end
  T.ok("prec-4.15", same, "layer order differs from the target's")
  -- a pattern matching every layer with the same value as default is fine
  T.eq("prec-4.16", off(P.config(gpt2, {default = "w4a4", ["h.*.attn.*"] = "w4a4", ["**"] = "w4a4"}),
    function() return 4, 4 end), {})
end

-- ---- precedence ----
T.errors("prec-5.1", function()
  P.config(gpt2, {default = "fp", ["h.*.mlp.*"] = "w8a8", ["*.c_fc"] = "w4a4"}, "tie")
end, "config 'tie': patterns '%*%.c_fc' and 'h%.%*%.mlp%.%*' are equally specific and give layer h%.0%.mlp%.c_fc")
do
  local c = P.config(gpt2, {
    default = "w6a6",
    ["h.*.mlp.*"] = "w8a8",           -- 1 + 3 = 4 literal characters
    ["*.mlp.c_fc"] = "w4a8",          -- 3 + 4 = 7
    ["h.3.mlp.c_fc"] = "w2a8",        -- 1 + 1 + 3 + 4 = 9
    ["h.0-5.mlp.c_fc"] = "w4a16",     -- 1 + 3 + 4 = 8 (ranges count 0)
  })
  T.eq("prec-5.2", wa(c, "h.3.mlp.c_fc"), {2, 8})
  T.eq("prec-5.3", wa(c, "h.4.mlp.c_fc"), {4, 16})
  T.eq("prec-5.4", wa(c, "h.7.mlp.c_fc"), {4, 8})
  T.eq("prec-5.5", wa(c, "h.7.mlp.c_proj"), {8, 8})
  T.eq("prec-5.6", wa(c, "h.7.attn.c_proj"), {6, 6})
  -- ordered entries come after every keyed pattern, last match wins
  c = P.config(gpt2, {
    default = "w8a8",
    ["h.3.mlp.c_fc"] = "w2a8",
    {"*.mlp.*", "w4a4"},
    {"h.0-1.*", "fp"},
    {"h.1.attn.c_attn", "w16a16"},
  })
  T.eq("prec-5.7", wa(c, "h.3.mlp.c_fc"), {4, 4})
  T.eq("prec-5.8", wa(c, "h.0.mlp.c_fc"), {32, 32})
  T.eq("prec-5.9", wa(c, "h.1.attn.c_attn"), {16, 16})
  T.eq("prec-5.10", wa(c, "h.2.attn.c_attn"), {8, 8})
  -- and ordered entries resolve what a tie cannot
  c = P.config(gpt2, {default = "fp", {"h.*.mlp.*", "w8a8"}, {"*.c_fc", "w4a4"}})
  T.eq("prec-5.11", {wa(c, "h.0.mlp.c_fc"), wa(c, "h.0.mlp.c_proj")}, {{4, 4}, {8, 8}})
  -- the result never depends on pairs() order: build the same spec many times
  local ref = P.describe(P.config(gpt2, {default = "w8a8", ["*.c_fc"] = "w4a8", ["h.2-9.*"] = "w6a6"}))
  local same = true
  for k = 1, 20 do
    local s = {}
    local keys = {"h.2-9.*", "default", "*.c_fc"}
    for j = 1, 3 do
      local key = keys[(j + k) % 3 + 1]
      s[key] = ({["h.2-9.*"] = "w6a6", default = "w8a8", ["*.c_fc"] = "w4a8"})[key]
    end
    same = same and P.describe(P.config(gpt2, s)) == ref
  end
  T.ok("prec-5.12", same, "result depends on table construction order")
  -- 'h.2-9.*' (1) is less specific than '*.c_fc' (4)
  T.eq("prec-5.13", wa(P.config(gpt2, {default = "w8a8", ["*.c_fc"] = "w4a8", ["h.2-9.*"] = "w6a6"}), "h.5.mlp.c_fc"),
    {4, 8})
end

-- ---- errors in specs, each naming what is wrong ----
T.errors("prec-6.1", function() P.config(gpt2, {["h.40.*"] = "w4a4"}, "x") end,
  "config 'x': pattern 'h.40.*' matches no layer of the layer list (48 linear layers)")
T.errors("prec-6.2", function() P.config(gpt2, {["h.0.*"] = "w4a99"}, "x") end,
  "config 'x': pattern 'h.0.*': 'w4a99': activation bits 99 out of range")
T.errors("prec-6.3", function() P.config(gpt2, {["h.0.*"] = {w = 1, a = 8}}, "x") end,
  "config 'x': pattern 'h.0.*': weight bits 1 out of range")
T.errors("prec-6.4", function() P.config(gpt2, {["h.0.*"] = {w = 4}}, "x") end,
  "config 'x': pattern 'h.0.*': needs both w and a")
T.errors("prec-6.5", function() P.config(gpt2, {["h.0.*"] = {w = 4, a = 8, b = 2}}, "x") end,
  "config 'x': pattern 'h.0.*': unknown field 'b'")
T.errors("prec-6.6", function() P.config(gpt2, {["h.0.*"] = true}, "x") end,
  "config 'x': pattern 'h.0.*': value is a boolean; expected a precision like 'w4a8'")
T.errors("prec-6.7", function() P.config(gpt2, {default = "w9a99"}, "x") end,
  "config 'x': default: 'w9a99': activation bits 99 out of range")
T.errors("prec-6.8", function() P.config(gpt2, "int4") end, "config 'int4': spec: 'int4' is not a precision")
T.errors("prec-6.9", function() P.config(gpt2, 42) end, "spec must be a precision string or a table, got a number")
T.errors("prec-6.10", function() P.config(gpt2, {["h.5-2.*"] = "w4a4"}, "x") end,
  "config 'x': pattern 'h.5-2.*': range 5-2 is empty")
T.errors("prec-6.11", function() P.config(gpt2, {["h..mlp"] = "w4a4"}, "x") end,
  "config 'x': pattern 'h..mlp' has an empty component")
T.errors("prec-6.12", function() P.config(gpt2, {["h.1**.mlp"] = "w4a4"}, "x") end,
  "'**' must be a whole component")
T.errors("prec-6.13", function() P.config(gpt2, {[true] = "w4a4"}, "x") end, "config 'x': unexpected key true")
T.errors("prec-6.14", function() P.config(gpt2, {{"h.0.*"}}, "x") end,
  "config 'x': ordered entry [1] must be {pattern, value}")
T.errors("prec-6.15", function() P.config(gpt2, {{"h.99.*", "w4a4"}}, "x") end,
  "config 'x': pattern 'h.99.*' matches no layer")
T.errors("prec-6.16", function() P.config(gpt2, {w = 4, a = 8, ["h.0.*"] = "fp"}, "x") end,
  "a spec with w/a is uniform and takes no other key")
T.errors("prec-6.17", function() P.config(nil, "w8a8") end, "target must be a model or an array")
T.errors("prec-6.18", function() P.config({{in_features = 1}}, "w8a8") end, "target layer [1] has no name")
T.errors("prec-6.19", function() P.config(gpt2, "w8a8", 5) end, "config name must be a string")
T.errors("prec-6.20", function() P.config(gpt2, {name = 5}) end, "name must be a string, got a number")
-- no error when unnamed: the label says so
T.errors("prec-6.21", function() P.config(gpt2, {["nope"] = "w4a4"}) end, "config '(unnamed)': pattern 'nope'")

-- ---- describe ----
do
  local c = P.config(gpt2, {default = "w8a8", ["h.0-3.mlp.*"] = "w4a8", ["h.11.attn.c_attn"] = "fp"}, "mix")
  local d = P.describe(c, gpt2, 1024)
  local lines = {}
  for line in d:gmatch("[^\n]+") do lines[#lines + 1] = line end
  T.eq("prec-7.1", lines[1], "config mix: 48 linear layers (mixed-w4/8/32a8/32), w/a in bits, 32 = not quantized")
  T.eq("prec-7.2", lines[2], "  pattern             w    a")
  T.eq("prec-7.3", {table.unpack(lines, 3, #lines - 1)}, {
    "  h.0-3.attn.*        8    8",
    "  h.0-3.mlp.*         4    8",
    "  h.4-10.*            8    8",
    "  h.11.attn.c_attn   32   32",
    "  h.11.attn.c_proj    8    8",
    "  h.11.mlp.*          8    8",
  })
  T.ok("prec-7.4", lines[#lines]:find("^  cost: BitOPs 0%.%d+ of fp %(.+BitOPs at 1024 tokens%), weights 0%.%d+ of fp")
    ~= nil, lines[#lines])
  -- every row is a valid pattern, and the rows rebuild the same configuration
  local spec = {}
  for _, r in ipairs(P.rows(c)) do spec[#spec + 1] = {r[1], {w = r[2], a = r[3]}} end
  T.eq("prec-7.5", P.config(gpt2, spec, "mix").layers, c.layers)
  -- uniform: one row; no target: no cost line
  T.eq("prec-7.6", P.describe(P.config(gpt2, "w4a4")),
    "config w4a4: 48 linear layers, w/a in bits, 32 = not quantized\n  pattern     w    a\n  h.0-11.*    4    4")
  -- names that do not share an index layout fall back to runs of equal layers
  local odd = {{name = "enc.a", in_features = 2, out_features = 2}, {name = "enc.b", in_features = 2, out_features = 2},
    {name = "head", in_features = 2, out_features = 3}}
  T.eq("prec-7.7", P.rows(P.config(odd, {default = "w8a8", head = "fp"})), {{"enc.a .. enc.b", 8, 8}, {"head", 32, 32}})
  T.errors("prec-7.8", function() P.describe(c, odd) end, "config 'mix' has 48 layers, the layer list (3 linear layers)")
  -- the long form: one row per layer; shares of BitOPs by hand:
  -- enc.a, enc.b 2x2 at w8a8 = 4*64 = 256 each, head 2x3 fp = 6*1024 = 6144; total 6656
  local oc = P.config(odd, {default = "w8a8", head = "fp"}, "odd")
  T.eq("prec-7.9", P.layers(oc, odd), table.concat({
    "config odd: 3 linear layers",
    "     #  layer     in x out    w    a  adapter  BitOPs%",
    "     1  enc.a        2 x 2    8    8       -1     3.85",
    "     2  enc.b        2 x 2    8    8       -1     3.85",
    "     3  head         2 x 3   32   32       -1    92.31"}, "\n"))
  T.eq("prec-7.10", select(2, P.layers(c):gsub("\n", "")), 49) -- header lines + 48 rows, without a target
  T.errors("prec-7.11", function() P.layers(c, odd) end, "config 'mix' has 48 layers, the layer list (3 linear layers)")
end

-- ---- cost ----
do
  -- Two layers, seq_len = 5:
  --   A: in 4, out 3, w4a8;  B: in 3, out 2, fp (w32a32)
  --   MACs   = 5 * (4*3 + 3*2)            = 5 * 18       = 90
  --   BitOPs = 5*12*4*8 + 5*6*32*32       = 1920 + 30720 = 32640
  --   fp     = 5*18*32*32                                 = 92160   -> ratio 32640/92160 = 0.3541666...
  --   bytes  = (12*4/8 + 3*2 fp16 scales) + 6*4 = 12 + 24 = 36
  --   fp     = 18*4                                       = 72      -> ratio 36/72 = 0.5
  --   avg w  = (12*4 + 6*32)/18 = 240/18 = 13.333..., avg a = (12*8 + 6*32)/18 = 288/18 = 16
  local two = {{name = "A", in_features = 4, out_features = 3}, {name = "B", in_features = 3, out_features = 2}}
  local cfg = P.config(two, {default = "fp", A = "w4a8"})
  local c = P.cost(cfg, two, 5)
  T.eq("prec-8.1", {c.macs, c.bitops, c.fp_bitops, c.bytes, c.fp_bytes}, {90, 32640, 92160, 36, 72})
  T.ok("prec-8.2", math.type(c.bitops) == "integer" and math.type(c.bytes) == "integer", "counts are integers")
  T.near("prec-8.3", {c.bitops_ratio, c.bytes_ratio, c.avg_wbits, c.avg_abits},
    {32640 / 92160, 36 / 72, 240 / 18, 16}, 1e-15)
  T.eq("prec-8.4", P.cost(cfg, two).bitops, 32640 // 5)  -- seq_len defaults to 1
  -- a bit count that is not whole bytes: 3 weights at 3 bits = 9 bits = 1.125 bytes, + 2 (one fp16 scale)
  local one = {{name = "x", in_features = 3, out_features = 1}}
  T.eq("prec-8.5", P.cost(P.config(one, "w3a8"), one).bytes, 3.125)
  T.errors("prec-8.6", function() P.cost(cfg, two, 0) end, "seq_len must be a positive integer")
  T.errors("prec-8.7", function() P.cost(cfg, {{name = "A", in_features = 4}, two[2]}) end,
    "layer A needs positive integer in_features and out_features")
  T.errors("prec-8.8", function() P.cost({name = "bad", layers = {{name = "A", w = 4, a = 8}, {name = "C", w = 8, a = 8}}}, two) end,
    "config 'bad': layer 2 is 'C', the target's is 'B'")
  T.errors("prec-8.9", function() P.cost({name = "bad", layers = {{name = "A", w = 4, a = 1}, {name = "B", w = 8, a = 8}}}, two) end,
    "config 'bad': layer A has w=4 a=1")
  T.errors("prec-8.10", function() P.cost("w8a8", two) end, "expected a configuration {name=, layers=}")

  -- uniform presets on GPT-2: BitOPs ratio = w*a/1024 exactly. Bytes: per
  -- block the weights are 768*(2304 + 768 + 3072 + 3072) = 7077888 and the
  -- outputs 2304 + 768 + 3072 + 768 = 6912, so with a 16-bit scale per
  -- output the ratio is (P*w + 16*6912)/(32*P) = w/32 + 6912/(2*7077888) = w/32 + 1/2048.
  local e = 1 / 2048
  local want = {fp = {1, 1}, w16a16 = {0.25, 0.5 + e}, w8a8 = {0.0625, 0.25 + e},
    w6a6 = {36 / 1024, 6 / 32 + e}, w4a8 = {0.03125, 0.125 + e}, w4a4 = {16 / 1024, 0.125 + e},
    w2a8 = {16 / 1024, 2 / 32 + e}, w8a16 = {0.125, 0.25 + e}, w4a16 = {0.0625, 0.125 + e}}
  for _, n in ipairs(P.preset_names) do
    local cc = P.cost(P.config(gpt2, n), gpt2, 512)
    T.near("prec-8.11." .. n, {cc.bitops_ratio, cc.bytes_ratio}, want[n], 1e-15)
  end
  local fp = P.cost(P.config(gpt2, "fp"), gpt2, 512)
  T.eq("prec-8.12", {fp.bitops, fp.bytes, fp.avg_wbits, fp.avg_abits}, {512 * 12 * 7077888 * 1024, 12 * 7077888 * 4, 32.0, 32.0})
end

-- ---- load ----
local tmp = os.tmpname()
local tmplua = tmp .. ".lua"
local function write(text)
  local f = assert(io.open(tmplua, "wb"))
  f:write(text)
  f:close()
end
do
  local cfgs = P.load("fp, w8a8,W4A8", gpt2)
  T.eq("prec-9.1", {cfgs[1].name, cfgs[2].name, cfgs[3].name}, {"fp", "w8a8", "w4a8"})
  T.eq("prec-9.2", {cfgs[3].layers[48].w, cfgs[3].layers[48].a}, {4, 8})
  T.errors("prec-9.3", function() P.load("fp,w8a8,W8A8", gpt2) end,
    "load: duplicate configuration name 'w8a8' (from 'w8a8' and 'W8A8')")
  T.errors("prec-9.4", function() P.load("fp,w8a9x", gpt2) end, "'w8a9x' is not a precision")
  T.errors("prec-9.5", function() P.load("no/such/configs.lua", gpt2) end, "cannot load 'no/such/configs.lua'")
  T.errors("prec-9.6", function() P.load(" , ", gpt2) end, "load: no configurations")
  write('return {default = "w8a8", ["h.0.*"] = "fp"}')
  local one = P.load(tmplua, gpt2)
  T.eq("prec-9.7", {#one, one[1].name}, {1, tmplua:match("([^/]+)%.lua$")})
  write('return {{name = "a", spec = "w4a4"}, {name = "b", default = "w8a8", ["h.1.*"] = "w4a8"}, {spec = "w6a6"}}')
  local three = P.load("fp," .. tmplua, gpt2)
  T.eq("prec-9.8", {three[1].name, three[2].name, three[3].name, three[4].name}, {"fp", "a", "b", "w6a6"})
  T.eq("prec-9.9", wa(three[3], "h.1.mlp.c_fc"), {4, 8})
  write('return {{name = "a", spec = "w4a4"}, {name = "a", spec = "w8a8"}}')
  T.errors("prec-9.10", function() P.load(tmplua, gpt2) end, "duplicate configuration name 'a'")
  write('return {{name = "a", spec = {["h.77.*"] = "w4a4"}}}')
  T.errors("prec-9.11", function() P.load(tmplua, gpt2) end,
    "precision: " .. tmplua .. ": config 'a': pattern 'h.77.*' matches no layer")
  write('return {{name = "a", spec = "w4a4", extra = 1}}')
  T.errors("prec-9.12", function() P.load(tmplua, gpt2) end, "entry [1] has unknown field 'extra'")
  write('return 42')
  T.errors("prec-9.13", function() P.load(tmplua, gpt2) end, "returned a number; expected a spec")
  write('error("boom")')
  T.errors("prec-9.14", function() P.load(tmplua, gpt2) end, "raised an error: .*boom")
  write('return {{name = "a", spec = "w4a4"}, 7}')
  T.errors("prec-9.15", function() P.load(tmplua, gpt2) end, "entry [2] is a number")
  local t = P.load({"w8a8", {name = "t", default = "w4a4"}}, gpt2)
  T.eq("prec-9.16", {t[1].name, t[2].name}, {"w8a8", "t"})
  os.remove(tmplua)
  os.remove(tmp)
end

-- ---- LoRA slots ----
do
  local mlp4 = P.config(gpt2, {default = "w8a8", ["*.mlp.*"] = "w4a8"}, "mlp4")
  local cfgs = P.load("fp,w8a8,w4a8", gpt2)
  cfgs[4] = mlp4
  local slots, per = P.assign_adapters(cfgs)
  T.eq("prec-10.1", slots, 3)
  local all3 = true
  for _, n in ipairs(per) do all3 = all3 and n == 3 end
  T.ok("prec-10.2", #per == 48 and all3, T.show(per))
  -- fp -> 0, w8a8 -> 1, w4a8 -> 2; mlp4 reuses 1 (attention) and 2 (MLP)
  T.eq("prec-10.3", {cfgs[1].layers[1].adapter, cfgs[2].layers[1].adapter, cfgs[3].layers[1].adapter,
    mlp4.layers[1].adapter, mlp4.layers[3].adapter}, {0, 1, 2, 1, 2})
  -- {fp, w4a8, mlp4}: attention layers see 3 pairs, MLP layers only 2
  local set = {P.config(gpt2, "fp"), P.config(gpt2, "w4a8"), mlp4}
  slots, per = P.assign_adapters(set)
  T.eq("prec-10.4", {slots, per[1], per[2], per[3], per[4]}, {3, 3, 3, 2, 2})
  T.eq("prec-10.5", {mlp4.layers[1].adapter, mlp4.layers[3].adapter}, {2, 1})
  T.eq("prec-10.6", {P.assign_adapters({P.config(gpt2, "w4a4")})}, {1, (function()
    local t = {}
    for i = 1, 48 do t[i] = 1 end
    return t
  end)()})
  T.errors("prec-10.7", function() P.assign_adapters({}) end, "non-empty array")
  T.errors("prec-10.8", function() P.assign_adapters({mlp4, P.config({{name = "A"}}, "fp")}) end,
    "config 'fp' has 1 layers, 'mlp4' has 48")
end

-- ---- weight groups: syntax ----
T.eq("prec-12.1", {P.parse("w4a8g32")}, {4, 8, 32})
T.eq("prec-12.2", {P.parse(" W4A16G128 ")}, {4, 16, 128})
T.eq("prec-12.3", {P.parse("w4a8g0")}, {4, 8})       -- g0 = one scale per output channel, as no g
T.eq("prec-12.4", select(3, P.parse("w4a8")), nil)
T.ok("prec-12.5", math.type(select(3, P.parse("w2a8g2"))) == "integer", "the group is an integer")
T.errors("prec-12.6", function() P.parse("w4a8g") end, "'w4a8g': no group size after 'g'")
T.errors("prec-12.7", function() P.parse("w4a8g1") end, "'w4a8g1': weight group '1' is not allowed (expected an integer >= 2")
T.errors("prec-12.8", function() P.parse("w4a8g-3") end, "'w4a8g-3': weight group '-3' is not allowed")
T.errors("prec-12.9", function() P.parse("w4a8g2.5") end, "'w4a8g2.5': weight group '2.5' is not allowed")
T.errors("prec-12.10", function() P.parse("w32a8g32") end, "'w32a8g32': weight group 32 needs a quantized weight (w < 32)")
T.errors("prec-12.11", function() P.parse("w4a8x32") end, "'w4a8x32' is not a precision")
T.errors("prec-12.12", function() P.parse("w4a8g32g8") end, "weight group '32g8' is not allowed")
T.eq("prec-12.13", {P.pair_name(4, 8, 32), P.pair_name(4, 8), P.pair_name(4, 8, 0), P.pair_name(32, 32)},
  {"w4a8g32", "w4a8", "w4a8", "fp"})
T.eq("prec-12.14", {P.uniform(4, 8, 32), P.uniform(4, 8, 0), P.uniform(4, 8)}, {"w4a8g32", "w4a8", "w4a8"})
T.errors("prec-12.15", function() P.uniform(4, 8, 1) end, "uniform: weight group 1 is not allowed")
T.errors("prec-12.16", function() P.uniform(4, 8, 2.5) end, "uniform: weight group 2.5 is not allowed")
T.errors("prec-12.17", function() P.uniform(32, 8, 32) end, "uniform: weight group 32 needs a quantized weight")
do
  -- configurations: g is in a layer's entry only when it has a group
  local c = P.config(gpt2, "w4a8g32")
  T.eq("prec-12.18", {c.name, c.layers[1]}, {"w4a8g32", {name = "h.0.attn.c_attn", w = 4, a = 8, g = 32}})
  T.eq("prec-12.19", P.config(gpt2, {w = 4, a = 8, g = 64}).layers[5], {name = "h.1.attn.c_attn", w = 4, a = 8, g = 64})
  T.eq("prec-12.20", P.config(gpt2, {w = 4, a = 8, g = 0}).layers[1], {name = "h.0.attn.c_attn", w = 4, a = 8})
  T.eq("prec-12.21", P.config(gpt2, "w4a8g0").name, "w4a8")
  c = P.config(gpt2, {default = "w4a8g32", ["*.c_fc"] = "w4a8"})
  T.eq("prec-12.22", {c.name, wa(c, "h.0.mlp.c_fc"), c.layers[3].g, c.layers[4].g}, {"mixed-w4a8g0/32", {4, 8}, nil, 32})
  T.eq("prec-12.23", P.config(gpt2, {default = "w4a8g32", ["h.0.*"] = "fp"}).name, "mixed-w4/32a8/32g32")
  T.eq("prec-12.24", P.config(gpt2, {default = "w8a8g128", ["*.mlp.*"] = {w = 4, a = 8, g = 32}}).name,
    "mixed-w4/8a8g32/128")
  T.eq("prec-12.25", P.config(gpt2, {default = "w8a8", ["*.mlp.*"] = "w4a8"}).name, "mixed-w4/8a8") -- no g: as before
  -- a group alone makes two values different: an equal-specificity tie is an error
  T.errors("prec-12.26", function()
    P.config(gpt2, {default = "fp", ["h.*.mlp.*"] = "w4a8g32", ["*.c_fc"] = "w4a8"}, "tie")
  end, "config 'tie': patterns '%*%.c_fc' and 'h%.%*%.mlp%.%*' are equally specific")
  -- ordered entries carry g
  c = P.config(gpt2, {default = "w8a8", {"*.mlp.*", "w4a8g64"}, {"h.0.mlp.c_fc", {w = 4, a = 8}}})
  T.eq("prec-12.27", {c.layers[3].g, c.layers[7].g, c.layers[8].g, c.layers[1].g}, {nil, 64, 64, nil})
  -- refused values, each naming the value
  T.errors("prec-12.28", function() P.config(gpt2, {["h.0.*"] = {w = 4, a = 8, g = 1}}, "x") end,
    "config 'x': pattern 'h.0.*': weight group 1 is not allowed (expected an integer >= 2")
  T.errors("prec-12.29", function() P.config(gpt2, {["h.0.*"] = {w = 4, a = 8, g = -3}}, "x") end,
    "config 'x': pattern 'h.0.*': weight group -3 is not allowed")
  T.errors("prec-12.30", function() P.config(gpt2, {["h.0.*"] = {w = 4, a = 8, g = 2.5}}, "x") end,
    "config 'x': pattern 'h.0.*': weight group 2.5 is not allowed")
  T.errors("prec-12.31", function() P.config(gpt2, {["h.0.*"] = {w = 4, a = 8, g = "32"}}, "x") end,
    "config 'x': pattern 'h.0.*': weight group '32' is not allowed")
  T.errors("prec-12.32", function() P.config(gpt2, {default = {w = 32, a = 8, g = 32}}, "x") end,
    "config 'x': default: weight group 32 needs a quantized weight")
  T.errors("prec-12.33", function() P.config(gpt2, {["h.0.*"] = "w4a8g"}, "x") end,
    "config 'x': pattern 'h.0.*': 'w4a8g': no group size after 'g'")
  T.errors("prec-12.34", function() P.config(gpt2, {w = 4, a = 8, g = 1}, "x") end, "config 'x': spec: weight group 1")
  T.errors("prec-12.35", function()
    P.cost({name = "bad", layers = {{name = "A", w = 4, a = 8, g = 1}, {name = "B", w = 8, a = 8}}},
      {{name = "A", in_features = 4, out_features = 3}, {name = "B", in_features = 3, out_features = 2}})
  end, "config 'bad': layer A has weight group g=1")
end

-- ---- weight groups: rows, describe, layers, load, adapters ----
do
  local c = P.config(gpt2, {default = "w8a8", ["h.0-3.mlp.*"] = "w4a8g32", ["h.11.attn.c_attn"] = "w4a8g128"}, "gmix")
  T.eq("prec-13.1", P.rows(c), {
    {"h.0-3.attn.*", 8, 8}, {"h.0-3.mlp.*", 4, 8, 32}, {"h.4-10.*", 8, 8},
    {"h.11.attn.c_attn", 4, 8, 128}, {"h.11.attn.c_proj", 8, 8}, {"h.11.mlp.*", 8, 8}})
  local spec = {}
  for _, r in ipairs(P.rows(c)) do spec[#spec + 1] = {r[1], {w = r[2], a = r[3], g = r[4]}} end
  T.eq("prec-13.2", P.config(gpt2, spec, "gmix").layers, c.layers)
  T.eq("prec-13.3", P.describe(c), table.concat({
    "config gmix: 48 linear layers (mixed-w4/8a8g0/32/128), w/a in bits, 32 = not quantized, "
      .. "g = input channels per weight scale (- = per output channel)",
    "  pattern             w    a     g",
    "  h.0-3.attn.*        8    8     -",
    "  h.0-3.mlp.*         4    8    32",
    "  h.4-10.*            8    8     -",
    "  h.11.attn.c_attn    4    8   128",
    "  h.11.attn.c_proj    8    8     -",
    "  h.11.mlp.*          8    8     -"}, "\n"))
  local odd = {{name = "enc.a", in_features = 2, out_features = 2}, {name = "enc.b", in_features = 2, out_features = 2},
    {name = "head", in_features = 2, out_features = 3}}
  local oc = P.config(odd, {default = "w8a8", ["enc.b"] = "w8a8g2", head = "fp"}, "odd")
  T.eq("prec-13.4", P.rows(oc), {{"enc.a", 8, 8}, {"enc.b", 8, 8, 2}, {"head", 32, 32}})
  T.eq("prec-13.5", P.layers(oc, odd), table.concat({
    "config odd: 3 linear layers",
    "     #  layer     in x out    w    a     g  adapter  BitOPs%",
    "     1  enc.a        2 x 2    8    8     -       -1     3.85",
    "     2  enc.b        2 x 2    8    8     2       -1     3.85",
    "     3  head         2 x 3   32   32     -       -1    92.31"}, "\n"))
  local cfgs = P.load("w4a8, w4a8g32,W4A8G128", gpt2)
  T.eq("prec-13.6", {cfgs[1].name, cfgs[2].name, cfgs[3].name, cfgs[2].layers[48].g, cfgs[1].layers[48].g},
    {"w4a8", "w4a8g32", "w4a8g128", 32, nil})
  T.errors("prec-13.7", function() P.load("w4a8g32,W4A8G32", gpt2) end,
    "load: duplicate configuration name 'w4a8g32' (from 'w4a8g32' and 'W4A8G32')")
  T.errors("prec-13.8", function() P.load("w4a8,w4a8g1", gpt2) end, "'w4a8g1': weight group '1' is not allowed")
  -- a file's specs carry g
  local tmpg = os.tmpname()
  local f = assert(io.open(tmpg .. ".lua", "wb"))
  f:write('return {{name = "g32mlp", default = "w8a8", ["*.mlp.*"] = {w = 4, a = 8, g = 32}}, {spec = "w4a8g64"}}')
  f:close()
  local fl = P.load(tmpg .. ".lua", gpt2)
  os.remove(tmpg .. ".lua")
  os.remove(tmpg)
  T.eq("prec-13.9", {fl[1].name, fl[2].name, fl[1].layers[3].g, fl[1].layers[1].g, fl[2].layers[1].g},
    {"g32mlp", "w4a8g64", 32, nil, 64})
  -- adapters: a group is another slot; the same group shares one
  local set = {P.config(gpt2, "w4a8"), P.config(gpt2, "w4a8g32"),
    P.config(gpt2, {default = "w4a8g32", ["*.c_fc"] = "w4a8"})}
  local slots, per = P.assign_adapters(set)
  T.eq("prec-13.10", {slots, per[1], per[3], set[3].layers[1].adapter, set[3].layers[3].adapter}, {2, 2, 2, 1, 0})
end

-- ---- weight groups: cost, against a hand count ----
do
  -- three layers: A in 64 x out 3, B in 80 x out 2 (80 = 2*32 + a tail of 16), C in 16 x out 4 (16 < 32)
  -- w4a8g32 (fp16 scales, 2 bytes each):
  --   A: 64*3*4/8 = 96 bytes of weights, 3 rows x 2 groups = 6 scales = 12 bytes  -> 108
  --   B: 80*2*4/8 = 80,                   2 rows x 3 groups = 6 scales = 12 bytes  -> 92
  --   C: 16*4*4/8 = 32,                   4 rows x 1 group  = 4 scales =  8 bytes  -> 40
  --   total 240 bytes, 16 scales, 32 bytes of scales; fp 416*4 = 1664; bpw = 8*240/416
  -- per channel (w4a8): A 96 + 3*2 = 102, B 80 + 2*2 = 84, C 32 + 4*2 = 40 -> 226, 9 scales
  -- zero points (zero_point = true, an fp16 offset per group too): 240 + 32 = 272
  -- w4a8g64, layers with weight_group 32 in the target: the config's g wins:
  --   A 96 + 3*1*2 = 102, B 80 + 2*2*2 = 88, C 40 -> 230
  local three = {{name = "A", in_features = 64, out_features = 3}, {name = "B", in_features = 80, out_features = 2},
    {name = "C", in_features = 16, out_features = 4}}
  local g = P.cost(P.config(three, "w4a8g32"), three, 7)
  local ch = P.cost(P.config(three, "w4a8"), three, 7)
  T.eq("prec-14.1", {g.bytes, g.scales, g.scale_bytes, g.fp_bytes}, {240, 16, 32, 1664})
  T.eq("prec-14.2", {ch.bytes, ch.scales, ch.scale_bytes}, {226, 9, 18})
  T.eq("prec-14.3", {g.layers[1].bytes, g.layers[2].bytes, g.layers[3].bytes}, {108, 92, 40})
  T.eq("prec-14.4", g.layers[2], {name = "B", params = 160, groups = 6, g = 32, bitops = 7 * 160 * 32, bytes = 92,
    scale_bytes = 12})
  T.eq("prec-14.5", {g.layers[3].g, g.layers[3].groups, ch.layers[1].g, ch.layers[1].groups}, {nil, 4, nil, 3})
  T.near("prec-14.6", {g.bpw, g.bytes_ratio, ch.bpw}, {8 * 240 / 416, 240 / 1664, 8 * 226 / 416}, 1e-15)
  T.eq("prec-14.7", {g.bitops, g.macs, g.avg_wbits}, {ch.bitops, ch.macs, ch.avg_wbits}) -- groups leave BitOPs alone
  T.eq("prec-14.8", P.cost(P.config(three, "w4a8g32"), three, 1, {zero_point = true}).bytes, 272)
  local three32 = {}
  for i, l in ipairs(three) do
    three32[i] = {name = l.name, in_features = l.in_features, out_features = l.out_features, weight_group = 32}
  end
  T.eq("prec-14.9", P.cost(P.config(three32, "w4a8"), three32).bytes, 240)     -- the target's default group
  T.eq("prec-14.10", P.cost(P.config(three32, "w4a8g64"), three32).bytes, 230) -- the configuration's wins
  T.eq("prec-14.11", P.cost(P.config(three, {default = "fp", A = "w4a8g32"}), three).bytes, 108 + (160 + 64) * 4)
  T.errors("prec-14.12", function() P.cost(P.config(three, "w4a8"), three, 1, {zero = 1}) end,
    "cost: unknown option 'zero'")
  T.errors("prec-14.13", function() P.cost(P.config(three, "w4a8"), three, 1, 5) end, "cost: opts must be a table")
  -- the GGUF block formats: 4-bit weights in groups of 32 with an fp16 scale are
  -- Q4_0's 4.5 bits per weight; with an fp16 offset too, Q4_1's 5.0
  local wide = {{name = "W", in_features = 4096, out_features = 3}}
  T.eq("prec-14.14", {P.cost(P.config(wide, "w4a32g32"), wide).bpw,
    P.cost(P.config(wide, "w4a32g32"), wide, 1, {zero_point = true}).bpw}, {4.5, 5.0})

  -- a tiny Llama, its shapes from model:linears(): n_embd 64, 4 heads of 16,
  -- 2 KV heads, n_ff 80, 2 blocks. Per block at w4, groups of 32 (fp16 scales):
  --   q, o     64 -> 64: 64*64/2 = 2048 + 64 rows x 2 groups x 2 bytes = 256 -> 2304 each
  --   k, v     64 -> 32: 1024 + 32 x 2 x 2 = 128                          -> 1152 each
  --   gate, up 64 -> 80: 2560 + 80 x 2 x 2 = 320                          -> 2880 each
  --   down     80 -> 64: 2560 + 64 x 3 x 2 = 384 (80 = 2*32 + 16)         -> 2944
  --   block 2*2304 + 2*1152 + 2*2880 + 2944 = 15616; model 2 x 15616 = 31232
  -- per channel: q, o 2048 + 128; k, v 1024 + 64; gate, up 2560 + 160; down 2560 + 128
  --   block 4352 + 2176 + 5440 + 2688 = 14656; model 29312
  local tm = qr.model_new{arch = "llama", n_layer = 2, n_embd = 64, n_head = 4, n_kv_head = 2, n_ff = 80,
    n_vocab = 97, n_ctx = 16, seed = 3}
  T.eq("prec-14.15", {P.cost(P.config(tm, "w4a8g32"), tm).bytes, P.cost(P.config(tm, "w4a8"), tm).bytes}, {31232, 29312})
  -- model:quantize's weight_opts.group is the default the cost sees, through model:linears()
  tm:quantize{weight = "minmax", weight_opts = {group = 32}}
  T.eq("prec-14.16", {tm:linears()[7].weight_group, P.cost(P.config(tm, "w4a8"), tm).bytes}, {32, 31232})
  tm:quantize{weight = "minmax"}
  T.eq("prec-14.17", {tm:linears()[7].weight_group, P.cost(P.config(tm, "w4a8"), tm).bytes}, {nil, 29312})
end

-- ---- the real SmolLM2 ----
local path = qr.default_model()
local model, err = nil, "qr.default_model() returned nothing"
if path then model, err = qr.model(path) end
T.ok("prec-11.0", model ~= nil, "SmolLM2 is needed (scripts/fetch_model.sh, or QRUN_MODEL): " .. tostring(err))
if model then
  local info = model:info()
  local lin = model:linears()
  T.eq("prec-11.1", {info.n_layer, #lin}, {30, 210})
  local c = P.config(model, {default = "w8a8", ["model.layers.0-2.*"] = "w4a8", ["*.down_proj"] = "w4a4",
    ["model.layers.29.*"] = {w = 8, a = 16}}, "s")
  T.eq("prec-11.2", off(c, function(n)
    local i = tonumber(n:match("^model%.layers%.(%d+)%."))
    -- 'model.layers.29.*' (17) > 'model.layers.0-2.*' (11) > '*.down_proj' (9)
    if i == 29 then return 8, 16 end
    if i <= 2 then return 4, 8 end
    if n:find("down_proj$") then return 4, 4 end
    return 8, 8
  end), {})
  T.errors("prec-11.3", function() P.config(model, {["model.layers.30.*"] = "w4a4"}, "x") end,
    "pattern 'model.layers.30.*' matches no layer of llama SmolLM2")
  T.errors("prec-11.4", function() P.config(model, {["h.0.*"] = "w4a4"}, "x") end, "(210 linear layers)")
  local cfgs = P.load("fp,w8a8,w4a8," .. root .. "/recipes/configs/mixed.lua", model)
  local names = {}
  for i, cf in ipairs(cfgs) do names[i] = cf.name end
  T.eq("prec-11.5", names, {"fp", "w8a8", "w4a8", "mlp4", "edges8", "down16"})
  local by = {}
  for _, cf in ipairs(cfgs) do by[cf.name] = cf end
  T.eq("prec-11.6", P.rows(by.mlp4), {{"model.layers.0-29.self_attn.*", 8, 8}, {"model.layers.0-29.mlp.*", 4, 8}})
  T.eq("prec-11.7", P.rows(by.edges8), {{"model.layers.0-2.*", 8, 8}, {"model.layers.3-26.*", 4, 8},
    {"model.layers.27-29.*", 8, 8}})
  T.eq("prec-11.8", wa(by.down16, "model.layers.13.mlp.down_proj"), {4, 16})
  T.eq("prec-11.9", wa(by.down16, "model.layers.13.mlp.up_proj"), {4, 8})
  local d = P.describe(by.mlp4, model, 512)
  T.ok("prec-11.10", d:find("\n  model.layers.0-29.self_attn.*    8    8\n", 1, true) ~= nil, d)
  T.ok("prec-11.11", d:find("\n  model.layers.0-29.mlp.*          4    8\n", 1, true) ~= nil, d)
  -- mlp4 on SmolLM2: attention 576*(576+192+192+576) = 576*1536 per layer,
  -- MLP 3*576*1536, so BitOPs = (1*64 + 3*32)/(4*1024) = 160/4096 = 0.0390625
  -- and avg w = (1*8 + 3*4)/4 = 5 bits.
  local cost = P.cost(by.mlp4, model, 512)
  T.near("prec-11.12", {cost.bitops_ratio, cost.avg_wbits, cost.avg_abits}, {160 / 4096, 5, 8}, 1e-15)
  T.eq("prec-11.13", cost.fp_bitops, 512 * 30 * 4 * 576 * 1536 * 1024)
  -- LoRA slots for {fp, w8a8, w4a8, mlp4}: 3 everywhere
  local slots, per = P.assign_adapters({by.fp, by.w8a8, by.w4a8, by.mlp4})
  local all3 = #per == 210
  for _, n in ipairs(per) do all3 = all3 and n == 3 end
  T.ok("prec-11.14", slots == 3 and all3, "slots " .. slots)
  -- the whole set: down16 adds w4a16 on down_proj (4 pairs there), edges8 nothing new
  slots, per = P.assign_adapters(cfgs)
  T.eq("prec-11.15", {slots, per[1], per[5], per[7]}, {4, 3, 3, 4})
  -- describe rows rebuild every configuration
  local bad = {}
  for _, cf in ipairs(cfgs) do
    local spec = {}
    for _, r in ipairs(P.rows(cf)) do spec[#spec + 1] = {r[1], {w = r[2], a = r[3]}} end
    local back = P.config(model, spec, cf.name)
    for i, l in ipairs(back.layers) do
      if l.w ~= cf.layers[i].w or l.a ~= cf.layers[i].a then bad[#bad + 1] = cf.name .. ":" .. l.name; break end
    end
  end
  T.eq("prec-11.16", bad, {})
  -- groups on SmolLM2's shapes: 576 and 1536 are multiples of 32, so w4 in
  -- groups of 32 is 4.5 bits per weight, and with an fp16 offset per group
  -- 5.0, the checkpoint's own Q4_1. Groups of 128 leave a tail on in = 576
  -- (4*128 + 64: 5 groups a row), by hand per block:
  --   q, o     576*576/2 = 165888 + 576 rows x 5 x 2 bytes = 5760   -> 171648 each
  --   k, v     576*192/2 =  55296 + 192 x 5 x 2 = 1920              ->  57216 each
  --   gate, up 576*1536/2 = 442368 + 1536 x 5 x 2 = 15360           -> 457728 each
  --   down     1536*576/2 = 442368 + 576 x 12 x 2 = 13824           -> 456192
  --   block 1829376, 30 blocks 54881280
  local q41 = P.cost(P.config(model, "w4a8g32"), model, 1, {zero_point = true})
  T.eq("prec-11.17", {q41.bpw, P.cost(P.config(model, "w4a8g32"), model).bpw}, {5.0, 4.5})
  T.eq("prec-11.18", P.cost(P.config(model, "w4a8g128"), model).bytes, 54881280)
end

T.done()
