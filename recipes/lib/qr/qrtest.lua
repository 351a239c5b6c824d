-- qrtest.lua - a tiny harness for recipe regression tests (after SQLite's
-- TCL tests): every check has a stable id ("tok-1.2") and prints
-- "ok <id>" or "FAIL <id>: detail"; T.done() prints "N passed, M failed"
-- and exits 1 if anything failed, 0 otherwise.
--
--   local T = require("qr.qrtest")
--   T.eq("json-1.1", qr.json.decode("[1,2]"), {1, 2})
--   T.near("ci-1.1", lo, 0.25, 1e-9)
--   T.errors("opts-2.1", function() qr.opts(spec, {"--nope"}) end, "nope")
--   T.done()
--
-- Set QRTEST_FILTER to a Lua pattern to run only the matching ids.

local T = {}
local passed, failed, skipped = 0, 0, 0
local failures = {}
local filter = os.getenv("QRTEST_FILTER")

local function selected(id)
  return not filter or filter == "" or tostring(id):find(filter) ~= nil
end

local function pass(id, note)
  passed = passed + 1
  print("ok " .. id .. (note and ("  (" .. note .. ")") or ""))
end

local function fail(id, detail)
  failed = failed + 1
  failures[#failures + 1] = id
  print("FAIL " .. id .. ": " .. detail)
end

-- A readable, deterministic rendering of a value (tables sorted by key).
local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" or depth > 3 then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
    return type(a) < type(b)
  end)
  local parts, n = {}, #v
  for _, k in ipairs(keys) do
    if #parts >= 20 then parts[#parts + 1] = "..."; break end
    local key = (math.type(k) == "integer" and k >= 1 and k <= n) and "" or ("[" .. show(k) .. "]=")
    parts[#parts + 1] = key .. show(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end
T.show = show

-- Deep equality; returns true, or false and the path where they differ.
local function deq(a, b, path)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then
    -- 1 == 1.0 is already true above; report type/value mismatch
    return false, path
  end
  for k, v in pairs(a) do
    local ok, where = deq(v, b[k], path .. "[" .. show(k) .. "]")
    if not ok then return false, where end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "[" .. show(k) .. "]" end
  end
  return true
end

-- T.eq(id, got, want): deep equality (tables compared element-wise).
function T.eq(id, got, want)
  if not selected(id) then skipped = skipped + 1; return true end
  local ok, where = deq(got, want, "")
  if ok then pass(id); return true end
  if where ~= "" then
    fail(id, "differ at " .. where .. ": got " .. show(got) .. ", want " .. show(want))
  else
    fail(id, "got " .. show(got) .. ", want " .. show(want))
  end
  return false
end

-- T.near(id, got, want, tol): numbers, or arrays of numbers of equal
-- length; passes when max |got - want| <= tol. Prints the max difference.
function T.near(id, got, want, tol)
  if not selected(id) then skipped = skipped + 1; return true end
  tol = tol or 1e-9
  local maxdiff
  if type(got) == "number" and type(want) == "number" then
    maxdiff = math.abs(got - want)
  elseif type(got) == "table" and type(want) == "table" then
    if #got ~= #want then
      fail(id, string.format("length %d, want %d", #got, #want))
      return false
    end
    maxdiff = 0
    for i = 1, #want do
      if type(got[i]) ~= "number" then
        fail(id, string.format("element [%d] is %s, want a number", i, type(got[i])))
        return false
      end
      local d = math.abs(got[i] - want[i])
      if d ~= d or d > maxdiff then maxdiff = d end
    end
  else
    fail(id, "got " .. show(got) .. ", want " .. show(want) .. " (numbers or arrays)")
    return false
  end
  local note = string.format("maxdiff %.3g, tol %.3g", maxdiff, tol)
  if maxdiff <= tol then pass(id, note); return true end
  local detail = note
  if type(got) == "number" then
    detail = string.format("got %.17g, want %.17g: %s", got, want, note)
  end
  fail(id, detail)
  return false
end

-- T.ok(id, cond, msg): cond must be truthy.
function T.ok(id, cond, msg)
  if not selected(id) then skipped = skipped + 1; return true end
  if cond then pass(id); return true end
  fail(id, msg or "condition is false")
  return false
end

-- T.errors(id, fn, pattern): fn() must raise an error whose message
-- contains pattern (as a Lua pattern, or failing that as plain text).
-- Returns the message.
function T.errors(id, fn, pattern)
  if not selected(id) then skipped = skipped + 1; return nil end
  local ok, err = pcall(fn)
  if ok then
    fail(id, "expected an error" .. (pattern and (" matching '" .. pattern .. "'") or "") ..
      ", but none was raised")
    return nil
  end
  local msg = tostring(err)
  if pattern then
    local pok, found = pcall(string.find, msg, pattern)
    if not (pok and found) and not msg:find(pattern, 1, true) then
      fail(id, "error '" .. msg .. "' does not match '" .. pattern .. "'")
      return msg
    end
  end
  pass(id)
  return msg
end

-- T.skip(id, reason): count a check as skipped (e.g. missing model).
function T.skip(id, reason)
  skipped = skipped + 1
  print("skip " .. id .. (reason and (": " .. reason) or ""))
end

-- Counts so far: passed, failed, skipped.
function T.counts() return passed, failed, skipped end

-- Print the summary and exit: 1 if anything failed, else 0.
function T.done()
  if skipped > 0 then print(string.format("%d skipped", skipped)) end
  if failed > 0 then print("failed: " .. table.concat(failures, " ")) end
  print(string.format("%d passed, %d failed", passed, failed))
  io.stdout:flush()
  os.exit(failed > 0 and 1 or 0)
end

return T
