-- report_lib.lua - recipes/lib/qr/report.lua without any tool (no groff,
-- gnuplot or gs): the generated sentences at their boundaries (an
-- interval touching zero, negative, positive, a bound that rounds to
-- zero), the two-interval comparison, groff escaping, tbl tables, the
-- missing-stage paragraph, loading a run directory (present, absent,
-- unreadable files) and the whole report source built from the SYNTHETIC
-- fixture directory (tests/fixtures/report) and from an empty one.
-- Run from the repo root: qrun tests/recipes/report_lib.lua
local T = require("qr.qrtest")
local R = require("qr.report")

-- ---------------------------------------------------------------- sentences

T.eq("compare-1.1", (R.compare(3.1, 0.4, 5.8, "CPT", "joint training")),
  "CPT improves F1 over joint training by 3.1 points (95% CI [0.4, 5.8]).")
T.eq("compare-1.2", (R.compare(0.4, -1.2, 2.0, "CPT", "joint training")),
  "CPT shows no measurable effect on F1 relative to joint training (difference +0.4 points, 95% CI [-1.2, 2.0] includes zero).")
T.eq("compare-1.3", (R.compare(-3.0, -5.8, -0.4, "a", "b")),
  "a lowers F1 relative to b by 3.0 points (95% CI [0.4, 5.8]).")
