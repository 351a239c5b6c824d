-- errors.lua - misuse of the qr module raises errors (or returns nil, msg
-- for expected failures) with messages that say what went wrong and where.
-- Run from the repo root: qrun tests/recipes/errors.lua
local T = require("qr.qrtest")

local dir = "tests/data/gpt2-tokenizer/"
local tmp = os.tmpname()
local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- ---- missing and malformed files name the file ----
T.errors("file-1.1", function() qr.squad.load("no/such/squad.json") end, "no/such/squad.json")
do
  local t, msg = qr.tokenizer{vocab = "no/such/encoder.json", merges = dir .. "vocab.bpe"}
  T.eq("file-1.2", t, nil)
  T.ok("file-1.3", msg and msg:find("no/such/encoder.json", 1, true), tostring(msg))
  t, msg = qr.tokenizer{vocab = dir .. "encoder.json", merges = "no/such/merges.txt"}
  T.eq("file-1.4", t, nil)
  T.ok("file-1.5", msg and msg:find("no/such/merges.txt", 1, true), tostring(msg))
end
do
  local v, msg = qr.json.read("no/such/file.json")
  T.eq("file-2.1", v, nil)
  T.ok("file-2.2", msg and msg:find("no/such/file.json", 1, true), tostring(msg))
  write(tmp, '{"a": [1, 2,\n  oops]}')
  v, msg = qr.json.read(tmp)
  T.eq("file-2.3", v, nil)
  T.ok("file-2.4", msg and msg:find(tmp, 1, true) and msg:find("line 2, column 3", 1, true), tostring(msg))
  local ok, wmsg = qr.json.write("no/such/dir/out.json", {1})
  T.eq("file-2.5", ok, nil)
  T.ok("file-2.6", wmsg and wmsg:find("no/such/dir/out.json", 1, true), tostring(wmsg))
end
do -- malformed SQuAD: the loader's message names the file and the field
  write(tmp, '{"data": [{"title": "x", "paragraphs": [{"context": "abc", "qas": [{"id": "1", "answers": []}]}]}]}')
  local msg = T.errors("file-3.1", function() qr.squad.load(tmp) end, tmp)
  T.ok("file-3.2", msg and msg:find("question", 1, true), tostring(msg))
  write(tmp, "[1, 2")
  T.errors("file-3.3", function() qr.squad.load(tmp) end, tmp)
end
os.remove(tmp)

-- ---- bad arguments ----
T.errors("arg-1.1", function() qr.tokenizer{merges = dir .. "vocab.bpe"} end, "'vocab' field")
T.errors("arg-1.2", function() qr.tokenizer() end, "bad argument #1")
local tok = assert(qr.tokenizer{vocab = dir .. "encoder.json", merges = dir .. "vocab.bpe"})
T.errors("arg-2.1", function() tok:decode({1, "x"}) end, "element [2]: expected int32, got string")
T.errors("arg-2.2", function() tok:decode({1, 2.5}) end, "element [2]: expected int32, got 2.5")
T.errors("arg-2.3", function() tok:decode("15496") end, "table expected")
T.errors("arg-2.4", function() tok:decode({99999999}) end, "99999999")
T.errors("arg-2.5", function() tok:encode() end, "bad argument #1 to 'encode'")
T.errors("arg-2.6", function() tok.encode({}, "x") end, "qr.Tokenizer expected")
T.errors("arg-3.1", function() qr.squad.score("x") end, "bad argument #2")
T.errors("arg-3.2", function() qr.squad.score("x", {}) end, "at least one reference answer")
T.errors("arg-3.3", function() qr.squad.score("x", {"a", 3}) end, "answer [2]: expected string")
T.errors("arg-3.4", function() qr.squad.ci({}) end, "at least one value")
T.errors("arg-3.5", function() qr.squad.ci({1, "a"}) end, "element [2]: expected number")
T.errors("arg-3.6", function() qr.squad.ci({1}, {level = 2}) end, "level")
T.errors("arg-3.7", function() qr.squad.ci({1}, {iters = 0}) end, "iters")

-- ---- options name the option and the expected type ----
local spec = {{"limit", 10, "n"}, {"name", "x", "s"}, {"fast", false, "b"}, {"lr", 0.1, "f"}}
T.errors("opt-1.1", function() qr.opts(spec, {"--limt=3"}) end, "unknown option '--limt'")
T.errors("opt-1.2", function() qr.opts(spec, {"--limit=ten"}) end, "--limit: expected integer, got 'ten'")
T.errors("opt-1.3", function() qr.opts(spec, {"--lr=fast"}) end, "--lr: expected number, got 'fast'")
T.errors("opt-1.4", function() qr.opts(spec, {"--name"}) end, "--name: expected --name=<string>")
T.errors("opt-1.5", function() qr.opts(spec, {"--fast=2"}) end, "--fast: expected boolean")
T.errors("opt-1.6", function() qr.opts(spec, {"--limit="}) end, "--limit: expected integer, got ''")
T.errors("opt-2.1", function() qr.opts({"limit"}, {}) end, "spec entry 1")
T.errors("opt-2.2", function() qr.opts({{"a", 1, "x", type = "float"}}, {}) end, "type must be")
T.errors("opt-2.3", function() qr.opts(spec, {true}) end, "argument 1 is not a string")

-- ---- JSON: positions and paths ----
T.errors("json-1.1", function() qr.json.decode("{") end, "json.decode: invalid JSON at line 1, column 1")
T.errors("json-1.2", function() qr.json.decode('{"a": tru}') end, "column 7")
T.errors("json-1.3", function() qr.json.decode("[1] x") end, "column 5")
T.errors("json-1.4", function() qr.json.decode("") end, "unexpected end of input")
T.errors("json-1.5", function() qr.json.encode({1, {a = print}}) end, "function value (not encodable) at [2].a")
T.errors("json-1.6", function() qr.json.encode({x = 0 / 0}) end, "NaN or infinity")
T.errors("json-1.7", function() qr.json.encode({[true] = 1}) end, "table key of type boolean")
do
  local cyc = {}
  cyc.self = cyc
  T.errors("json-1.8", function() qr.json.encode(cyc) end, "nesting too deep")
end
T.errors("json-1.9", function() qr.json.decode(string.rep("[", 300) .. string.rep("]", 300)) end, "nested deeper")
T.errors("json-1.10", function() qr.json.decode() end, "bad argument #1")

-- ---- misc ----
do
  local h, msg = qr.sha256("no/such/file")
  T.eq("misc-1.1", h, nil)
  T.ok("misc-1.2", msg and msg:find("no/such/file", 1, true), tostring(msg))
end

T.done()
