-- sandbox.lua - the limits under which configuration files run
-- (recipes/lib/qr/sandbox.lua): a file may build a value and nothing more.
local T = require("qr.qrtest")
local S = require("qr.sandbox")

local function run(src, opts) return S.load(src, "c.lua", opts) end
local function refused(id, src, pattern, opts)
  local v, e = run(src, opts)
  T.ok(id, v == nil and type(e) == "string" and e:find(pattern, 1, true) ~= nil,
    "got " .. tostring(v) .. " / " .. tostring(e))
end

-- what a configuration file does
local v = run("local t = {default = 'w8a8'} for i = 0, 2 do t['model.layers.' .. i .. '.*'] = 'w4a8' end return t")
T.eq("sandbox-1.1", v and v["model.layers.2.*"], "w4a8")
T.eq("sandbox-1.2", run("return string.rep('ab', 3, ',') .. ('x'):upper()"), "ab,ab,abX")
T.eq("sandbox-1.3", run("return math.max(3, 7) + #('abc'):sub(2)"), 9)

-- no program: io, os, require, load, debug, coroutine, pcall, metatables
for i, name in ipairs{"io", "os", "require", "load", "loadfile", "dofile", "debug", "coroutine", "pcall",
    "xpcall", "setmetatable", "getmetatable", "collectgarbage", "package"} do
  refused("sandbox-2." .. i, "return " .. name .. ".x", "c.lua")
  T.eq("sandbox-2." .. i .. "b", run("return " .. name .. " == nil"), true)
end
refused("sandbox-2.20", "return ('abc'):find('b')", "method 'find'")
refused("sandbox-2.21", "return string.dump", "returned no value")
refused("sandbox-2.22", "return table.move({}, 1, 1e9, 1)", "attempt to call a nil value")

-- no hang, no memory blow-up; the limits name the file
refused("sandbox-3.1", "while true do end", "'c.lua' ran over 1000000 Lua instructions")
refused("sandbox-3.2", "local s = 'x' for i = 1, 60 do s = s .. s end return s", "'c.lua' used over 65536 KiB")
refused("sandbox-3.3", "return ('x'):rep(1 << 40)", "over the limit of")
refused("sandbox-3.4", "local t = {} for i = 1, 1e9 do t[i] = i end", "Lua instructions")
refused("sandbox-3.5", "while true do end", "ran over 500", {max_instructions = 500})
-- a loop that only counts
refused("sandbox-3.6", "local n = 0 while true do n = n + 1 end", "Lua instructions")

-- qr.run_limited itself
local ok1, v1 = qr.run_limited(function() return 41 + 1 end, 100, 1024)
T.ok("sandbox-3.7", ok1 == true and v1 == 42, tostring(v1))
local ok2, v2 = qr.run_limited(function() error("mine") end, 100, 1024)
T.ok("sandbox-3.8", ok2 == false and v2:find("mine", 1, true), tostring(v2))
local ok3, v3 = qr.run_limited(function() return qr.run_limited(function() end, 10, 10) end, 1000, 1024)
T.ok("sandbox-3.9", ok3 == false and v3:find("does not nest", 1, true), tostring(v3))
T.errors("sandbox-3.10", function() qr.run_limited(print, 0, 10) end, "positive instruction budget")
-- a caught overrun is raised again at the next instruction
local ok4, v4 = qr.run_limited(function() while true do pcall(function() while true do end end) end end, 1000, 1024)
T.ok("sandbox-3.11", ok4 == false and v4 == "ran over 1000 Lua instructions", tostring(v4))

-- the string metatable is restored, whatever happened
T.eq("sandbox-4.1", select(1, ("abc"):find("b")), 2)
run("error('x')")
T.eq("sandbox-4.2", select(1, ("abc"):find("c")), 3)

-- files: missing, too big, syntax error
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local function write(name, s) local f = assert(io.open(dir .. "/" .. name, "wb")) f:write(s) f:close() return dir .. "/" .. name end
local big = write("big.lua", "return '" .. string.rep("x", 100) .. "'")
local _, e = S.loadfile(big, {max_bytes = 50})
T.ok("sandbox-5.1", e and e:find("big.lua' is over 50 bytes", 1, true), tostring(e))
local _, e2 = S.loadfile(dir .. "/none.lua")
T.ok("sandbox-5.2", e2 and e2:find("cannot load", 1, true) and e2:find("none.lua", 1, true), tostring(e2))
local _, e3 = S.loadfile(write("syn.lua", "return {"))
T.ok("sandbox-5.3", e3 and e3:find("syn.lua", 1, true), tostring(e3))
T.eq("sandbox-5.4", S.loadfile(write("ok.lua", "return 'w4a8'")), "w4a8")
os.execute("rm -rf " .. dir)

T.done()