-- an interval touching zero is no effect, at either end
local s, v = R.compare(2.0, 0, 4.0, "a", "b")
T.eq("compare-2.1", v, "none")
T.ok("compare-2.2", s:find("includes zero", 1, true), s)
s, v = R.compare(-2.0, -4.0, 0, "a", "b")
T.eq("compare-2.3", v, "none")
T.ok("compare-2.4", s:find("[-4.0, 0.0] includes zero", 1, true), s)
s, v = R.compare(0, 0, 0, "a", "b")
T.eq("compare-2.5", v, "none")
T.ok("compare-2.6", s:find("difference 0.0 points, 95% CI [0.0, 0.0] includes zero", 1, true), s)
-- a bound just above zero never prints as 0.0 (the sentence says "improves": the number must not contradict it)
s, v = R.compare(0.05, 0.03, 0.09, "a", "b")
T.eq("compare-2.7", v, "up")
T.eq("compare-2.8", s, "a improves F1 over b by 0.1 points (95% CI [0.03, 0.1]).")
s, v = R.compare(-0.05, -0.09, -0.004, "a", "b")
T.eq("compare-2.9", s, "a lowers F1 relative to b by 0.1 points (95% CI [0.004, 0.1]).")
s = R.compare(0.05, 0.03, 0.09, "a", "b", {d = 2})
T.eq("compare-2.10", s, "a improves F1 over b by 0.05 points (95% CI [0.03, 0.09]).")
-- lower is better (an attack's success rate)
T.eq("compare-3.1", (R.compare(-10, -15, -5, "RPI", "fixed fp", {metric = "the success rate", better = "lower"})),
  "RPI reduces the success rate relative to fixed fp by 10.0 points (95% CI [5.0, 15.0]).")
T.eq("compare-3.2", (R.compare(10, 5, 15, "RPI", "fixed fp", {metric = "the success rate", better = "lower"})),
  "RPI raises the success rate over fixed fp by 10.0 points (95% CI [5.0, 15.0]).")
-- no numbers: a sentence saying so, no verdict
s, v = R.compare(nil, nil, nil, "a", "b")
T.eq("compare-4.1", v, nil)
T.ok("compare-4.2", s:find("cannot be compared", 1, true), s)
s, v = R.compare(1, qr.json.null, 2, "a", "b")
T.eq("compare-4.3", v, nil)
T.eq("verdict-1.1", {R.verdict(0.1, 1), R.verdict(-1, -0.1), R.verdict(0, 1), R.verdict(-1, 0), R.verdict(-1, 1)},
  {"up", "down", "none", "none", "none"})

-- two independent intervals
s, v = R.compare_ci("tuned w4a8", 34.8, {32.0, 37.5}, "untuned w4a8", 6.6, {5.7, 7.5})
T.eq("ci2-1.1", s, "tuned w4a8 reaches F1 34.8 [32.0, 37.5], above untuned w4a8's 6.6 [5.7, 7.5] (the 95% intervals do not overlap).")
T.eq("ci2-1.2", v, "above")
_, v = R.compare_ci("a", 5, {4, 6}, "b", 10, {8, 12})
T.eq("ci2-1.3", v, "below")
_, v = R.compare_ci("a", 5, {4, 8}, "b", 10, {8, 12}) -- touching: overlap
T.eq("ci2-1.4", v, "overlap")
s, v = R.compare_ci("a", 5, {4, 9}, "b", 10, {8, 12})
T.eq("ci2-1.5", s, "a (F1 5.0 [4.0, 9.0]) and b (10.0 [8.0, 12.0]) cannot be told apart: the 95% intervals overlap.")
_, v = R.compare_ci("a", 5, nil, "b", 10, {8, 12})
T.eq("ci2-1.6", v, nil)
T.eq("ci2-1.7", (R.compare_ci("RPI", 20, {5, 35}, "fp's own", 60, {40, 80},
  {metric = "success rate", phrase = "has a success rate of"})),
  "RPI has a success rate of 20.0 [5.0, 35.0], below fp's own's 60.0 [40.0, 80.0] (the 95% intervals do not overlap).")

-- numbers
T.eq("num-1.1", {R.num(nil), R.num(0 / 0), R.num(-0.01), R.num(2.345, 2), R.num(qr.json.null)},
  {"n/a", "n/a", "0.0", "2.35", "n/a"})
T.eq("num-1.2", {R.signed(3.14), R.signed(-3.14), R.signed(0), R.signed(0.04), R.signed(0.04, 2)},
  {"+3.1", "-3.1", "0.0", "0.0", "+0.04"})
T.eq("num-1.3", {R.fmt_ci(0.04, 1.96), R.fmt_ci(-0.0001, 2), R.fmt_ci(nil, 1), R.fmt_ci(-1.25, -0.75, 2)},
  {"[0.04, 2.0]", "[-0.0001, 2.0]", "[n/a]", "[-1.25, -0.75]"})
T.eq("num-1.4", {R.est(14.507, {12.9, 16.13}), R.est(nil, {1, 2}), R.est(3, nil)}, {"14.5 [12.9, 16.1]", "n/a", "3.0"})
T.eq("num-1.5", {R.duration(12), R.duration(200), R.duration(3900), R.duration(nil)},
  {"12 s", "3 min 20 s", "1 h 05 min", "n/a"})
T.eq("list-1.1", {R.list{}, R.list{"a"}, R.list{"a", "b"}, R.list{"a", "b", "c"}}, {"", "a", "a and b", "a, b and c"})

-- ---------------------------------------------------------------- groff

T.eq("esc-1.1", R.esc([[C:\path]]), [[C:\epath]])
T.eq("esc-1.2", R.esc("CI [-1.2, 2.0] and -3 and w4-a8 and x-1"), [[CI [\-1.2, 2.0] and \-3 and w4-a8 and x-1]])
T.eq("esc-1.3", R.lines(".dot at the start"), {[[\&.dot at the start]]})
T.eq("esc-1.4", R.lines("'quote at the start"), {[[\&'quote at the start]]})
-- a wrapped line that starts with a dot is protected too
local long = string.rep("word ", 19) .. "x .hidden request"
local ls = R.lines(long)
T.eq("esc-1.5", #ls, 2)
T.eq("esc-1.6", ls[2], [[\&.hidden request]])
for _, l in ipairs(R.lines(string.rep("abcdefgh ", 60))) do
  if #l > 100 then T.ok("esc-1.7", false, "a line of " .. #l .. " characters") end
end
T.ok("esc-1.7", true)
T.eq("cell-1.1", {R.cell("_"), R.cell("="), R.cell(".x"), R.cell("T{"), R.cell("a\tb"), R.cell(nil), R.cell(3)},
  {[[\&_]], [[\&=]], [[\&.x]], [[\&T{]], "a b", "", "3"})
T.eq("gq-1.1", R.gq("it's"), "'it''s'")

local tb = R.tbl{cols = {{"config", "l"}, {"F1", "r"}, {"note", "l", w = "1i"}},
  rows = {{"fp", "50.0", "a text block"}, "_", {"_", "1", ""}}}
T.eq("tbl-1.1", tb, {".TS", "center box;", "cb cb cb", "l r lw(1i).", "config\tF1\tnote", "_",
  "fp\t50.0\tT{\na text block\nT}", "_", [[\&_]] .. "\t1\t", ".TE"})
local rows = {}
for i = 1, 13 do rows[i] = {tostring(i)} end
tb = R.tbl{cols = {{"n", "r"}}, rows = rows}
T.eq("tbl-1.2", {tb[1], tb[7]}, {".TS H", ".TH"}) -- a long table repeats its header

local d = R.doc()
d:section("A title")
d:p("One.", nil, "Two.")
local n = d:table{title = "t", source = "s", cols = {{"a", "l"}}, rows = {{"x"}}}
local e = d:table{title = "empty", cols = {{"a", "l"}}, rows = {}, empty = "nothing yet"}
local f = d:figure{title = "a figure", data = {["x.dat"] = {"1 2"}}, plot = {"plot 'x.dat'"}}
d:missing("rpi", "rpi/results.json", "is absent", "there is nothing to report.")
local ms = d:ms({}, {[f] = "text output"})
T.eq("doc-1.1", {n, e, f}, {1, 2, 1})
T.ok("doc-1.2", ms:find(".NH\nA title\n.PP\nOne. Two.\n", 1, true), ms)
T.ok("doc-1.3", ms:find("(no rows: nothing yet)", 1, true), ms)
T.ok("doc-1.4", ms:find([=[\fBFigure 1.\fP a figure [not drawn: text output]]=], 1, true), ms)
T.ok("doc-1.5", ms:find("Stage rpi was not run in this directory (rpi/results.json is absent), so there is nothing to "
  .. "report.", 1, true), ms)
ms = d:ms({[f] = "fig1.pdf"})
T.ok("doc-1.6", ms:find(".QRFIG fig1.pdf 6 3.2", 1, true), ms)
T.ok("doc-1.7", ms:find(".de QRFIG", 1, true), "the preamble defines QRFIG")

-- ---------------------------------------------------------------- loading

local FIX = qr.source_dir .. "/tests/fixtures/report"
local S = R.load(FIX)
T.eq("load-1.1", {S.status.ptq.state, S.status["sp-cascade"].state, S.status.quickstart.state, S.status.cpt_curves.state},
  {"ok", "absent", "absent", "ok"})
T.ok("load-1.2", S.study and S.study.note:find("SYNTHETIC", 1, true), "the fixture says it is synthetic")
T.eq("load-1.3", #S.sp_train, 4)
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "/ptq' '" .. tmp .. "/cpt/joint'")
local fh = assert(io.open(tmp .. "/ptq/results.json", "w"))
fh:write("{\"results\": [ {\"config\": \"fp\",")            -- cut short
fh:close()
fh = assert(io.open(tmp .. "/cpt/results.json", "w"))   -- a run in progress: no curves.jsonl yet, nulls
fh:write('{"arms": {"joint": {"steps": 2}}, "accum": 1, "eval_configs": "fp", "paired": null, "results": [' ..
  '{"arm": "joint", "config": "fp", "tuned": true, "f1": 40, "f1_ci": [30, 50], "em": null}]}')
fh:close()
fh = assert(io.open(tmp .. "/cpt/joint/train.jsonl", "w"))
fh:write('{"step": 1, "loss": {"fp": 2.0, "w4a8": 3.0}}\n', "not json\n", '{"step": 2, "loss": {"fp": 1.5, "w4a8": 2.5}}\n')
fh:close()
local S2 = R.load(tmp)
T.eq("load-2.1", S2.status.ptq.state, "unreadable")
T.ok("load-2.2", S2.ptq == nil and tostring(S2.status.ptq.why):find("ptq/results.json", 1, true), S2.status.ptq.why)
T.eq("load-2.3", R.why_missing(S2, "ptq"):sub(1, 20), "could not be read: /")
T.eq("load-2.4", {S2.status.cpt_curves.state, #S2.cpt_curves, S2.cpt_curves[4].passes}, {"ok", 4, 4})
T.eq("load-2.5", S2.cpt.results[1].em, nil) -- null reads as absent
local S3 = R.load(tmp .. "/nowhere")
T.eq("load-2.6", {S3.status.study.state, S3.status.bench.state}, {"absent", "absent"})

-- ---------------------------------------------------------------- the whole report

-- the report source with lines joined and the minus escape undone, to search sentences in
local function flat(text) return (text:gsub("\n", " "):gsub("\\%-", "-"):gsub("  +", " ")) end
local doc = R.build(R.load(FIX), {generated = "2026-01-01 00:00 UTC", report_rev = "test"})
local src = doc:ms({}, {})
local txt = flat(src)
local function has(id, needle) T.ok(id, txt:find(needle, 1, true), "not in the report source: " .. needle) end
has("build-1.1", "cyclic_bits at w4a8 improves F1 over joint training by 50.0 points (95% CI [")
has("build-1.2", "cyclic_bits at fp shows no measurable effect on F1 relative to joint training (difference 0.0 points, "
  .. "95% CI [0.0, 0.0] includes zero).")
has("build-1.3", "greedy-0.3 improves F1 over uniform w8a8 by 2.5 points (95% CI [0.5, 4.5]).")
has("build-1.4", "ilp-0.3 shows no measurable effect on F1 relative to uniform w8a8 (difference +0.3 points, 95% CI "
  .. "[-1.0, 1.6] includes zero).")
has("build-1.5", "the proxy (KL) and F1 have Spearman rank correlation -0.83: the proxy ranks configurations strongly")
has("build-1.6", "RPI under typo attacks crafted on fp has a success rate of 20.0 [5.0, 35.0], below the fixed fp "
  .. "model's 60.0 [40.0, 80.0] (the 95% intervals do not overlap).")
has("build-1.7", "kd at w4a8 improves F1 over ce at w4a8 by 30.0 points") -- paired: per-question F1 in both
has("build-1.8", "kd at fp (F1 50.5 [47.5, 53.5]) and ce at fp (50.0 [47.0, 53.0]) cannot be told apart") -- unpaired
has("build-1.9", "Tuned w4a8 reaches F1 35.0 [32.0, 38.0], below tuned fp's 50.0 [47.0, 53.0]")
has("build-1.10", "SYNTHETIC")
has("build-1.15", "Every cell was made with one bank (adapters SHA-256 0123456789ab...), on AMD EPYC 7B13 and Intel Xeon.")
has("build-1.11", "qrun recipes/study.lua --scale=fixture --run-dir=runs/study-gpt2 --model=gpt2")
-- study.json's stages (recipes/study.lua's map) in the study's order, the failed one with its exit status
local st = R.study_stages(R.load(FIX))
local names = {}
for i, x in ipairs(st) do names[i] = x.name .. ":" .. tostring(x.status) end
T.eq("build-1.13", names, {"ptq:0", "sp:0", "sp-kd:0", "sp-cascade:1", "search:0", "cpt:0", "rpi:0"})
has("build-1.14", "--limit=20 --quantizers=minmax,log") -- the scale's stage options as --name=value
has("build-1.12", "sp-cascade/results.json")
local titles = {"Task accuracy under every configuration tried", "How the best configuration was found",
  "Training objectives for switching", "Cyclic precision training against joint training",
  "Random precision inference against fixed precision", "Research directions", "Comparison with the earlier reports",
  "What differs from the assignment, and how to run it on GPT-2", "Speed and memory"}
local pos, ordered = 0, true
for _, t in ipairs(titles) do
  local p = src:find(".NH\n" .. t .. "\n", 1, true)
  if not p or p < pos then ordered = false end
  pos = p or pos
end
T.ok("build-2.1", ordered, "the nine numbered sections, in order")
T.eq("build-2.2", #doc.figures, 9)
has("build-2.5", "Figure 5 plots these differences.") -- the loss comparison's figure (kd - ce, paired)
for _, fig in ipairs(doc.figures) do
  local okf = type(fig.plot) == "table" and #fig.plot > 0 and next(fig.data) ~= nil
  if not okf then T.ok("build-2.3", false, "figure " .. fig.name .. " has no data or plot") end
end
T.ok("build-2.3", true)
-- a sentence of the loss section names the objectives that were not run
has("build-2.4", "sp-cascade and sp-feature were not run in this directory")

-- an empty directory: every section says its stage is missing, nothing crashes, no number is invented
os.execute("mkdir -p '" .. tmp .. "/empty'")
local E = R.build(R.load(tmp .. "/empty"), {generated = "x", report_rev = "test"})
local et = flat(E:ms())
for i, st in ipairs{{"ptq", "ptq/results.json"}, {"sp", "sp/results.json"}, {"search", "search/results.json"},
                    {"cpt", "cpt/results.json"}, {"rpi", "rpi/results.json"}, {"bench", "bench.json"}} do
  T.ok("empty-1." .. i, et:find(string.format("Stage %s was not run in this directory (%s is absent)", st[1], st[2]), 1,
    true), "no missing-stage sentence for " .. st[1])
end
T.ok("empty-2.1", et:find("The directory has no study.json", 1, true), "says there is no study.json")
T.eq("empty-2.2", #E.figures, 0)
T.ok("empty-2.3", not et:find("improves F1", 1, true) and not et:find("reaches F1", 1, true), "a result sentence without data")
-- the partial run directory (a cut-short ptq file, a CPT run in progress) builds too
local P = R.build(R.load(tmp), {})
local pt = flat(P:ms())
T.ok("partial-1.1", pt:find("ptq/results.json could not be read", 1, true), "the unreadable file is named")
T.ok("partial-1.2", pt:find("joint", 1, true) and #P.figures >= 1, "the partial CPT run is reported with its curves")
os.execute("rm -rf '" .. tmp .. "'")

-- the single-precision baselines: each arm against them (equal compute and data), and the conclusion they
-- allow: cyclic_bits beats joint at w4a8 on 20 questions but is level with single_w4a8, so the gain is the data's
do
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "/cpt'")
  local function pq(n1) local t = {} for i = 1, 20 do t[i] = i <= n1 and 1 or 0 end return t end
  local function row(arm, f1n) return {arm = arm, config = "w4a8", tuned = true, f1 = 5 * f1n, f1_ci = {0, 100},
    em = 5 * f1n, em_ci = {0, 100}, n = 20, per_question = {f1 = pq(f1n), em = pq(f1n)}} end
  assert(qr.json.write(dir .. "/cpt/results.json", {eval_configs = "w4a8", accum = 1, K = 2,
    arms = {joint = {steps = 4, passes = 8, tokens = 100}, cyclic_bits = {steps = 8, passes = 8, tokens = 400},
      single_w4a8 = {steps = 8, passes = 8, tokens = 400}},
    results = {row("joint", 2), row("cyclic_bits", 18), row("single_w4a8", 17)}}))
  local D = R.build(R.load(dir), {})
  local txt = flat(D:ms())
  T.ok("single-1.1", txt:find("against the single-precision baseline of each configuration", 1, true),
    "the table of each arm against the single baselines")
  T.ok("single-1.2", txt:find("cyclic_bits cannot be told apart at w4a8 (1 configuration with a single-precision baseline)", 1,
    true), "the per-arm verdict against the single baselines")
  T.ok("single-1.3", txt:find("The gain over joint training is the data", 1, true), "the conclusion the baselines allow")
  os.execute("rm -rf '" .. dir .. "'")
end

-- RPI with per-question data: the defence's clean cost and the transfer comparisons are paired on the same
-- questions (ids matched, whatever their order), and the paired test decides the discussion's verdict
do
  local P = R.paired_by_id({a = 1, b = 1, c = 0}, {"c", "a", "b", "zz"}, {a = 0, b = 1, c = 0, d = 1})
  T.eq("rpi-pair-1.1", {P.n, string.format("%.2f", P.diff)}, {3, "33.33"}) -- zz has no partner, d is not asked for
  T.eq("rpi-pair-1.2", R.paired_by_id({a = 1}, {"a"}, {a = 0}), nil)       -- one question: no interval
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "/rpi'")
  local ids, per_fp, per_rpi, fp_att, rpi_att = {}, {}, {}, {}, {}
  for i = 1, 40 do
    local id = string.format("q%02d", i)
    ids[i] = id
    per_fp[id] = {f1 = 1, em = 1}
    per_rpi[id] = {f1 = i <= 20 and 1 or 0, em = i <= 20 and 1 or 0, rpi = i % 2 == 0 and "fp" or "w4a8"}
    fp_att[i], rpi_att[i] = 0, i <= 10 and 1 or 0 -- RPI keeps 10 of its 20 correct answers under the attack
  end
  local function cell(target, att, clean, threat, source, succ)
    return {attack = "typo", threat = threat or "transfer", source = source or "fp", target = target, attacked = 40,
      success = succ or {mean = target == "fp" and 100 or 25, ci = target == "fp" and {100, 100} or {10, 40}, n = 40},
      attacked_f1 = {mean = 0, ci = {0, 0}, n = 40}, clean_f1 = {mean = 100, ci = {100, 100}, n = 40},
      queries = {mean = 10, ci = {9, 11}, n = 40}, words_changed = {mean = 20, ci = {18, 22}, n = 40},
      queries_per_s = 5.5, per_question = {ids = ids, attacked_f1 = att, clean_f1 = clean}}
  end
  local ones = {}
  for i = 1, 40 do ones[i] = 1 end
  assert(qr.json.write(dir .. "/rpi/results.json", {eval_n = 40, budget = 50, rpi_set = {"fp", "w4a8"},
    clean = {fp = {f1 = {mean = 100, ci = {100, 100}, n = 40}, per = per_fp, seconds = 50},
             rpi = {f1 = {mean = 50, ci = {35, 65}, n = 40}, per = per_rpi, seconds = 50}},
    cells = {["typo/transfer/fp/fp"] = cell("fp", fp_att, ones), ["typo/transfer/fp/rpi"] = cell("rpi", rpi_att, ones),
             -- the adaptive attacker leaves RPI 10 right answers, the EOT attacker none: paired on the same 40
             ["typo/adaptive/rpi/rpi"] = cell("rpi", rpi_att, ones, "adaptive", "rpi", {mean = 75, ci = {60, 88}, n = 40}),
             ["typo/eot/eot/rpi"] = cell("rpi", fp_att, ones, "eot", "eot", {mean = 100, ci = {100, 100}, n = 40})}}))
  local D = R.build(R.load(dir), {})
  local txt = flat(D:ms())
  local function has2(id, needle) T.ok(id, txt:find(needle, 1, true), "not in the report source: " .. needle) end
  has2("rpi-pair-2.1", "Over the 40 clean questions RPI drew fp 20, w4a8 20.")
  has2("rpi-pair-2.2", "RPI lowers clean F1 relative to fixed fp by 50.0 points (95% CI [")
  has2("rpi-pair-2.3", "On the same 40 adversarial questions, RPI improves F1 under attack over fixed fp by 25.0 points")
  -- fp fails on all 40, RPI on 10 of the 20 it answered exactly: 1 - 0.5 / 1
  has2("rpi-pair-2.8", "That is a relative defense (1 - RPI's rate / the fixed model's) of +50% (95% CI [")
  has2("rpi-pair-2.4", "Transferred attacks succeed less often on RPI than on the model they were crafted on")
  -- 100 s of clean evaluation on 40 questions: 2500 s for 1000
  has2("rpi-pair-2.9", "the 1000-question evaluation of the assignment would take about 41 min 40 s on this machine")
  has2("rpi-pair-2.5", "Crafting speed (victim queries per second, Table ")
  has2("rpi-pair-2.6", "transfer on fp 5.5; adaptive on rpi 5.5; eot on eot 5.5.")
  has2("rpi-pair-2.10", "On the same 40 questions, the EOT attacker lowers RPI's F1 under attack relative to the adaptive "
    .. "attacker by 25.0 points (95% CI [")
  T.ok("rpi-pair-2.7", txt:find("fp > rpi", 1, true) and txt:find("25 [10, 40]", 1, true), "the every-cell table")
  os.execute("rm -rf '" .. dir .. "'")
end

-- a stage that resumed an earlier run's work: study.json timed only the rest, its files record the whole
do
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "/cpt'")
  assert(qr.json.write(dir .. "/study.json", {scale = "x", stages = {cpt = {cmd = "c", status = 0, seconds = 10}}}))
  assert(qr.json.write(dir .. "/cpt/results.json", {eval_configs = "fp", accum = 1, K = 1,
    arms = {joint = {steps = 4, passes = 4, tokens = 100, seconds = 3000}},
    results = {{arm = "joint", config = "fp", tuned = true, f1 = 50, f1_ci = {40, 60}, seconds = 600}}}))
  local txt = flat(R.build(R.load(dir), {}):ms())
  T.ok("adopted-1.1", txt:find("cpt's files record more compute than study.json's run of it", 1, true),
    "the adopted stage is named")
  T.ok("adopted-1.2", txt:find("the study cost 1 h 00 min", 1, true), "the total counts the files' 3600 s")
  -- a stage study.json has no record of: listed by its files, counted in the total
  assert(qr.json.write(dir .. "/study.json", {scale = "x", stages = {sp = {cmd = "s", status = 0, seconds = 600}}}))
  txt = flat(R.build(R.load(dir), {}):ms())
  T.ok("adopted-1.3", txt:find("study.json has no record of cpt (1 h 00 min), whose files are here", 1, true),
    "the unrecorded stage is named")
  T.ok("adopted-1.4", txt:find("the stages of this directory cost 1 h 10 min.", 1, true), "the total counts it")
  os.execute("rm -rf '" .. dir .. "'")
end

-- the machines the stages ran on: one sentence naming each CPU and its stages
do
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "'")
  assert(qr.json.write(dir .. "/study.json", {scale = "x", stages = {
    sp = {cmd = "a", status = 0, seconds = 10, cpu = "AMD EPYC 7B13"},
    search = {cmd = "b", status = 0, seconds = 10, cpu = "AMD EPYC 7B13"},
    rpi = {cmd = "c", status = 0, seconds = 10, cpu = "AMD EPYC 7B13 then Intel Xeon"}}}))
  local txt = flat(R.build(R.load(dir), {}):ms())
  T.ok("cpu-1.1", txt:find("The stages ran on 2 machines (a study resumed across sessions): sp and search on AMD EPYC "
    .. "7B13; rpi on AMD EPYC 7B13 then Intel Xeon.", 1, true), "the machines sentence")
  assert(qr.json.write(dir .. "/study.json", {scale = "x", stages = {sp = {cmd = "a", status = 0, seconds = 10,
    cpu = "Intel Xeon"}, rpi = {cmd = "c", status = 0, seconds = 10}}}))
  txt = flat(R.build(R.load(dir), {}):ms())
  T.ok("cpu-1.2", txt:find("Every stage study.json timed ran on one machine: Intel Xeon.", 1, true), "one machine")
  -- one CPU model string, two fingerprints: two machines
  assert(qr.json.write(dir .. "/study.json", {scale = "x", stages = {
    sp = {cmd = "a", status = 0, seconds = 10, cpu = "AMD EPYC", kernels = "00000000000000aa"},
    rpi = {cmd = "c", status = 0, seconds = 10, cpu = "AMD EPYC", kernels = "00000000000000bb"}}}))
  txt = flat(R.build(R.load(dir), {}):ms())
  T.ok("cpu-1.3", txt:find("The stages ran on 2 machines (a study resumed across sessions): sp on AMD EPYC (kernels "
    .. "00000000000000aa); rpi on AMD EPYC (kernels 00000000000000bb).", 1, true), "told apart by fingerprint")
  os.execute("rm -rf '" .. dir .. "'")
end

-- the loss comparison checks its runs' machines: objectives tuned on different CPUs are not a clean comparison
do
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "/sp-ce' '" .. dir .. "/sp-kd'")
  local function run(loss) return {loss = loss, configs = "fp", steps = 4, eval_n = 2, seed = 1,
    results = {{config = "fp", tuned = true, f1 = 50, f1_ci = {40, 60}, per_question = {f1 = {50, 50}}}}} end
  assert(qr.json.write(dir .. "/sp-ce/results.json", run("ce")))
  assert(qr.json.write(dir .. "/sp-kd/results.json", run("ce+kd")))
  local function with(ce_cpu, kd_cpu)
    assert(qr.json.write(dir .. "/study.json", {scale = "x", stages = {
      ["sp-ce"] = {cmd = "a", status = 0, seconds = 10, cpu = ce_cpu},
      ["sp-kd"] = {cmd = "b", status = 0, seconds = 10, cpu = kd_cpu}}}))
    return flat(R.build(R.load(dir), {}):ms())
  end
  local txt = with("Intel Xeon", "AMD EPYC")
  T.ok("loss-cpu-1.1", txt:find("They differ in more than the objective, so the comparison is not clean: machine (ce "
    .. "on Intel Xeon; kd on AMD EPYC).", 1, true), "the two machines are named")
  txt = with("AMD EPYC", "AMD EPYC")
  T.ok("loss-cpu-1.2", txt:find("only the objective differs. Both ran on one machine (AMD EPYC).", 1, true),
    "one machine")
  -- one CPU model string, two kernel fingerprints: two machines
  assert(qr.json.write(dir .. "/study.json", {scale = "x", stages = {
    ["sp-ce"] = {cmd = "a", status = 0, seconds = 10, cpu = "AMD EPYC", kernels = "00000000000000aa"},
    ["sp-kd"] = {cmd = "b", status = 0, seconds = 10, cpu = "AMD EPYC", kernels = "00000000000000bb"}}}))
  txt = flat(R.build(R.load(dir), {}):ms())
  T.ok("loss-cpu-1.4", txt:find("not clean: machine (ce on AMD EPYC (kernels 00000000000000aa); kd on AMD EPYC "
    .. "(kernels 00000000000000bb)).", 1, true), "two fingerprints")
  -- the runs' own records come before study.json's
  local kd = run("ce+kd")
  kd.cpu, kd.kernels = "AMD EPYC", "00000000000000cc"
  assert(qr.json.write(dir .. "/sp-kd/results.json", kd))
  txt = flat(R.build(R.load(dir), {}):ms())
  T.ok("loss-cpu-1.5", txt:find("kd on AMD EPYC (kernels 00000000000000cc)).", 1, true), "the run's own record")
  assert(qr.json.write(dir .. "/sp-kd/results.json", run("ce+kd")))
  txt = with(nil, "AMD EPYC")
  T.ok("loss-cpu-1.3", txt:find("study.json does not record the machine of ce, so whether all ran on one CPU cannot be "
    .. "checked.", 1, true), "an unrecorded machine")
  os.execute("rm -rf '" .. dir .. "'")
end

-- the loss comparison counts its excluded intervals against what chance gives (a 95% interval excludes zero one
-- time in twenty when there is no effect) and tries the excluded ones again with the family held to 95% (Bonferroni)
do
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "/sp-ce' '" .. dir .. "/sp-kd' '" .. dir .. "/sp-cascade' '" .. dir .. "/sp-feature'")
  -- 40 questions scored 0.3 by ce; an objective's kind of difference: none, a sure one (every question +0.1), or
  -- a marginal one (27 questions +0.1, 13 -0.1: mean +3.5 points, about 2.4 standard errors: outside a 95% interval,
  -- inside a 99.2% one)
  local function scores(kind)
    local t = {}
    for i = 1, 40 do
      t[i] = 0.3 + (kind == "sure" and 0.1 or kind == "marginal" and (i <= 27 and 0.1 or -0.1) or 0)
    end
    return t
  end
  local function run(loss, teacher, fp, w4)
    return {loss = loss, teacher = teacher, configs = "fp,w4a8", steps = 4, eval_n = 40, seed = 1, results = {
      {config = "fp", tuned = true, f1 = 30, f1_ci = {20, 40}, per_question = {f1 = scores(fp)}},
      {config = "w4a8", tuned = true, f1 = 30, f1_ci = {20, 40}, per_question = {f1 = scores(w4)}}}}
  end
  local function with(kd, cascade)
    assert(qr.json.write(dir .. "/sp-ce/results.json", run("ce")))
    assert(qr.json.write(dir .. "/sp-kd/results.json", run("ce+kd", "tuned", kd)))
    assert(qr.json.write(dir .. "/sp-cascade/results.json", run("ce+kd", "cascade", nil, cascade)))
    assert(qr.json.write(dir .. "/sp-feature/results.json", run("ce+0.1*feature", "tuned")))
    return flat(R.build(R.load(dir), {}):ms())
  end
  local txt = with(nil, nil)
  T.ok("loss-mult-1.1", txt:find("Of these 6 comparisons, 0 exclude zero; with 6 intervals at 95%, about 0.3 would "
    .. "exclude zero by chance if no objective had any effect. None of the objectives is distinguishable from ce at "
    .. "this scale.", 1, true), "no effect anywhere")
  txt = with("sure", nil)
  T.ok("loss-mult-1.2", txt:find("Of these 6 comparisons, 1 excludes zero; with 6 intervals at 95%, about 0.3 would "
    .. "exclude zero by chance if no objective had any effect. Holding the 6 to a 95% level together (Bonferroni: "
    .. "each paired interval at 99.17%), kd at fp (+10.0 points, CI [10.0, 10.0]) still excludes zero: an effect "
    .. "that chance across the comparisons does not explain.", 1, true), "a sure effect survives")
  txt = with("sure", "marginal")
  T.ok("loss-mult-1.3", txt:find("cascade at w4a8 improves F1 over ce at w4a8 by 3.5 points", 1, true),
    "the marginal one excludes zero at 95%")
  T.ok("loss-mult-1.4", txt:find("Of these 6 comparisons, 2 exclude zero", 1, true) and
    txt:find("kd at fp (+10.0 points, CI [10.0, 10.0]) still excludes zero", 1, true) and
    txt:find("At that level, cascade at w4a8 (+3.5 points, CI [", 1, true) and
    txt:find("no longer excludes zero: weak evidence on its own", 1, true), "the marginal one does not survive")
  os.execute("rm -rf '" .. dir .. "'")
end

-- ptq rows with per-question F1: the untuned comparison with fp is paired (a difference every question shares
-- is measurable though the two rows' own intervals overlap)
do
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "/ptq'")
  local fa, fb = {}, {}
  for i = 1, 40 do fa[i] = (i % 2 == 0) and 1 or 0.2; fb[i] = fa[i] - 0.05 end
  assert(qr.json.write(dir .. "/ptq/results.json", {n = 40, shots = 0, results = {
    {config = "fp", quantizer = "none", em = 50, f1 = 60, em_ci = {35, 65}, f1_ci = {48, 72}, n = 40,
      bitops_ratio = 1, bytes_ratio = 1, per_question = {f1 = fa}},
    {config = "w8a8", quantizer = "minmax", em = 45, f1 = 55, em_ci = {30, 60}, f1_ci = {43, 67}, n = 40,
      bitops_ratio = 0.0625, bytes_ratio = 0.25, per_question = {f1 = fb}}}}))
  local txt = flat(R.build(R.load(dir), {}):ms())
  T.ok("ptq-pair-1.1", txt:find("Untuned w8a8 with minmax lowers F1 relative to fp by 5.0 points (95% CI [5.0, 5.0]).", 1,
    true), "the paired ptq sentence")
  os.execute("rm -rf '" .. dir .. "'")
end

-- a second bank's attacks (rpi-b/): their own subsection, figure and captions; the headline and the discussion once
do
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("cp -r '" .. FIX .. "' '" .. dir .. "' && mkdir -p '" .. dir .. "/rpi-b' && cp '" .. FIX
    .. "/rpi/results.json' '" .. dir .. "/rpi-b/results.json'")
  local S1 = R.load(FIX)
  local d1 = R.build(S1, {})
  local S2 = R.load(dir)
  local d2 = R.build(S2, {})
  local t2 = flat(d2:ms())
  T.ok("rpi-b-1.1", t2:find("The same attacks on a second bank (rpi-b)", 1, true), "no rpi-b subsection")
  T.ok("rpi-b-1.2", t2:find("rpi-b/results.json (cells)", 1, true), "rpi-b captions")
  T.eq("rpi-b-1.3", #d2.figures, #d1.figures + 1)
  T.eq("rpi-b-1.4", #S2.headlines, #S1.headlines)
  local _, n1 = flat(d1:ms()):gsub("Why Double%-Win's result", "")
  local _, n2 = t2:gsub("Why Double%-Win's result", "")
  T.eq("rpi-b-1.5", n2, n1)
  T.ok("rpi-b-1.6", not flat(d1:ms()):find("rpi-b/results.json", 1, true), "an absent rpi-b is not listed")
  os.execute("rm -rf '" .. dir .. "'")
end

-- paths recorded by older artifacts read the same on every machine
T.eq("portable-1.1", {R.portable("/root/.cache/qrun/m.gguf"), R.portable("/work/x/datasets/squad/dev.json"),
  R.portable("$QRUN_CACHE/m.gguf"), R.portable("gpt2"), R.portable(nil)},
  {"$QRUN_CACHE/m.gguf", "datasets/squad/dev.json", "$QRUN_CACHE/m.gguf", "gpt2", nil})

T.done()
