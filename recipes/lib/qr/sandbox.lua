-- sandbox.lua - load a data file written in Lua (a precision configuration,
-- recipes/configs/*.lua) as data: it may compute a value, nothing more.
--
--   local S = require("qr.sandbox")
--   local value, err = S.loadfile("recipes/configs/mixed.lua")
--
-- A configuration file is code, and a file handed over by someone else (or
-- cut short, or garbled) must not be able to run a program, hang the run or
-- eat the machine's memory. So the chunk runs
--   * in an environment of its own with only pure functions: ipairs, pairs,
--     next, select, type, tostring, tonumber, error, assert, the raw*
--     functions, math, utf8, and a subset of string and table (below); no
--     io, os, require, load, dofile, debug, coroutine, pcall (the limits
--     below are errors, and must not be caught), setmetatable (a __gc
--     finalizer would run later, outside the limits), string.dump;
--   * with string methods ("x"):f() resolved in that subset too (the shared
--     string metatable's __index is swapped for the duration of the call
--     and always restored), so no pattern matching (find, match, gmatch,
--     gsub: a pattern can take exponential time inside one C call, where
--     no limit can stop it) and a string.rep whose result is capped;
--   * under a budget of Lua VM instructions (opts.max_instructions,
--     default 10^6) and of memory (opts.max_memory_kb above what the state
--     held at the start, default 64 MiB), both checked at every
--     instruction by qr.run_limited's C hook on the chunk's own coroutine:
--     the check trips before a doubling loop (s = s .. s) gets past twice
--     the budget;
--   * from a file of at most opts.max_bytes (default 1 MiB).
-- table.move is left out: its loop runs in C over a range the chunk picks.
-- An error names the file and the limit. S.loadfile never raises: it
-- returns the value, or nil and the message (a chunk that returns nothing
-- is an error too).

local S = {}

S.MAX_BYTES = 1 << 20
S.MAX_INSTRUCTIONS = 1000000
S.MAX_MEMORY_KB = 64 * 1024

local function copy(t, names)
  local r = {}
  for _, n in ipairs(names) do r[n] = t[n] end
  return r
end

local function env_for(max_rep)
  local str = copy(string, {"byte", "char", "format", "len", "lower", "upper", "reverse", "sub"})
  function str.rep(s, n, sep)
    s, n = tostring(s), math.tointeger(n) or error("rep: expected an integer count", 2)
    local size = n > 0 and (#s * n + (sep and #tostring(sep) * (n - 1) or 0)) or 0
    if size > max_rep then
      error(string.format("string.rep of %d bytes is over the limit of %d", size, max_rep), 2)
    end
    return string.rep(s, n, sep)
  end
  local env = {
    ipairs = ipairs, pairs = pairs, next = next, select = select, type = type, tostring = tostring,
    tonumber = tonumber, error = error, assert = assert, rawequal = rawequal, rawlen = rawlen,
    rawget = rawget, rawset = rawset,
    math = copy(math, {"abs", "ceil", "floor", "fmod", "huge", "log", "max", "maxinteger", "min", "mininteger",
      "modf", "pi", "sqrt", "tointeger", "type", "ult", "exp", "sin", "cos", "tan"}),
    string = str,
    table = copy(table, {"concat", "insert", "remove", "unpack", "sort"}),
    utf8 = copy(utf8, {"char", "charpattern", "codepoint", "len", "offset"}),
  }
  env._G = env
  return env, str
end

-- S.load(src, chunkname, opts) -> value | nil, message: run a source string
-- under the limits above (the file-size limit is the caller's).
function S.load(src, name, opts)
  opts = opts or {}
  local max_ins = opts.max_instructions or S.MAX_INSTRUCTIONS
  local max_kb = opts.max_memory_kb or S.MAX_MEMORY_KB
  local env, str = env_for(max_kb * 1024)
  local chunk, err = load(src, "@" .. name, "t", env)
  if not chunk then return nil, string.format("cannot load '%s': %s", name, tostring(err)) end
  local smt = getmetatable("")
  local saved = smt.__index
  smt.__index = str
  local ok, v = qr.run_limited(chunk, max_ins, max_kb)
  smt.__index = saved
  if not ok then
    if v:find("^ran over %d+ Lua instructions$") or v:find("^used over %d+ KiB of memory$") then
      return nil, string.format("'%s' %s (a configuration file only builds a value)", name, v)
    end
    return nil, string.format("'%s' raised an error: %s", name, v)
  end
  if v == nil then return nil, string.format("'%s' returned no value", name) end
  return v
end

-- S.loadfile(path, opts) -> value | nil, message.
function S.loadfile(path, opts)
  opts = opts or {}
  local max_bytes = opts.max_bytes or S.MAX_BYTES
  local f, err = io.open(path, "rb")
  if not f then return nil, string.format("cannot load '%s': %s", path, tostring(err)) end
  local src = f:read(max_bytes + 1)
  f:close()
  src = src or ""
  if #src > max_bytes then
    return nil, string.format("'%s' is over %d bytes, the limit for a configuration file", path, max_bytes)
  end
  return S.load(src, path, opts)
end

return S
