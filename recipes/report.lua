-- report.lua - MISSION step 7: the PDF report of a study, built from its
-- run directory alone (docs/REPORT.md describes the directory).
--
--   qrun recipes/report.lua --run-dir=runs/study --out=report.pdf
--   qrun recipes/report.lua --run-dir=runs/study --format=txt --out=report.txt   (plain text, no figures)
--   qrun recipes/report.lua --run-dir=runs/study --format=ms                     (the groff source only)
--
-- The sections are the six questions of the study in order, then the
-- earlier reports, what differs from the assignment, and speed and memory;
-- a stage the directory does not have is said to be missing, never
-- guessed. The text is built by recipes/lib/qr/report.lua (qr.report);
-- this recipe checks the tools, draws the figures with gnuplot and
-- typesets with groff:
--   gnuplot (pdfcairo; postscript eps where pdfcairo is missing) -> gs
--   (pdfwrite, PDF 1.4: gropdf 1.22 cannot parse cairo's PDF 1.5) ->
--   groff -ms -t -e -Tpdf (tbl, eqn, gropdf) embedding them.
-- scripts/setup_report.sh installs the tools; a missing one is named with
-- it (exit 2, nothing written), and --install runs it first. The work directory (default <out>.d/) keeps report.ms,
-- the figures, their data and gnuplot scripts, and groff's messages.
local R = require("qr.report")
local qa = require("qr.squad_qa")

local o = qr.opts{
  {"run-dir", "", "the study run directory (docs/REPORT.md)"},
  {"out", "", "the file to write (default: <run-dir>/report.pdf, .txt or .ms by --format)"},
  {"format", "pdf", "pdf (groff, gropdf, gs, gnuplot), txt (plain text by groff; no figures) or ms (the source; no tool)"},
  {"work", "", "work directory: report.ms, figures, their data and scripts (default: <out without extension>.d)"},
  {"plots", true, "draw the figures (--no-plots: their captions only)"},
  {"install", false, "run scripts/setup_report.sh first when a tool is missing (it installs them, as root)"},
  {"paper", "a4", "paper size: a4 or letter"},
}

local function refuse(msg)
  io.stderr:write("report: ", msg, "\n")
  os.exit(2)
end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function sh(cmd) return os.execute(cmd) == true end

if o.run_dir == "" then refuse("--run-dir: give a study run directory (docs/REPORT.md describes one)") end
if not sh("test -d " .. q(o.run_dir)) then refuse("--run-dir=" .. o.run_dir .. ": no such directory") end
local FORMATS = {pdf = true, txt = true, ms = true}
if not FORMATS[o.format] then refuse("--format=" .. o.format .. ": expected pdf, txt or ms") end
if o.paper ~= "a4" and o.paper ~= "letter" then refuse("--paper=" .. o.paper .. ": expected a4 or letter") end

-- the tools of the format: every one is looked for before anything is written
local function have(tool) return sh("command -v " .. tool .. " >/dev/null 2>&1") end
local TOOLS = {
  {tool = "groff", pkg = "groff", formats = {pdf = true, txt = true}},
  {tool = "gropdf", pkg = "groff", formats = {pdf = true, txt = true}, why = "the groff package: ms macros and PDF driver"},
  {tool = "perl", pkg = "perl", formats = {pdf = true}, why = "gropdf is written in Perl"},
  {tool = "gs", pkg = "ghostscript", formats = {pdf = true}, plots = true},
  {tool = "gnuplot", pkg = "gnuplot-nox", formats = {pdf = true}, plots = true},
}
local function missing_tools()
  local m = {}
  for _, t in ipairs(TOOLS) do
    if t.formats[o.format] and (not t.plots or o.plots) and not have(t.tool) then m[#m + 1] = t end
  end
  return m
end
local miss = missing_tools()
if #miss > 0 and o.install then
  io.stderr:write("report: installing what is missing with scripts/setup_report.sh\n")
  sh("bash " .. q(qr.source_dir .. "/scripts/setup_report.sh") .. " >&2")
  miss = missing_tools()
end
if #miss > 0 then
  local names, pkgs, seen = {}, {}, {}
  for _, t in ipairs(miss) do
    names[#names + 1] = t.tool .. (t.why and (" (" .. t.why .. ")") or "")
    if not seen[t.pkg] then seen[t.pkg] = true; pkgs[#pkgs + 1] = t.pkg end
  end
  refuse(string.format("--format=%s needs %s, not installed here: run scripts/setup_report.sh as root, or rerun with "
    .. "--install (Debian: apt-get install --no-install-recommends %s)%s, or use --format=ms for the groff source alone",
    o.format,
    table.concat(names, ", "), table.concat(pkgs, " "), o.plots and o.format == "pdf" and ", --no-plots to do without figures" or ""))
end

-- paths: out and work made absolute (the tools run inside work)
local function capture(cmd)
  local h = io.popen(cmd)
  if not h then return nil end
  local l = h:read("l")
  h:close()
  return l
end
local pwd = capture("pwd") or "."
local function abs(p) return p:sub(1, 1) == "/" and p or (pwd .. "/" .. p) end
local ext = {pdf = ".pdf", txt = ".txt", ms = ".ms"}
local out = abs(o.out ~= "" and o.out or (o.run_dir .. "/report" .. ext[o.format]))
local work = abs(o.work ~= "" and o.work or (out:gsub("%.[%w]+$", "") .. ".d"))
if not sh("mkdir -p " .. q(work)) then refuse("--work=" .. work .. ": cannot create it") end
local odir = out:match("^(.*)/[^/]*$")
if odir and not sh("mkdir -p " .. q(odir)) then refuse("--out=" .. out .. ": cannot create its directory") end

local t0 = qr.now()
local S = R.load(o.run_dir)
-- uncommitted changes to the code that makes a report (not to reports/ or the docs: the committed report is rebuilt
-- from a tree where only it has changed, and the words "with uncommitted changes" would move its tables' page breaks)
local dirty = capture("git -C " .. q(qr.source_dir) .. " status --porcelain --untracked-files=no -- core plugins recipes "
  .. "scripts CMakeLists.txt 2>/dev/null | head -1")
-- the date it says it was made: now, or SOURCE_DATE_EPOCH (reproducible builds: the committed report is rebuilt
-- with the epoch it was made at, and its text comes out the same)
local epoch = tonumber(os.getenv("SOURCE_DATE_EPOCH") or "")
local doc = R.build(S, {generated = os.date("!%Y-%m-%d %H:%M UTC", epoch and math.floor(epoch) or nil),
  report_rev = qa.git_rev() .. ((dirty and dirty ~= "") and " with uncommitted changes" or "")})

-- the figures
-- a file the report writes; a failed write (a full disk, a file-size
-- limit) stops the report naming the file, before anything replaces --out
local function write(path, lines)
  local f, err = io.open(path, "w")
  local ok, e2 = f ~= nil, err
  if f then
    ok, e2 = f:write(type(lines) == "table" and table.concat(lines, "\n") or lines, "\n")
    local okc, e3 = f:close()
    if ok then ok, e2 = okc, e3 end
  end
  if not ok then
    io.stderr:write(string.format("report: cannot write %s: %s (nothing replaced %s)\n", path, tostring(e2), out))
    os.exit(1)
  end
end
local function first_line(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local l
  for line in f:lines() do
    if line:match("%S") then l = line break end
  end
  f:close()
  return l or ""
end
local drawn, why = {}, {}
local kind = "pdf"
if o.format == "pdf" and o.plots and #doc.figures > 0 then
  if not sh("gnuplot -e 'set terminal pdfcairo' >/dev/null 2>&1") then kind = "eps" end
end
for _, f in ipairs(doc.figures) do
  for name, lines in pairs(f.data or {}) do write(work .. "/" .. name, lines) end
  local gp = f.name .. ".gp"
  local raw = f.name .. (kind == "eps" and ".eps" or ".cairo.pdf")
  write(work .. "/" .. gp, {"# " .. f.title, R.terminal(f, kind), "set output " .. R.gq(raw),
    table.concat(f.plot, "\n"), "unset output"})
  if o.format ~= "pdf" then
    why[f.n] = o.format == "txt" and "text output" or "groff source only (run gnuplot on " .. gp .. ")"
  elseif not o.plots then
    why[f.n] = "--no-plots"
  else
    local log = work .. "/" .. f.name .. ".log"
    local ok = sh(string.format("cd %s && gnuplot %s >%s 2>&1", q(work), q(gp), q(log)))
    if ok then
      ok = sh(string.format("cd %s && gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=pdfwrite -dCompatibilityLevel=1.4 %s "
        .. "-o %s %s >>%s 2>&1", q(work), kind == "eps" and "-dEPSCrop" or "", q(f.name .. ".pdf"), q(raw), q(log)))
      if ok then drawn[f.n] = f.name .. ".pdf" else why[f.n] = "gs failed: " .. first_line(log) end
    else
      why[f.n] = "gnuplot failed: " .. first_line(log)
    end
    if not ok then io.stderr:write(string.format("report: figure %d (%s) not drawn: %s\n", f.n, f.name, why[f.n])) end
  end
end

local ms = doc:ms(drawn, why)
local src = work .. "/report.ms"
write(src, ms)

local missing = {}
for _, k in ipairs{"ptq", "sp", "search", "cpt", "rpi", "bench"} do
  if not S[k] then missing[#missing + 1] = k end
end
local lm = {} -- the loss comparison: its ce may be sp's, the other objectives are runs of their own
for _, L in ipairs{"kd", "cascade", "feature"} do
  if not S["sp-" .. L] then lm[#lm + 1] = L end
end
if #lm > 0 then missing[#missing + 1] = "losses (" .. table.concat(lm, ", ") .. ")" end
local ndrawn = 0
for _ in pairs(drawn) do ndrawn = ndrawn + 1 end
local summary = string.format("%d tables, %d of %d figures drawn; stages missing: %s", doc.ntab, ndrawn, #doc.figures,
  #missing > 0 and table.concat(missing, ", ") or "none")

if o.format == "ms" then
  if out ~= src then write(out, ms) end
  print(string.format("report: wrote %s (groff source; %s) in %.1fs", out, summary, qr.now() - t0))
  os.exit(0)
end

-- typeset
local log = work .. "/groff.log"
local tmp = out .. ".tmp"
local dev = o.format == "pdf" and string.format("-Tpdf -dpaper=%s -P-p%s", o.paper, o.paper) or "-Tascii -P-cbou -rHY=0"
local ok = sh(string.format("cd %s && groff -k -ms -t -e %s report.ms >%s 2>%s", q(work), dev, q(tmp), q(log)))
local f = io.open(tmp, "rb")
local body = f and f:read("a") or ""
if f then f:close() end
-- a PDF is whole when it ends with %%EOF: gropdf (Perl) does not check its writes, so a full disk or a file-size
-- limit leaves a truncated PDF behind an exit status of 0
local cut = o.format == "pdf" and #body > 0 and not body:sub(-64):find("%%%%EOF%s*$")
if not ok or #body == 0 or (o.format == "pdf" and body:sub(1, 4) ~= "%PDF") or cut then
  os.remove(tmp)
  io.stderr:write(string.format("report: groff failed on %s: %s (all of it: %s)\n", src,
    cut and string.format("%s is cut short at %d bytes (no %%%%EOF at its end: disk full or a file-size limit?)", tmp, #body)
    or first_line(log), log))
  os.exit(1)
end
if o.format == "txt" then
  -- the text is one long page (the preamble's .pl for terminals): drop the blank lines after the last text
  body = body:gsub("\n[%s]*(\n%s*%- 1 %-\n)[%s]*$", "\n%1")
  local fo = assert(io.open(tmp, "wb"))
  fo:write(body)
  fo:close()
end
assert(os.rename(tmp, out))
local warnings = 0
for _ in io.lines(log) do warnings = warnings + 1 end
local pages = o.format == "pdf" and tonumber(body:match("/Type%s*/Pages.-/Count%s+(%d+)") or
  body:match("/Count%s+(%d+).-/Type%s*/Pages") or "")
print(string.format("report: wrote %s (%s%s; %s) in %.1fs", out, pages and (pages .. " pages, ") or "",
  warnings > 0 and (warnings .. " groff message(s) in " .. log) or "no groff messages", summary, qr.now() - t0))
