-- precision.lua - precision configurations for the linear layers of a model
-- and what they cost. A configuration gives every linear layer a weight
-- bit-width w and an input (activation) bit-width a, each in 2..16 or 32
-- (32 = that side is not quantized), and optionally a weight group g: one
-- scale per g consecutive input channels of a weight row instead of one per
-- output channel. docs/PRECISION.md is the full reference.
--
--   local P = require("qr.precision")
--   local cfg = P.config(model, {default = "w8a8", ["*.mlp.*"] = "w4a8"}, "mlp4")
--   print(P.describe(cfg, model, 512))
--   local c = P.cost(cfg, model, 512)           -- c.bitops_ratio, c.bytes_ratio, ...
--   local cfgs = P.load("fp,w8a8,recipes/configs/mixed.lua", model)
--   local slots = P.assign_adapters(cfgs)       -- LoRA slots per layer
--
-- Spec syntax (P.config):
--   a string: "fp", "w<bits>a<bits>" or "w<bits>a<bits>g<group>"
--             (case-insensitive), every layer alike;
--   a table:  { default = <value>,               -- layers no pattern matches ("fp" if absent)
--               name = "...",                    -- optional configuration name
--               ["<pattern>"] = <value>, ...,    -- keyed overrides, by specificity
--               {"<pattern>", <value>}, ... }    -- ordered overrides, applied last, in order
--   a value is a string as above or a table {w = <bits>, a = <bits>, g = <group>}
--   (g optional). A group is an integer >= 2 (input channels per scale); g
--   absent or 0: the model's default (model:quantize's weight_opts.group),
--   else one scale per output channel. A group needs w < 32. A row whose
--   length is not a multiple of g has a shorter last group.
-- Patterns are dot-separated components matched against the layer's name:
--   `*` inside a component matches any run of characters within it;
--   a component `a-b` (integers) matches an integer component in a..b;
--   `**` matches zero or more whole components;
--   a lone `*` matches one component, except as the first or last component
--   of the pattern, where it matches one or more ("*.down_proj",
--   "model.layers.29.*").
-- Precedence: the default first; then keyed patterns from least to most
-- specific (specificity = literal characters outside `*`, dots and range
-- components), so the most specific match wins; two equally specific keyed
-- patterns that both match a layer with different values are an error;
-- ordered entries last, in array order (the last match wins).

local P = {}

-- The allowed range, spelled once for error messages.
local RANGE = "2..16, or 32 = not quantized"
local GROUPS = "expected an integer >= 2, input channels per scale; 0 or none = one scale per output channel"

-- Named presets: name -> {w=, a=}; P.preset_names keeps a stable order.
P.preset_names = {"fp", "w16a16", "w8a16", "w8a8", "w6a6", "w4a16", "w4a8", "w4a4", "w2a8"}
P.presets = {}
for _, n in ipairs(P.preset_names) do
  if n == "fp" then
    P.presets[n] = {w = 32, a = 32}
  else
    local w, a = n:match("^w(%d+)a(%d+)$")
    P.presets[n] = {w = tonumber(w), a = tonumber(a)}
  end
end

local function fail(fmt, ...)
  error("precision: " .. string.format(fmt, ...), 0)
end

local function valid_bits(b)
  b = math.tointeger(b)
  return b ~= nil and ((b >= 2 and b <= 16) or b == 32), b
end

-- A weight group: true and the group (nil for 0/absent = per channel) when
-- g is nil, 0 or an integer >= 2; false otherwise.
local function valid_group(g)
  if g == nil then return true, nil end
  local gi = type(g) == "number" and math.tointeger(g) or nil
  if gi == 0 then return true, nil end
  return gi ~= nil and gi >= 2, gi
end

-- The canonical name of a (w, a[, g]) triple: "fp" for 32/32, else
-- "w<w>a<a>", with "g<g>" appended for a weight group.
local function pair_name(w, a, g)
  if w == 32 and a == 32 then return "fp" end
  return "w" .. w .. "a" .. a .. ((g and g ~= 0) and ("g" .. g) or "")
end
P.pair_name = pair_name

