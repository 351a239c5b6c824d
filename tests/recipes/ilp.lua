-- ilp.lua - qr.ilp, the bit-width integer program (core/search/ilp.c)
-- from Lua:
--   ilp-1  a small program with a known optimum: 1-based choice, loss,
--          cost, status; a second budget changes the optimum; cost2 is
--          reported whenever every option has one
--   ilp-2  random programs (seeded) against brute force in Lua: the same
--          objective exactly, within both budgets
--   ilp-3  refusals naming the group and option (1-based): empty groups, a
--          group without options, a missing or negative or infinite cost,
--          a missing loss, cost2 on some options only, budget2 without
--          cost2, unknown keys; an unreachable budget names itself and the
--          minimum reachable cost
local T = require("qr.qrtest")

-- two layers, options {8 bits, 4 bits, 2 bits}: cost = bytes, loss = sensitivity
local groups = {
  {{cost = 8, loss = 0, cost2 = 64}, {cost = 4, loss = 1, cost2 = 16}, {cost = 2, loss = 5, cost2 = 4}},
  {{cost = 16, loss = 0, cost2 = 64}, {cost = 8, loss = 3, cost2 = 16}, {cost = 4, loss = 4, cost2 = 4}},
}
local r = qr.ilp{groups = groups, budget = 16}
-- within 16: (4b, 4b) 12 -> loss 4; (8b, 4b) 16 -> 3; (2b, 4b) 10 -> 8; (8b, 2b) 12 -> 4
T.eq("ilp-1.1 optimum", {r.choice, r.loss, r.cost, r.status, r.cost2, r.min_cost},
  {{1, 2}, 3.0, 16.0, "optimal", 80.0, 6.0})
r = qr.ilp{groups = groups, budget = 16, budget2 = 40}
-- cost2 <= 40 rules out (8b, 4b) (80): (4b, 4b) cost2 32 -> loss 4 and (8b, 2b) 68 -> no
T.eq("ilp-1.2 a second budget", {r.choice, r.loss, r.cost, r.cost2, r.min_cost2}, {{2, 2}, 4.0, 12.0, 32.0, 8.0})
r = qr.ilp{groups = groups, budget = math.huge}
T.eq("ilp-1.3 no constraint: each group's lowest loss", {r.choice, r.loss}, {{1, 1}, 0.0})
T.ok("ilp-1.4 solves and seconds", r.solves >= 1 and r.seconds >= 0)

-- ilp-2: brute force
local s = 7
local function rnd() s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 end
local function brute(gs, b, b2)
  local best, ch = math.huge, {}
  local function go(i, c, c2, l)
    if i > #gs then
      if c <= b and c2 <= b2 and l < best then best = l end
      return
    end
    for j, o in ipairs(gs[i]) do go(i + 1, c + o.cost, c2 + o.cost2, l + o.loss) end
  end
  go(1, 0.0, 0.0, 0.0)
  return best
end
local agree, n, within = 0, 0, 0
for t = 1, 40 do
  local gs, lo, hi, lo2, hi2 = {}, 0, 0, 0, 0
  for i = 1, 2 + t % 4 do
    gs[i] = {}
    local a, b, a2, b2 = math.huge, 0, math.huge, 0
    for j = 1, 2 + t % 3 do
      local o = {cost = math.floor(rnd() * 50), loss = rnd(), cost2 = math.floor(rnd() * 50)}
      gs[i][j] = o
      a, b, a2, b2 = math.min(a, o.cost), math.max(b, o.cost), math.min(a2, o.cost2), math.max(b2, o.cost2)
    end
    lo, hi, lo2, hi2 = lo + a, hi + b, lo2 + a2, hi2 + b2
  end
  local b, b2 = math.floor(lo + (hi - lo) * rnd()), math.floor(lo2 + (hi2 - lo2) * 0.8)
  local want = brute(gs, b, b2)
  local ok, res = pcall(qr.ilp, {groups = gs, budget = b, budget2 = b2})
  if ok then
    n = n + 1
    -- the objective from the choice, summed in group order as brute force does
    local l, c, c2 = 0.0, 0.0, 0.0
    for i, j in ipairs(res.choice) do l, c, c2 = l + gs[i][j].loss, c + gs[i][j].cost, c2 + gs[i][j].cost2 end
    if l == want and res.loss == l then agree = agree + 1 end
    if c <= b and c2 <= b2 then within = within + 1 end
  elseif want == math.huge and tostring(res):find("no choice meets both", 1, true) then
    agree, n, within = agree + 1, n + 1, within + 1
  end
end
T.eq("ilp-2.1 random programs: brute force's objective, within budget", {agree, within, n}, {40, 40, 40})

-- ilp-3: refusals
T.errors("ilp-3.1 empty groups", function() qr.ilp{groups = {}, budget = 1} end, "groups is empty")
T.errors("ilp-3.2 a group without options", function() qr.ilp{groups = {groups[1], {}}, budget = 1} end,
  "group 2 has no options")
T.errors("ilp-3.3 missing cost", function() qr.ilp{groups = {{{loss = 1}}}, budget = 1} end,
  "group 1, option 1: cost is missing")
T.errors("ilp-3.4 negative cost", function() qr.ilp{groups = {{{cost = 1, loss = 0}, {cost = -2, loss = 0}}}, budget = 1} end,
  "group 1, option 2: cost -2")
T.errors("ilp-3.5 infinite cost", function() qr.ilp{groups = {{{cost = math.huge, loss = 0}}}, budget = 1} end,
  "group 1, option 1: cost inf")
T.errors("ilp-3.6 missing loss", function() qr.ilp{groups = {{{cost = 1}}, {{cost = 1, loss = "x"}}}, budget = 1} end,
  "group 1, option 1: loss is missing")
T.errors("ilp-3.7 a loss that is not a number", function() qr.ilp{groups = {{{cost = 1, loss = {}}}}, budget = 1} end,
  "group 1, option 1: loss table")
T.errors("ilp-3.8 cost2 on some options only",
  function() qr.ilp{groups = {{{cost = 1, loss = 0, cost2 = 1}}, {{cost = 1, loss = 0}}}, budget = 5} end,
  "cost2 is given on group 1, option 1 but not on group 2, option 1")
T.errors("ilp-3.9 budget2 without cost2", function() qr.ilp{groups = {{{cost = 1, loss = 0}}}, budget = 5, budget2 = 1} end,
  "budget2 is given but group 1, option 1 has no cost2")
T.errors("ilp-3.10 unknown key", function() qr.ilp{groups = groups, budget = 5, budgte2 = 1} end,
  "unknown option 'budgte2'")
T.errors("ilp-3.11 no budget", function() qr.ilp{groups = groups} end, "budget must be a number")
T.errors("ilp-3.12 an unreachable budget", function() qr.ilp{groups = groups, budget = 5} end,
  "budget 5 is below the minimum reachable cost 6")
T.errors("ilp-3.13 a group that is not a table", function() qr.ilp{groups = {groups[1], 3}, budget = 50} end,
  "group 2 is not an array of options")
T.done()
