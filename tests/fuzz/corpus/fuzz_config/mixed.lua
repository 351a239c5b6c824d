-- mixed.lua - first mixed-precision configurations to try on SmolLM2
-- (Llama layer names, 30 layers). Load with
--   P.load("recipes/configs/mixed.lua", model)    -- or recipes/ptq.lua --mixed=...
-- Pattern syntax and precedence: docs/PRECISION.md.
return {
  -- The MLP holds 2/3 of the linear weights (3 x 576 x 1536 per layer
  -- against 576 x 1536 for q, k, v, o together), so 4-bit MLP weights buy
  -- most of the saving while attention keeps 8 bits.
  {name = "mlp4", default = "w8a8", ["model.layers.*.mlp.*"] = "w4a8"},

  -- The first and last layers are commonly the most sensitive to
  -- quantization: keep layers 0-2 and 27-29 at 8 bits, the middle at 4.
  {name = "edges8", default = "w4a8", ["model.layers.0-2.*"] = "w8a8", ["model.layers.27-29.*"] = "w8a8"},

  -- down_proj's input (the gated MLP activation) has the largest outliers
  -- in Llama-family models, so it is the first activation to leave
  -- unquantized at 16 bits while every weight is at 4.
  {name = "down16", default = "w4a8", ["*.down_proj"] = "w4a16"},
}
