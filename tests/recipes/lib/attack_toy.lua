-- attack_toy.lua - the toy victims of the attack tests (require("attack_toy")
-- from tests/recipes/*.lua): a score from known words, and a log of every
-- candidate it scored, in order, so that a batched attack can be compared
-- with the sequential one query by query.
local A = {}

-- A.victim(targets) -> v: v.fn(candidate) -> the fraction of `targets`
-- intact minus a tiny hash of the text (a deterministic tie-break: which
-- candidate wins then depends on which is which, so a reordering shows);
-- v.batch({candidate, ...}) -> {score, ...} the same for a list. v.log: every
-- candidate scored, in order; v.sizes: the size of each batch.
function A.victim(targets)
  local v = {log = {}, sizes = {}}
  function v.fn(c)
    v.log[#v.log + 1] = c
    local k = 0
    for _, w in ipairs(targets) do
      if c:find(w, 1, true) then k = k + 1 end
    end
    local h = 0
    for j = 1, #c do h = (h * 31 + c:byte(j)) % 1000003 end
    return k / #targets - h / 1e9
  end
  function v.batch(cs)
    v.sizes[#v.sizes + 1] = #cs
    local out = {}
    for i, c in ipairs(cs) do out[i] = v.fn(c) end
    return out
  end
  return v
end

-- A.both(attack, text, edits, seed, targets) -> seq, bat: the attack run one
-- query at a time and batched, each on a fresh victim; .out the perturbed
-- text, .v the victim (its log and batch sizes).
function A.both(attack, text, edits, seed, targets)
  local s, b = A.victim(targets), A.victim(targets)
  local so = attack:perturb(text, s.fn, edits, seed)
  local bo = attack:perturb(text, b.fn, edits, seed, b.batch)
  return {out = so, v = s}, {out = bo, v = b}
end

-- the largest batch of a victim (0: none)
function A.largest(v)
  local m = 0
  for _, n in ipairs(v.sizes) do m = math.max(m, n) end
  return m
end

return A