-- P.parse("w4a8") -> 4, 8; P.parse("w4a8g32") -> 4, 8, 32; P.parse("fp") ->
-- 32, 32. The group is nil when absent (or g0). Errors name the string.
function P.parse(s)
  if type(s) ~= "string" then
    fail("expected a precision string like 'w4a8' or 'fp', got a %s", type(s))
  end
  local t = s:lower():match("^%s*(.-)%s*$")
  if t == "fp" then return 32, 32 end
  local ws, as, rest = t:match("^w(%d+)a(%d+)(.*)$")
  if not ws or (rest ~= "" and rest:sub(1, 1) ~= "g") then
    fail("'%s' is not a precision: expected 'fp' or 'w<bits>a<bits>' (e.g. 'w4a8'), optionally followed by a "
      .. "weight group 'g<group>' (e.g. 'w4a8g32'), with bits in %s", s, RANGE)
  end
  local okw, w = valid_bits(tonumber(ws))
  if not okw then fail("'%s': weight bits %s out of range (%s)", s, ws, RANGE) end
  local oka, a = valid_bits(tonumber(as))
  if not oka then fail("'%s': activation bits %s out of range (%s)", s, as, RANGE) end
  local g = nil
  if rest ~= "" then
    local gs = rest:sub(2)
    if gs == "" then fail("'%s': no group size after 'g' (%s, e.g. 'w4a8g32')", s, GROUPS) end
    local okg = gs:match("^%d+$") ~= nil
    if okg then okg, g = valid_group(tonumber(gs)) end
    if not okg then fail("'%s': weight group '%s' is not allowed (%s)", s, gs, GROUPS) end
    if g and w == 32 then fail("'%s': weight group %d needs a quantized weight (w < 32)", s, g) end
  end
  return w, a, g
end

-- P.uniform(w, a[, g]) -> a spec giving every layer w/a (and group g):
-- "w4a8", "w4a8g32", or "fp".
function P.uniform(w, a, g)
  local okw, wi = valid_bits(w)
  if not okw then fail("uniform: weight bits %s out of range (%s)", tostring(w), RANGE) end
  local oka, ai = valid_bits(a)
  if not oka then fail("uniform: activation bits %s out of range (%s)", tostring(a), RANGE) end
  local okg, gi = valid_group(g)
  if not okg then fail("uniform: weight group %s is not allowed (%s)", tostring(g), GROUPS) end
  if gi and wi == 32 then fail("uniform: weight group %d needs a quantized weight (w < 32)", gi) end
  return pair_name(wi, ai, gi)
end

-- ---------------------------------------------------------------- targets

