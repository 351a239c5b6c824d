-- report_hostile.lua - the report never raises on a malformed artifact
-- (issue 13: report artifacts are input too). Every JSON file of the
-- synthetic fixture study (tests/fixtures/report/) has fields replaced, one
-- at a time, by a value of each other type (a sample of its paths, sorted,
-- every k-th), and R.build must still make the document: a section that
-- cannot be built says so instead. The libFuzzer target
-- tests/fuzz/fuzz_report.c does the same with arbitrary bytes.
local T = require("qr.qrtest")
local R = require("qr.report")
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("cp -r '" .. qr.source_dir .. "/tests/fixtures/report' '" .. dir .. "'"))
local reps = {"x", 7, {}, true, -1e308}
local tried, fails = 0, {}
for _, f in ipairs(R.FILES) do
  local path = dir .. "/" .. f.file
  local orig = not f.jsonl and qr.json.read(path)
  if type(orig) == "table" then
    local paths = {}
    local function walk(t, p, d)
      for k, v in pairs(t) do
        local q = {table.unpack(p)}
        q[#q + 1] = k
        paths[#paths + 1] = q
        if type(v) == "table" and d < 4 then walk(v, q, d + 1) end
      end
    end
    walk(orig, {}, 0)
    local key = function(p) local t = {} for i, x in ipairs(p) do t[i] = tostring(x) end return table.concat(t, ".") end
    table.sort(paths, function(a, b) return key(a) < key(b) end)
    local step = math.max(1, #paths // 12)
    for i = 1, #paths, step do
      for _, rep in ipairs(reps) do
        local doc = qr.json.read(path)
        local t = doc
        for j = 1, #paths[i] - 1 do t = t[paths[i][j]] end
        t[paths[i][#paths[i]]] = rep
        assert(qr.json.write(path, doc))
        tried = tried + 1
        local ok, e = pcall(function() return R.build(R.load(dir), {}):ms({}, {}) end)
        if not ok then fails[#fails + 1] = f.file .. ": " .. key(paths[i]) .. " = " .. qr.json.encode(rep) .. ": " .. tostring(e) end
      end
      assert(qr.json.write(path, orig))
    end
  end
end
print(string.format("  %d malformed variants of the fixture's files, %d raised", tried, #fails))
T.ok("report-hostile-1", tried > 300, "only " .. tried .. " variants")
T.ok("report-hostile-2", #fails == 0, table.concat(fails, "\n  ", 1, math.min(#fails, 10)))
-- a broken section is named in the document
local sp = qr.json.read(dir .. "/cpt/results.json")
sp.results = {{arm = {}, config = 7, f1 = "x"}}
assert(qr.json.write(dir .. "/cpt/results.json", sp))
local ms = R.build(R.load(dir), {}):ms({}, {})
T.ok("report-hostile-3", type(ms) == "string" and #ms > 0, "no document")
os.execute("rm -rf '" .. dir .. "'")
T.done()
