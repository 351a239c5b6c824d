-- paired.lua - the paired bootstrap of the per-question F1 (and EM)
-- difference between two evaluated models on the same dev questions, from
-- the results.json of any recipe that keeps per-question scores (cpt.lua,
-- sp.lua, search.lua):
--
--   qrun recipes/paired.lua --a=runs/cpt-2shot/results.json:joint --b=runs/cpt/results.json:joint
--   qrun recipes/paired.lua --a=runs/sp/results.json --b=runs/sp-kd/results.json --configs=w4a8 --out=d.json
--
-- FILE[:ARM]: a results.json and, for a file with several arms (cpt.lua's
-- "arm" field), which one. Every configuration evaluated in both (or
-- --configs) is compared: a - b, mean difference in points and its 95%
-- percentile bootstrap interval over questions (--iters resamples, --seed),
-- with the verdict the interval gives. Both files must have been evaluated
-- on the same questions: the same eval_data file name and eval_n (or the
-- rows' n), else the comparison is refused naming the field.
local C = require("qr.cpt")

local o = qr.opts{
  {"a", "", "the first: a results.json, optionally :ARM"},
  {"b", "", "the second (the reference the difference is taken from)"},
  {"configs", "", "configurations to compare (default: every one evaluated in both)"},
  {"iters", 2000, "bootstrap resamples"},
  {"seed", 1, "bootstrap seed"},
  {"out", "", "write the comparison here as JSON"},
}

local function refuse(fmt, ...)
  io.stderr:write("paired: ", string.format(fmt, ...), "\n")
  os.exit(2)
end
if o.a == "" or o.b == "" then refuse("--a and --b are required (FILE[:ARM] each)") end
if not math.tointeger(o.iters) or o.iters < 100 then refuse("--iters=%s: expected an integer >= 100", tostring(o.iters)) end

-- FILE[:ARM] -> the file's document, its rows of that arm by config name
local function side(spec, opt)
  local path, arm = spec:match("^(.-):([%w_%-]+)$")
  if not path or path == "" then path, arm = spec, nil end
  local f = io.open(path, "rb")
  if not f then refuse("--%s=%s: cannot read %s", opt, spec, path) end
  f:close()
  local ok, doc = pcall(qr.json.read, path)
  if not ok or type(doc) ~= "table" then refuse("--%s: %s is not JSON: %s", opt, path, tostring(doc)) end
  if type(doc.results) ~= "table" then refuse("--%s: %s has no 'results' array", opt, path) end
  local rows, arms = {}, {}
  for i, r in ipairs(doc.results) do
    if type(r) == "table" and type(r.config) == "string" then
      local a = r.arm
      if a then arms[a] = true end
      if arm == nil or a == arm then
        local pq = r.per_question
        if type(pq) == "table" and type(pq.f1) == "table" and #pq.f1 > 0 then
          if rows[r.config] and arm == nil and a then
            refuse("--%s: %s has several arms evaluated at '%s': name one (%s:ARM)", opt, path, r.config, path)
          end
          rows[r.config] = r
        end
      end
    end
  end
  if arm and not arms[arm] then
    local names = {}
    for k in pairs(arms) do names[#names + 1] = k end
    table.sort(names)
    refuse("--%s: %s has no arm '%s' (it has: %s)", opt, path, arm, #names > 0 and table.concat(names, ", ") or "none")
  end
  if next(rows) == nil then refuse("--%s: %s has no row with per-question scores%s", opt, path,
    arm and (" for arm '" .. arm .. "'") or "") end
  return {path = path, arm = arm, doc = doc, rows = rows, spec = spec}
end

local A, B = side(o.a, "a"), side(o.b, "b")
local function base(p) return p and tostring(p):match("([^/]+)$") end
for _, k in ipairs{"eval_data", "eval_n"} do
  local va, vb = A.doc[k], B.doc[k]
  if k == "eval_data" then va, vb = base(va), base(vb) end
  if va ~= nil and vb ~= nil and va ~= vb then
    refuse("'%s' differs: %s in %s, %s in %s (a paired comparison needs the same questions)", k, tostring(va), A.path,
      tostring(vb), B.path)
  end
end

local names = {}
if o.configs ~= "" then
  for n in o.configs:gmatch("[^,%s]+") do
    if not A.rows[n] then refuse("--configs: '%s' has no per-question row in %s", n, A.spec) end
    if not B.rows[n] then refuse("--configs: '%s' has no per-question row in %s", n, B.spec) end
    names[#names + 1] = n
  end
else
  for _, r in ipairs(A.doc.results) do -- a's order
    if type(r) == "table" and A.rows[r.config] == r and B.rows[r.config] then names[#names + 1] = r.config end
  end
end
if #names == 0 then refuse("no configuration evaluated in both %s and %s", A.spec, B.spec) end

local ci = {iters = o.iters, seed = o.seed, level = 0.95}
local out = {a = o.a, b = o.b, iters = o.iters, seed = o.seed, eval_data = base(A.doc.eval_data), comparisons = {}}
print(string.format("paired bootstrap (%d resamples, 95%%): %s  minus  %s", o.iters, o.a, o.b))
print(string.format("%-10s %5s %8s %8s %26s %26s", "config", "n", "F1 a", "F1 b", "F1 a - b [95% CI]",
  "EM a - b [95% CI]"))
for _, n in ipairs(names) do
  local ra, rb = A.rows[n], B.rows[n]
  local fa, fb = ra.per_question.f1, rb.per_question.f1
  if #fa ~= #fb then
    refuse("'%s': %d questions in %s, %d in %s (a paired comparison needs the same questions)", n, #fa, A.spec, #fb,
      B.spec)
  end
  local pf = C.paired(fa, fb, ci)
  local pe = nil
  if type(ra.per_question.em) == "table" and type(rb.per_question.em) == "table" and #ra.per_question.em == #fa
    and #rb.per_question.em == #fb then
    pe = C.paired(ra.per_question.em, rb.per_question.em, ci)
  end
  print(string.format("%-10s %5d %8.2f %8.2f %+9.2f [%+7.2f, %+7.2f] %s", n, #fa, ra.f1 or 0, rb.f1 or 0, pf.diff,
    pf.ci[1], pf.ci[2], pe and string.format("%+9.2f [%+7.2f, %+7.2f]", pe.diff, pe.ci[1], pe.ci[2]) or ""))
  out.comparisons[#out.comparisons + 1] = {config = n, n = #fa, f1_a = ra.f1, f1_b = rb.f1, em_a = ra.em,
    em_b = rb.em, f1_diff = pf.diff, f1_diff_ci = pf.ci, verdict = pf.verdict, em_diff = pe and pe.diff,
    em_diff_ci = pe and pe.ci, sentence = C.sentence(A.spec, B.spec, n, pf)}
end
if o.out ~= "" then
  local ok, err = qr.json.write(o.out, out)
  if not ok then refuse("--out=%s: %s", o.out, tostring(err)) end
  print("wrote " .. o.out)
end