-- The linear layers of a target: a model (anything with :linears()) or an
-- array of {name=, in_features=, out_features=}. Returns the array and a
-- short description for messages.
local function linears_of(target)
  local list, what
  if type(target) == "table" and target.linears == nil then
    list = target
    what = "the layer list"
  elseif target ~= nil and (type(target) == "userdata" or type(target) == "table") then
    local ok, l = pcall(function() return target:linears() end)
    if not ok or type(l) ~= "table" then fail("target has no usable :linears() (%s)", tostring(l)) end
    list = l
    local iok, info = pcall(function() return target:info() end)
    if iok and type(info) == "table" then
      local file = type(info.path) == "string" and info.path:match("([^/]+)$")
      what = string.format("%s%s", info.arch or "model", file and (" " .. file) or "")
    else
      what = "the model"
    end
  else
    fail("target must be a model or an array of {name=, in_features=, out_features=}, got a %s", type(target))
  end
  for i, l in ipairs(list) do
    if type(l) ~= "table" or type(l.name) ~= "string" then
      fail("target layer [%d] has no name", i)
    end
  end
  return list, string.format("%s (%d linear layers)", what, #list)
end

-- ---------------------------------------------------------------- patterns

local function split(name)
  local out = {}
  for c in (name .. "."):gmatch("([^.]*)%.") do out[#out + 1] = c end
  return out
end

local function glob_to_lua(c)
  local parts = {}
  for i = 1, #c do
    local ch = c:sub(i, i)
    parts[#parts + 1] = ch == "*" and ".*" or ch:gsub("%p", "%%%0")
  end
  return "^" .. table.concat(parts) .. "$"
end

-- Compile a pattern into {key=, comps = {{kind=, ...}}, spec = specificity}.
local function compile(key, cfgname)
  if key == "" then fail("config '%s': empty pattern", cfgname) end
  local comps, spec = {}, 0
  local raw = split(key)
  for i, c in ipairs(raw) do
    if c == "" then fail("config '%s': pattern '%s' has an empty component", cfgname, key) end
    local lo, hi = c:match("^(%d+)%-(%d+)$")
    if lo then
      lo, hi = tonumber(lo), tonumber(hi)
      if lo > hi then fail("config '%s': pattern '%s': range %s is empty (%d > %d)", cfgname, key, c, lo, hi) end
      comps[#comps + 1] = {kind = "range", lo = lo, hi = hi}
    elseif c == "**" then
      comps[#comps + 1] = {kind = "any"}
    elseif c == "*" and (i == 1 or i == #raw) then
      comps[#comps + 1] = {kind = "some"} -- one or more
    elseif c:find("**", 1, true) then
      fail("config '%s': pattern '%s': '**' must be a whole component", cfgname, key)
    elseif c:find("*", 1, true) then
      comps[#comps + 1] = {kind = "glob", pat = glob_to_lua(c)}
      spec = spec + #c:gsub("%*", "")
    else
      comps[#comps + 1] = {kind = "lit", s = c}
      spec = spec + #c
    end
  end
  return {key = key, comps = comps, spec = spec}
end

local function comp_match(pc, s)
  if pc.kind == "lit" then return pc.s == s end
  if pc.kind == "glob" then return s:find(pc.pat) ~= nil end
  if pc.kind == "range" then
    local n = s:match("^%d+$") and tonumber(s)
    return n ~= nil and n >= pc.lo and n <= pc.hi
  end
  return false
end

-- Does compiled pattern p match the split name parts (from pi, ni)?
local function match_from(comps, pi, parts, ni)
  if pi > #comps then return ni > #parts end
  local pc = comps[pi]
  if pc.kind == "any" or pc.kind == "some" then
    local first = pc.kind == "any" and ni or ni + 1
    for k = first, #parts + 1 do
      if match_from(comps, pi + 1, parts, k) then return true end
    end
    return false
  end
  if ni > #parts then return false end
  return comp_match(pc, parts[ni]) and match_from(comps, pi + 1, parts, ni + 1)
end

local function matches(p, name)
  return match_from(p.comps, 1, split(name), 1)
end

-- P.match(pattern, name) -> boolean (the pattern rules above; for tests and tools).
function P.match(pattern, name)
  return matches(compile(pattern, "?"), name)
end

-- ---------------------------------------------------------------- config

-- A spec value -> w, a, g (g nil: no group). Errors name the config and the key.
local function value_bits(v, cfgname, key)
  if type(v) == "string" then
    local ok, w, a, g = pcall(P.parse, v)
    if not ok then fail("config '%s': %s: %s", cfgname, key, tostring(w):gsub("^precision: ", "")) end
    return w, a, g
  end
  if type(v) == "table" then
    for k in pairs(v) do
      if k ~= "w" and k ~= "a" and k ~= "g" then
        fail("config '%s': %s: unknown field '%s' (expected {w = <bits>, a = <bits>, g = <group>}, g optional)",
          cfgname, key, tostring(k))
      end
    end
    if v.w == nil or v.a == nil then
      fail("config '%s': %s: needs both w and a (e.g. {w = 4, a = 8})", cfgname, key)
    end
    local okw, w = valid_bits(v.w)
    if not okw then fail("config '%s': %s: weight bits %s out of range (%s)", cfgname, key, tostring(v.w), RANGE) end
    local oka, a = valid_bits(v.a)
    if not oka then fail("config '%s': %s: activation bits %s out of range (%s)", cfgname, key, tostring(v.a), RANGE) end
    local okg, g = valid_group(v.g)
    if not okg then
      fail("config '%s': %s: weight group %s is not allowed (%s)", cfgname, key,
        type(v.g) == "string" and ("'" .. v.g .. "'") or tostring(v.g), GROUPS)
    end
    if g and w == 32 then fail("config '%s': %s: weight group %d needs a quantized weight (w < 32)", cfgname, key, g) end
    return w, a, g
  end
  fail("config '%s': %s: value is a %s; expected a precision like 'w4a8' or a table {w = <bits>, a = <bits>}",
    cfgname, key, type(v))
end

-- One layer's entry: {name=, w=, a=} plus g= only for a weight group, so
-- that per-channel layers look as they always did.
local function layer_entry(name, w, a, g)
  return {name = name, w = w, a = a, g = g}
end

-- P.name(cfg) -> the canonical name of what cfg does: "fp", "w4a8" or
-- "w4a8g32" when every layer is alike, else "mixed-w<ws>a<as>" with the
-- distinct bit-widths joined by "/" (e.g. "mixed-w4/8a8"), followed by
-- "g<gs>" when a quantized weight has a group, with 0 for the per-channel
-- ones (e.g. "mixed-w4a8g0/32"; layers at w32 have no group).
function P.name(cfg)
  local layers = cfg.layers or {}
  if #layers == 0 then return "empty" end
  local ws, as, gs, wseen, aseen, gseen = {}, {}, {}, {}, {}, {}
  local grouped = false
  for _, l in ipairs(layers) do
    if not wseen[l.w] then wseen[l.w] = true; ws[#ws + 1] = l.w end
    if not aseen[l.a] then aseen[l.a] = true; as[#as + 1] = l.a end
    if l.w < 32 then
      local g = l.g or 0
      grouped = grouped or g ~= 0
      if not gseen[g] then gseen[g] = true; gs[#gs + 1] = g end
    end
  end
  if #ws == 1 and #as == 1 and #gs <= 1 then return pair_name(ws[1], as[1], gs[1]) end
  table.sort(ws)
  table.sort(as)
  table.sort(gs)
  return "mixed-w" .. table.concat(ws, "/") .. "a" .. table.concat(as, "/") ..
    (grouped and ("g" .. table.concat(gs, "/")) or "")
end

-- P.config(target, spec, name) -> {name=, layers = {{name=, w=, a=[, g=]}, ...}}
function P.config(target, spec, name)
  local list, what = linears_of(target)
  if name ~= nil and type(name) ~= "string" then fail("config name must be a string, got a %s", type(name)) end
  local label = name or (type(spec) == "table" and type(spec.name) == "string" and spec.name) or
    (type(spec) == "string" and spec) or "(unnamed)"
  local layers = {}
  if type(spec) == "string" then
    local w, a, g = value_bits(spec, label, "spec")
    for i, l in ipairs(list) do layers[i] = layer_entry(l.name, w, a, g) end
  elseif type(spec) == "table" then
    -- a bare {w=, a=[, g=]} is a uniform spec
    if spec.w ~= nil or spec.a ~= nil then
      for k in pairs(spec) do
        if k ~= "w" and k ~= "a" and k ~= "g" and k ~= "name" then
          fail("config '%s': a spec with w/a is uniform and takes no other key (found '%s')", label, tostring(k))
        end
      end
      local w, a, g = value_bits({w = spec.w, a = spec.a, g = spec.g}, label, "spec")
      for i, l in ipairs(list) do layers[i] = layer_entry(l.name, w, a, g) end
    else
      local dw, da, dg = 32, 32, nil
      if spec.default ~= nil then dw, da, dg = value_bits(spec.default, label, "default") end
      for i, l in ipairs(list) do layers[i] = layer_entry(l.name, dw, da, dg) end
      -- keyed patterns, sorted by (specificity, key) for a stable order
      local keyed, n_ordered = {}, #spec
      for k, v in pairs(spec) do
        if type(k) == "string" then
          if k ~= "default" and k ~= "name" then
            local p = compile(k, label)
            p.w, p.a, p.g = value_bits(v, label, "pattern '" .. k .. "'")
            keyed[#keyed + 1] = p
          elseif k == "name" and type(v) ~= "string" then
            fail("config '%s': name must be a string, got a %s", label, type(v))
          end
        elseif not (math.type(k) == "integer" and k >= 1 and k <= n_ordered) then
          fail("config '%s': unexpected key %s (patterns are strings; ordered entries are {pattern, value})",
            label, tostring(k))
        end
      end
      table.sort(keyed, function(x, y)
        if x.spec ~= y.spec then return x.spec < y.spec end
        return x.key < y.key
      end)
      local hits = {}
      for _, p in ipairs(keyed) do hits[p] = 0 end
      for i, l in ipairs(list) do
        local winner
        for _, p in ipairs(keyed) do
          if matches(p, l.name) then
            hits[p] = hits[p] + 1
            if winner and winner.spec == p.spec and (winner.w ~= p.w or winner.a ~= p.a or winner.g ~= p.g) then
              fail("config '%s': patterns '%s' and '%s' are equally specific and give layer %s different "
                .. "precisions; make one more specific or use an ordered entry {pattern, value}",
                label, winner.key, p.key, l.name)
            end
            winner = p
          end
        end
        if winner then layers[i] = layer_entry(l.name, winner.w, winner.a, winner.g) end
      end
      for _, p in ipairs(keyed) do
        if hits[p] == 0 then fail("config '%s': pattern '%s' matches no layer of %s", label, p.key, what) end
      end
      -- ordered entries {pattern, value}, in array order
      for j = 1, n_ordered do
        local e = spec[j]
        if type(e) ~= "table" or type(e[1]) ~= "string" or e[2] == nil or e[3] ~= nil then
          fail("config '%s': ordered entry [%d] must be {pattern, value}", label, j)
        end
        local p = compile(e[1], label)
        local w, a, g = value_bits(e[2], label, "entry [" .. j .. "] '" .. e[1] .. "'")
        local hit = false
        for i, l in ipairs(list) do
          if matches(p, l.name) then layers[i], hit = layer_entry(l.name, w, a, g), true end
        end
        if not hit then fail("config '%s': pattern '%s' matches no layer of %s", label, e[1], what) end
      end
    end
  else
    fail("config '%s': spec must be a precision string or a table, got a %s", label, type(spec))
  end
  local cfg = {layers = layers}
  cfg.name = name or (type(spec) == "table" and spec.name) or P.name(cfg)
  return cfg
end

-- ---------------------------------------------------------------- cost

-- Check that cfg fits the target's layers; returns the layer list.
local function check_fit(cfg, target)
  if type(cfg) ~= "table" or type(cfg.layers) ~= "table" then
    fail("expected a configuration {name=, layers=} (from P.config), got a %s", type(cfg))
  end
  local list, what = linears_of(target)
  if #cfg.layers ~= #list then
    fail("config '%s' has %d layers, %s", tostring(cfg.name), #cfg.layers, what)
  end
  for i, l in ipairs(list) do
    local c = cfg.layers[i]
    if c.name ~= l.name then
      fail("config '%s': layer %d is '%s', the target's is '%s'", tostring(cfg.name), i, tostring(c.name), l.name)
    end
    if not valid_bits(c.w) or not valid_bits(c.a) then
      fail("config '%s': layer %s has w=%s a=%s (%s)", tostring(cfg.name), l.name, tostring(c.w), tostring(c.a), RANGE)
    end
    if not valid_group(c.g) then
      fail("config '%s': layer %s has weight group g=%s (%s)", tostring(cfg.name), l.name, tostring(c.g), GROUPS)
    end
  end
  return list
end

-- bits -> bytes, an integer when exact.
local function bytes_of(bits)
  if bits % 8 == 0 then return bits // 8 end
  return bits / 8
end

-- P.cost(cfg, target, seq_len, opts) -> {bitops=, bytes=, fp_bitops=, fp_bytes=,
-- bitops_ratio=, bytes_ratio=, avg_wbits=, avg_abits=, macs=, params=,
-- scale_bytes=, scales=, bpw=, layers = {...}}
--   macs   = seq_len * sum(in * out)
--   bitops = seq_len * sum(in * out * w * a)            (32 for an fp side)
--   bytes  = sum(in * out * w / 8 + (w < 32 and S * out * ceil(in / g) or 0))
--            one fp16 scale (S = 2 bytes; 4 with opts.zero_point: an fp16
--            offset too, as an asymmetric quantizer needs) per group of g
--            input channels of a row; g = the layer's own, else the target
--            layer's weight_group (model:linears() reports the model's
--            weight_opts.group), else in (one scale per output channel)
--   fp_*   = the same with every layer at w32a32
--   avg_wbits, avg_abits: averages weighted by in * out (parameters = MACs per token)
--   bpw    = 8 * bytes / params: stored bits per weight, scales included
-- layers[i] = {name=, params=, groups=, g=, bitops=, bytes=, scale_bytes=}
-- (groups: scales stored, out * ceil(in / g); g nil = per output channel).
-- Counts are exact Lua integers (bytes is a float only if not a whole number).
function P.cost(cfg, target, seq_len, opts)
  local list = check_fit(cfg, target)
  seq_len = seq_len == nil and 1 or math.tointeger(seq_len)
  if not seq_len or seq_len < 1 then fail("cost: seq_len must be a positive integer, got %s", tostring(seq_len)) end
  if opts ~= nil and type(opts) ~= "table" then fail("cost: opts must be a table {zero_point = true}, got a %s", type(opts)) end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "zero_point" then fail("cost: unknown option '%s' (known: zero_point)", tostring(k)) end
  end
  local scale_bits = opts.zero_point and 32 or 16
  local params, wsum, asum, bitops, fp_bitops, bits, sbits, nscales = 0, 0, 0, 0, 0, 0, 0, 0
  local per = {}
  for i, l in ipairs(list) do
    local c = cfg.layers[i]
    local fi, fo = math.tointeger(l.in_features), math.tointeger(l.out_features)
    if not fi or not fo or fi < 1 or fo < 1 then
      fail("cost: layer %s needs positive integer in_features and out_features", l.name)
    end
    local g = c.g
    if g == nil and l.weight_group ~= nil then
      local okg, tg = valid_group(l.weight_group)
      if not okg then fail("cost: layer %s: target weight_group %s (%s)", l.name, tostring(l.weight_group), GROUPS) end
      g = tg
    end
    if g and g >= fi then g = nil end -- one group per row: per channel
    local n = fi * fo
    local lbitops = seq_len * n * c.w * c.a
    local groups = c.w < 32 and fo * (g and (fi + g - 1) // g or 1) or 0
    params = params + n
    wsum, asum = wsum + n * c.w, asum + n * c.a
    bitops = bitops + lbitops
    fp_bitops = fp_bitops + seq_len * n * 32 * 32
    bits = bits + n * c.w + groups * scale_bits
    sbits = sbits + groups * scale_bits
    nscales = nscales + groups
    per[i] = {name = l.name, params = n, groups = groups, g = c.w < 32 and g or nil, bitops = lbitops,
      bytes = bytes_of(n * c.w + groups * scale_bits), scale_bytes = bytes_of(groups * scale_bits)}
  end
  local fp_bytes = params * 4
  local r = {
    macs = seq_len * params, params = params, seq_len = seq_len,
    bitops = bitops, fp_bitops = fp_bitops, bytes = bytes_of(bits), fp_bytes = fp_bytes,
    scale_bytes = bytes_of(sbits), scales = nscales, layers = per,
  }
  r.bitops_ratio = params > 0 and bitops / fp_bitops or 1.0
  r.bytes_ratio = params > 0 and bytes_of(bits) / fp_bytes or 1.0
  r.avg_wbits = params > 0 and wsum / params or 32.0
  r.avg_abits = params > 0 and asum / params or 32.0
  r.bpw = params > 0 and bits / params or 32.0
  return r
end

-- ---------------------------------------------------------------- describe

local function si(x)
  local units = {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}}
  for _, u in ipairs(units) do
    if x >= u[1] then return string.format("%.3g %s", x / u[1], u[2]) end
  end
  return string.format("%.3g ", x)
end

-- Rows {pattern, w, a, g} (g nil without a group) covering every layer: when the names are
-- <prefix>.<index>.<role> with one prefix, runs of consecutive indices with
-- identical rows are merged into a range and roles sharing a precision into
-- "<parent>.*" or "*"; otherwise consecutive equal layers become one row
-- "first .. last". The patterns are valid P.config keys.
local function rows_of(cfg)
  local layers = cfg.layers
  local prefix, grid, roles, role_index, idx_order = nil, {}, {}, {}, {}
  local structured = #layers > 0
  for _, l in ipairs(layers) do
    local pre, idx, role = l.name:match("^(.-)%.(%d+)%.(.+)$")
    if not pre then pre = ""; idx, role = l.name:match("^(%d+)%.(.+)$") end
    if not idx then structured = false; break end
    if prefix ~= nil and pre ~= prefix then structured = false; break end
    prefix = pre
    idx = tonumber(idx)
    if not role_index[role] then roles[#roles + 1] = role; role_index[role] = #roles end
    if not grid[idx] then grid[idx] = {}; idx_order[#idx_order + 1] = idx end
    if grid[idx][role] then structured = false; break end
    grid[idx][role] = l
  end
  local rows = {}
  if structured then
    -- every index must have every role, and indices must be ascending
    for k, idx in ipairs(idx_order) do
      if k > 1 and idx <= idx_order[k - 1] then structured = false end
      for _, r in ipairs(roles) do if not grid[idx][r] then structured = false end end
    end
  end
  if not structured then
    local i = 1
    while i <= #layers do
      local j = i
      while j < #layers and layers[j + 1].w == layers[i].w and layers[j + 1].a == layers[i].a and
        layers[j + 1].g == layers[i].g do
        j = j + 1
      end
      local label = i == j and layers[i].name or (layers[i].name .. " .. " .. layers[j].name)
      rows[#rows + 1] = {label, layers[i].w, layers[i].a, layers[i].g}
      i = j + 1
    end
    return rows
  end
  local function same_row(x, y)
    for _, r in ipairs(roles) do
      local p, q = grid[x][r], grid[y][r]
      if p.w ~= q.w or p.a ~= q.a or p.g ~= q.g then return false end
    end
    return true
  end
  local parent_count = {}
  for _, r in ipairs(roles) do
    local parent = r:match("^(.*)%.[^.]+$")
    if parent then parent_count[parent] = (parent_count[parent] or 0) + 1 end
  end
  local head = prefix == "" and "" or (prefix .. ".")
  local k = 1
  while k <= #idx_order do
    local m = k
    while m < #idx_order and idx_order[m + 1] == idx_order[m] + 1 and same_row(idx_order[k], idx_order[m + 1]) do
      m = m + 1
    end
    local lo, hi = idx_order[k], idx_order[m]
    local range = lo == hi and tostring(lo) or (lo .. "-" .. hi)
    -- group roles by (w, a, g), in order of first appearance
    local groups, gkey = {}, {}
    for _, r in ipairs(roles) do
      local l = grid[lo][r]
      local key = l.w .. "/" .. l.a .. "/" .. tostring(l.g)
      if not gkey[key] then
        gkey[key] = {w = l.w, a = l.a, g = l.g, set = {}, list = {}}
        groups[#groups + 1] = gkey[key]
      end
      gkey[key].set[r] = true
      gkey[key].list[#gkey[key].list + 1] = r
    end
    for _, g in ipairs(groups) do
      if #g.list == #roles then
        rows[#rows + 1] = {head .. range .. ".*", g.w, g.a, g.g}
      else
        local in_parent, done = {}, {}
        for _, r in ipairs(g.list) do
          local parent = r:match("^(.*)%.[^.]+$")
          if parent then in_parent[parent] = (in_parent[parent] or 0) + 1 end
        end
        for _, r in ipairs(g.list) do
          local parent = r:match("^(.*)%.[^.]+$")
          if parent and in_parent[parent] == parent_count[parent] then
            if not done[parent] then
              done[parent] = true
              rows[#rows + 1] = {head .. range .. "." .. parent .. ".*", g.w, g.a, g.g}
            end
          else
            rows[#rows + 1] = {head .. range .. "." .. r, g.w, g.a, g.g}
          end
        end
      end
    end
    k = m + 1
  end
  return rows
end

-- P.rows(cfg) -> the compressed rows {{pattern, w, a, g}, ...} that describe
-- prints (g nil for per-channel layers, so {pattern, w, a} as before).
function P.rows(cfg)
  if type(cfg) ~= "table" or type(cfg.layers) ~= "table" then
    fail("expected a configuration {name=, layers=} (from P.config), got a %s", type(cfg))
  end
  return rows_of(cfg)
end

-- P.describe(cfg, target, seq_len) -> a multi-line string: a header, the
-- compressed rows (pattern, w, a, and g when a layer has a weight group:
-- "-" for per-channel rows) and, when target is given, the cost line.
function P.describe(cfg, target, seq_len)
  if target ~= nil then check_fit(cfg, target) end
  local rows = P.rows(cfg)
  local width, grouped = 7, false
  for _, r in ipairs(rows) do
    width = math.max(width, #r[1])
    grouped = grouped or r[4] ~= nil
  end
  local out = {}
  local canon = P.name(cfg)
  out[#out + 1] = string.format("config %s: %d linear layers%s, w/a in bits, 32 = not quantized%s",
    tostring(cfg.name), #cfg.layers, canon == cfg.name and "" or (" (" .. canon .. ")"),
    grouped and ", g = input channels per weight scale (- = per output channel)" or "")
  out[#out + 1] = string.format("  %-" .. width .. "s  %3s  %3s", "pattern", "w", "a") .. (grouped and "     g" or "")
  for _, r in ipairs(rows) do
    out[#out + 1] = string.format("  %-" .. width .. "s  %3d  %3d", r[1], r[2], r[3]) ..
      (grouped and string.format("  %4s", r[4] and tostring(r[4]) or "-") or "")
  end
  if target ~= nil then
    local c = P.cost(cfg, target, seq_len)
    out[#out + 1] = string.format(
      "  cost: BitOPs %.4f of fp (%sBitOPs at %d token%s), weights %.4f of fp (%sB), avg w %.2f bits, avg a %.2f bits",
      c.bitops_ratio, si(c.bitops), c.seq_len, c.seq_len == 1 and "" or "s", c.bytes_ratio, si(c.bytes), c.avg_wbits, c.avg_abits)
  end
  return table.concat(out, "\n")
end

-- P.layers(cfg, target) -> a multi-line string, one row per linear layer:
-- its index, name, shape (in x out, when target is given), w and a bits,
-- the weight group (a g column when some layer has one; - = per output
-- channel), adapter slot (-1 = none) and share of the configuration's
-- BitOPs. The long form of describe, for checking what a pattern matched.
function P.layers(cfg, target)
  local list = target ~= nil and check_fit(cfg, target) or nil
  if list == nil then P.rows(cfg) end -- validates cfg
  local width, grouped = 5, false
  for _, l in ipairs(cfg.layers) do
    width = math.max(width, #l.name)
    grouped = grouped or l.g ~= nil
  end
  local total = 0
  if list then
    for i, l in ipairs(list) do
      total = total + l.in_features * l.out_features * cfg.layers[i].w * cfg.layers[i].a
    end
  end
  local out = {string.format("config %s: %d linear layers", tostring(cfg.name), #cfg.layers)}
  local gcol = function(v) return grouped and string.format("  %4s", v) or "" end
  out[#out + 1] = string.format("  %4s  %-" .. width .. "s  %11s  %3s  %3s", "#", "layer",
    list and "in x out" or "", "w", "a") .. gcol("g") ..
    string.format("  %7s  %7s", "adapter", list and "BitOPs%" or "")
  for i, l in ipairs(cfg.layers) do
    local shape, share = "", ""
    if list then
      local n = list[i].in_features * list[i].out_features
      shape = string.format("%d x %d", list[i].in_features, list[i].out_features)
      share = string.format("%.2f", total > 0 and 100 * n * l.w * l.a / total or 0)
    end
    out[#out + 1] = string.format("  %4d  %-" .. width .. "s  %11s  %3d  %3d", i, l.name, shape, l.w, l.a) ..
      gcol(l.g and tostring(l.g) or "-") ..
      string.format("  %7s  %7s", tostring(l.adapter == nil and -1 or l.adapter), share)
  end
  for i, line in ipairs(out) do out[i] = line:gsub("%s+$", "") end
  return table.concat(out, "\n")
end

-- ---------------------------------------------------------------- load

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- Configurations from one .lua file: it returns a spec (string or table;
-- named by its `name` field or the file's base name) or an array of
-- {name=, spec=} entries or of specs with a `name` field.
local function load_file(path, target)
  local chunk, err = loadfile(path, "t")
  if not chunk then fail("cannot load '%s': %s", path, tostring(err)) end
  local ok, v = pcall(chunk)
  if not ok then fail("'%s' raised an error: %s", path, tostring(v)) end
  local function wrap(f, ...)
    local ok2, r = pcall(f, ...)
    if not ok2 then error("precision: " .. path .. ": " .. tostring(r):gsub("^precision: ", ""), 0) end
    return r
  end
  local base = path:match("([^/]+)%.lua$") or path
  if type(v) == "string" then return {wrap(P.config, target, v, trim(v):lower())} end
  if type(v) ~= "table" then fail("'%s' returned a %s; expected a spec or an array of named specs", path, type(v)) end
  local first = v[1]
  local is_list = type(first) == "table" and (first.spec ~= nil or type(first.name) == "string")
  if not is_list then return {wrap(P.config, target, v, type(v.name) == "string" and v.name or base)} end
  local out = {}
  for i, e in ipairs(v) do
    if type(e) ~= "table" then fail("'%s': entry [%d] is a %s; expected {name=, spec=} or a named spec", path, i, type(e)) end
    if e.spec ~= nil then
      for k in pairs(e) do
        if k ~= "name" and k ~= "spec" then fail("'%s': entry [%d] has unknown field '%s'", path, i, tostring(k)) end
      end
      local nm = e.name
      if nm == nil and type(e.spec) == "string" then nm = trim(e.spec):lower() end
      if type(nm) ~= "string" then fail("'%s': entry [%d] has no name", path, i) end
      out[#out + 1] = wrap(P.config, target, e.spec, nm)
    else
      if type(e.name) ~= "string" then fail("'%s': entry [%d] has no name", path, i) end
      out[#out + 1] = wrap(P.config, target, e, e.name)
    end
  end
  if #out == 0 then fail("'%s' returned an empty list", path) end
  return out
end

-- P.load(list, target) -> array of configurations. list: a comma-separated
-- string of precisions ("fp,w8a8,w4a8") and/or .lua files, or an array of
-- such strings and spec tables. Names must be unique.
function P.load(list, target)
  local items = {}
  if type(list) == "string" then
    for item in (list .. ","):gmatch("([^,]*),") do
      item = trim(item)
      if item ~= "" then items[#items + 1] = item end
    end
  elseif type(list) == "table" then
    for i, item in ipairs(list) do items[i] = item end
  else
    fail("load: expected a comma-separated string or an array, got a %s", type(list))
  end
  if #items == 0 then fail("load: no configurations in '%s'", tostring(list)) end
  local out, seen = {}, {}
  local function add(cfg, from)
    if seen[cfg.name] then
      fail("load: duplicate configuration name '%s' (from %s and %s)", cfg.name, seen[cfg.name], from)
    end
    seen[cfg.name] = from
    out[#out + 1] = cfg
  end
  for _, item in ipairs(items) do
    if type(item) == "string" and item:match("%.lua$") then
      for _, cfg in ipairs(load_file(item, target)) do add(cfg, "'" .. item .. "'") end
    elseif type(item) == "string" then
      local w, a, g = P.parse(item)
      add(P.config(target, item, pair_name(w, a, g)), "'" .. item .. "'")
    elseif type(item) == "table" then
      add(P.config(target, item), "a spec table")
    else
      fail("load: item is a %s; expected a precision, a .lua file or a spec table", type(item))
    end
  end
  return out
end

-- ---------------------------------------------------------------- adapters

-- P.assign_adapters(cfgs) -> slots, per_layer. The LoRA bank: layer i gets
-- one adapter per distinct (w, a, g) it has across cfgs (a weight group
-- changes Qw(W), so it is another adapter's job), numbered from 0
-- in order of first appearance (cfgs in array order); fp layers get one too.
-- Sets cfgs[k].layers[i].adapter; returns the slot count the bank needs (the
-- maximum over layers) and the per-layer counts.
function P.assign_adapters(cfgs)
  if type(cfgs) ~= "table" or #cfgs == 0 then fail("assign_adapters: expected a non-empty array of configurations") end
  local n = nil
  for k, cfg in ipairs(cfgs) do
    if type(cfg) ~= "table" or type(cfg.layers) ~= "table" then
      fail("assign_adapters: entry [%d] is not a configuration", k)
    end
    if n == nil then n = #cfg.layers end
    if #cfg.layers ~= n then
      fail("assign_adapters: config '%s' has %d layers, '%s' has %d", tostring(cfg.name), #cfg.layers,
        tostring(cfgs[1].name), n)
    end
    for i, l in ipairs(cfg.layers) do
      if l.name ~= cfgs[1].layers[i].name then
        fail("assign_adapters: config '%s' layer %d is '%s', config '%s' has '%s'", tostring(cfg.name), i,
          tostring(l.name), tostring(cfgs[1].name), tostring(cfgs[1].layers[i].name))
      end
    end
  end
  local slots, per_layer = 0, {}
  for i = 1, n do
    local seen, count = {}, 0
    for _, cfg in ipairs(cfgs) do
      local l = cfg.layers[i]
      local key = l.w .. "/" .. l.a .. "/" .. tostring(l.g)
      if seen[key] == nil then seen[key] = count; count = count + 1 end
      l.adapter = seen[key]
    end
    per_layer[i] = count
    if count > slots then slots = count end
  end
  return slots, per_layer
end

return P
