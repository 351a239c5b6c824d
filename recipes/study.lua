-- study.lua - MISSION step 7: the research program end to end, one stage
-- after another, each a recipe of its own in <run-dir>/<stage>, then the
-- report. Resumable at every stage: kill it, rerun the same command; each
-- recipe resumes its own checkpoints and skips what its results already
-- hold, and a stage that finished with the same command line is skipped
-- outright (<run-dir>/study.json records the commands, their exit
-- status, wall and CPU time, and peak resident memory: qr.spawn).
--
--   qrun recipes/study.lua --scale=smoke --run-dir=runs/study-smoke
--   qrun recipes/study.lua --scale=default --run-dir=runs/study
--   qrun recipes/study.lua --scale=full --run-dir=runs/study-full --stages=sp,cpt
--   qrun recipes/study.lua --scale=default --dry-run     # the commands, nothing run
--
-- Stages, in order (--stages picks some):
--   ptq        untuned: every uniform configuration x quantizer, the mixed ones (ptq.lua)
--   sp         switchable-precision tuning with ce, every configuration untuned and tuned (sp.lua)
--   losses     the same with ce (again), ce+kd (KL to the tuned fp configuration), cascade (ce+kd from the
--              next-higher configuration) and ce+0.1*feature (hidden states of the tuned fp configuration):
--              the objectives are compared within this one stage, so on one machine, since a
--              quantized configuration's answers depend on the CPU's kernels (on the tuned bank up to ~4
--              F1 points: reports/study-smollm2-default/rpi/README.md) and a study resumed across
--              sessions can run sp on another machine than its losses
--   search     sensitivity, greedy / ILP / evolution under budgets, the Pareto front (search.lua on sp's bank)
--   cpt        cyclic precision training against joint training at equal compute (cpt.lua)
--   rpi        random precision inference against attacks (rpi.lua on sp's bank)
--   report     the PDF (report.lua), when its tools are installed (scripts/setup_report.sh)
-- Scales: smoke (minutes; tiny settings, for the suite's tiny model),
-- default (SmolLM2 on this 2-core machine within a working day), full (the
-- protocol as asked: 1000 tuning iterations, the whole dev sample for the
-- final tables). The settings of each are the table SCALES below.
local o = qr.opts{
  {"scale", "default", "smoke, default or full"},
  {"run-dir", "runs/study", "the study's directory (one folder per stage)"},
  {"stages", "ptq,sp,losses,search,cpt,rpi,report", "stages to run, in this order"},
  {"model", "", "a .gguf file or a Hugging Face GPT-2 directory (default: SmolLM2)"},
  {"data", "", "SQuAD v1.1 training JSON (default: datasets/squad/train-sample.json)"},
  {"eval-data", "", "SQuAD v1.1 evaluation JSON (default: datasets/squad/dev-sample.json)"},
  {"max-new-tokens", 24, "longest answer in tokens (every stage)"},
  {"seq", 384, "longest training sequence (every stage that trains)"},
  {"shots", -1, "worked examples in prompts, 0..2 (-1: the scale's)"},
  {"dry-run", false, "print the stages' commands and stop"},
  {"force", false, "rerun stages that finished (each recipe still resumes what it has)"},
  {"rerun-other-cpu", false, "rerun the stages not known to have run on this machine (another kernel fingerprint, "
    .. "or none recorded), their directories moved aside to <stage>.<that cpu> first (the losses stage compares its "
    .. "objectives on one machine)"},
}

-- Per scale, each stage's options (merged with the study-wide ones).
local SCALES = {
  smoke = {
    shots = 0,
    ptq = {limit = 8, quantizers = "minmax", configs = "w8a8,w4a8", mixed = "", batch = 8},
    sp = {configs = "fp,w8a8,w4a8", steps = 20, batch = 4, ["eval-limit"] = 8, ["train-limit"] = 16,
      ["batch-eval"] = 8, ["checkpoint-every"] = 10, lr = 1e-2, rank = 8},
    losses = {"ce", "kd", "cascade", "feature"},
    search = {budget = "0.3,0.5", ["calib-limit"] = 8, ["sens-limit"] = 4, ["score-limit"] = 8, ["eval-limit"] = 8,
      pop = 4, gens = 2, elite = 1, ["corr-min"] = 4, ["batch-eval"] = 8},
    cpt = {configs = "fp,w8a8,w4a8", ["eval-configs"] = "fp,w8a8,w4a8", steps = 4, batch = 4, ["eval-limit"] = 8,
      ["train-limit"] = 16, ["n-cycles"] = 2, ["b-min"] = 4, ["b-max"] = 8, ["batch-eval"] = 8, warmup = 1,
      ["checkpoint-every"] = 2, lr = 1e-2},
    rpi = {["eval-limit"] = 8, budget = 20, attacks = "typo", ["batch-eval"] = 8},
  },
  default = {
    shots = 0,
    ptq = {limit = 500},
    sp = {steps = 60, ["eval-limit"] = 500, ["train-limit"] = 2000},
    losses = {"ce", "kd", "cascade", "feature"},
    search = {["eval-limit"] = 200},
    cpt = {steps = 25, ["eval-limit"] = 200, prt = true},
    rpi = {["eval-limit"] = 200, attacks = "typo,textfooler,bert_attack"},
  },
  full = {
    shots = 0,
    ptq = {limit = 0},
    sp = {steps = 1000, ["eval-limit"] = 0, ["train-limit"] = 0, batch = 16},
    losses = {"ce", "kd", "cascade", "feature"},
    search = {["eval-limit"] = 1000, ["calib-limit"] = 256},
    cpt = {steps = 1000, ["eval-limit"] = 0, ["train-limit"] = 0, batch = 16, prt = true},
    rpi = {["eval-limit"] = 1000, attacks = "typo,textfooler,bert_attack"},
  },
}

local function refuse(msg)
  io.stderr:write("study: ", msg, "\n")
  os.exit(2)
end
local S = SCALES[o.scale]
if not S then refuse(string.format("--scale=%s: expected smoke, default or full", o.scale)) end
local STAGES = {"ptq", "sp", "losses", "search", "cpt", "rpi", "report"}
local want = {}
for s in o.stages:gmatch("[^,%s]+") do
  local known = false
  for _, k in ipairs(STAGES) do known = known or k == s end
  if not known then refuse(string.format("--stages: no stage named '%s' (known: %s)", s, table.concat(STAGES, ","))) end
  want[s] = true
end
local shots = o.shots >= 0 and o.shots or S.shots
if not math.tointeger(shots) or shots > 2 then refuse("--shots: expected an integer 0..2") end

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local qrun = arg and arg[-1] or (qr.build_dir .. "/qrun")
local dir = o.run_dir
local common = {}
if o.model ~= "" then common.model = o.model end
if o.data ~= "" then common.data = o.data end
if o.eval_data ~= "" then common["eval-data"] = o.eval_data end
common["max-new-tokens"] = o.max_new_tokens

-- the command of one recipe run: sorted options, so the same settings give the same line
local function command(recipe, opts)
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {sh(qrun), sh(qr.source_dir .. "/recipes/" .. recipe)}
  for _, k in ipairs(keys) do
    local v = opts[k]
    if v == true then
      parts[#parts + 1] = "--" .. k
    elseif v == false then
      parts[#parts + 1] = "--no-" .. k
    else
      parts[#parts + 1] = "--" .. k .. "=" .. sh(v)
    end
  end
  return table.concat(parts, " ")
end
local function merge(...)
  local t = {}
  for _, src in ipairs{...} do for k, v in pairs(src) do t[k] = v end end
  return t
end

-- A stage's command without its first word, the qrun binary: `./build/qrun`
-- and `build/qrun` (or an installed qrun) run the same stage, which a rerun
-- from elsewhere must not take for a changed one (and run again, its
-- recorded time replaced by the resumed run's seconds).
local function same_stage(a, b)
  local function rest(cmd) return cmd:match("^'[^']*'%s+(.*)$") or cmd:match("^%S+%s+(.*)$") or cmd end
  return a ~= nil and b ~= nil and rest(a) == rest(b)
end

local plan = {}
-- each stage's own directory (what --rerun-other-cpu moves aside); the report writes into the study's
local function add(stage, name, recipe, opts)
  local d = opts["run-dir"] or (opts.out and opts.out:match("^(.*)/[^/]*$"))
  plan[#plan + 1] = {stage = stage, name = name, cmd = command(recipe, opts), dir = d ~= dir and d or nil}
end
local sp_dir = dir .. "/sp"
local ptq_opts = merge(common, S.ptq, {out = dir .. "/ptq/results.json", shots = shots})
ptq_opts.data, ptq_opts["eval-data"] = common["eval-data"], nil -- ptq.lua's --data is the questions it evaluates
add("ptq", "ptq", "ptq.lua", ptq_opts)
local sp_opts = merge(common, S.sp, {["run-dir"] = sp_dir, shots = shots, seq = o.seq})
add("sp", "sp", "sp.lua", sp_opts)
for _, loss in ipairs(S.losses) do
  -- the untuned evaluations are the sp stage's (the same model, configurations and questions): not repeated
  local lo = merge(sp_opts, {["run-dir"] = dir .. "/sp-" .. loss, untuned = false})
  -- every objective keeps the task's cross-entropy; the distillation terms come from the configuration being
  -- tuned (the step's highest, fp: switchable precision's teacher) or, for cascade, from the next-higher one
  -- (InstantNet), never from the frozen untuned base, whose answers (F1 ~14 zero-shot) would be copied
  if loss == "cascade" then lo.loss, lo.teacher = "ce+kd", "cascade"
  elseif loss == "ce" then lo.loss = "ce"
  elseif loss == "feature" then
    -- weighted so that the term starts near CE's size where it matters: on SmolLM2 the step-1 hidden-state MSE
    -- to the tuned fp is 1.7 for w8a8, 22 for mlp4 and 34 for w4a8, against a CE of 2.4 to 3.5
    lo.loss, lo.teacher = "ce+0.1*feature", "tuned"
  else lo.loss, lo.teacher = "ce+" .. loss, "tuned" end
  add("losses", "sp-" .. loss, "sp.lua", lo)
end
local search_opts = merge(common, S.search, {["sp-dir"] = sp_dir, ["run-dir"] = dir .. "/search"})
add("search", "search", "search.lua", search_opts)
-- cpt: the tuned arms train and are evaluated with the study's prompt; its untuned baseline keeps cpt.lua's
-- own (--shots, two worked examples: an untuned model needs them), so the default stage is exactly
-- `cpt.lua --steps=25 --eval-limit=200 --prt` and a run of that command can stand in for it
add("cpt", "cpt", "cpt.lua", merge(common, S.cpt, {["run-dir"] = dir .. "/cpt", ["train-shots"] = shots,
  seq = o.seq}))
local rpi_opts = merge(S.rpi, {["sp-dir"] = sp_dir, ["run-dir"] = dir .. "/rpi", ["max-new-tokens"] = o.max_new_tokens,
  seq = o.seq})
if common.model then rpi_opts.model = common.model end
if common["eval-data"] then rpi_opts["eval-data"] = common["eval-data"] end
add("rpi", "rpi", "rpi.lua", rpi_opts)
add("report", "report", "report.lua", {["run-dir"] = dir, out = dir .. "/report.pdf"})

if o.dry_run then
  for _, p in ipairs(plan) do
    if want[p.stage] then print(p.cmd) end
  end
  os.exit(0)
end

os.execute("mkdir -p " .. sh(dir))
local spath = dir .. "/study.json"
local doc = qr.json.read(spath) or {}
doc.stages = doc.stages or {}
doc.scale, doc.git_rev = o.scale, require("qr.squad_qa").git_rev()
doc.model = require("qr.squad_qa").portable_path(o.model ~= "" and o.model or (qr.default_model()))
doc.settings = S
local function save() assert(qr.json.write(spath, doc, {indent = true})) end
-- the machine a stage ran on: a study resumed across sessions can run its stages on different machines
local cpu_model = require("qr.squad_qa").cpu_model
-- and its kernels' fingerprint (qr.squad_qa.kernel_fingerprint, a few seconds): the CPU model string names more
-- than one kind of host, and the thread count changes the bits too; two stages with one fingerprint computed the
-- model's quantized logits bit for bit alike
local kernels = require("qr.squad_qa").kernel_fingerprint(o.model ~= "" and o.model or assert(qr.default_model()))
print(string.format("study: this machine: %s, %s threads, %s matrix products, kernels %s", cpu_model(),
  os.getenv("OMP_NUM_THREADS") or "all", (qr.kernels()), kernels))
save()
local t_all = qr.now()
for _, p in ipairs(plan) do
  if want[p.stage] then
    local old = doc.stages[p.name]
    local here = cpu_model()
    -- another machine: another kernel fingerprint where the stage recorded one, else another CPU model
    -- (finished there, or begun there: a recipe resumes its checkpoints, so a stage interrupted on one machine and
    -- resumed on another mixes the two; study.json records a stage as "started" before it runs)
    -- With --rerun-other-cpu a stage that recorded no fingerprint counts as another machine too: one CPU model
    -- string names hosts whose kernels differ, so only the fingerprint shows a stage ran here.
    local elsewhere = old and p.dir and (type(old.kernels) == "string" and old.kernels ~= kernels
      or old.kernels == nil and (o.rerun_other_cpu or type(old.cpu) == "string" and old.cpu ~= here))
    local what = elsewhere and (old.kernels and string.format("%s (kernels %s)", tostring(old.cpu), old.kernels)
      or string.format("%s (kernels not recorded)", tostring(old.cpu or "an unrecorded CPU")))
    if elsewhere and o.rerun_other_cpu and same_stage(old.cmd, p.cmd) and io.open(p.dir, "r") then
      -- its results stay, beside: a recipe resumes what its directory holds, so the rerun needs an empty one
      local slug = (tostring(old.cpu) .. (old.kernels and ("-" .. old.kernels) or "")):lower():gsub("[^%w]+", "-")
        :gsub("^%-+", ""):gsub("%-+$", "")
      local aside = p.dir .. "." .. (slug ~= "" and slug or "other-cpu")
      if io.open(aside, "r") then
        io.stderr:write(string.format("study: --rerun-other-cpu: %s already exists; move it away to rerun %s here\n",
          aside, p.name))
        os.exit(1)
      end
      assert(os.rename(p.dir, aside))
      print(string.format("study: %-12s ran on %s; this machine is %s (kernels %s): %s moved aside to %s, rerunning "
        .. "it here", p.name, what, here, kernels, p.dir, aside))
      doc.stages[p.name .. "@" .. tostring(old.cpu) .. (old.kernels and ("/" .. old.kernels) or "")] = old
      doc.stages[p.name], old, elsewhere = nil, nil, false
      save()
    end
    if old and old.status == 0 and same_stage(old.cmd, p.cmd) and not o.force then
      print(string.format("study: %-12s done (%.0fs); skipped%s", p.name, old.seconds or 0, elsewhere and
        string.format(" (it ran on %s, this machine is %s (kernels %s): --rerun-other-cpu reruns it here)", what, here,
          kernels) or ""))
    elseif p.stage == "report" and not io.open(qr.source_dir .. "/recipes/report.lua", "r") then
      print("study: report       recipes/report.lua is not in this checkout; skipped")
    elseif p.stage == "report" and not os.execute("bash " .. sh(qr.source_dir .. "/scripts/setup_report.sh")
        .. " --check >/dev/null 2>&1") then
      print("study: report       its tools are not installed (bash scripts/setup_report.sh installs them); skipped")
    else
      if elsewhere and old.status ~= 0 and same_stage(old.cmd, p.cmd) then
        io.stderr:write(string.format("study: %s was begun on %s; resuming it on %s (kernels %s) mixes the two machines "
          .. "(--rerun-other-cpu starts it afresh here)\n", p.name, what, here, kernels))
      end
      print(string.format("study: %-12s %s", p.name, p.cmd))
      io.stdout:flush()
      -- a stage resumed after a failure (or an interruption) adds up its runs' times; its peak is the larger
      local prev = (old and same_stage(old.cmd, p.cmd) and old.status ~= 0) and old or {}
      -- the threads it ran with (OMP_NUM_THREADS, else every core); runs with different counts are listed
      local th = os.getenv("OMP_NUM_THREADS") or "all"
      if prev.threads and prev.threads ~= th and not tostring(prev.threads):find(th, 1, true) then
        th = prev.threads .. "," .. th
      end
      local cpu = here
      if prev.cpu and prev.cpu ~= cpu and not tostring(prev.cpu):find(cpu, 1, true) then cpu = prev.cpu .. " then " .. cpu end
      local kern = kernels
      if prev.kernels and prev.kernels ~= kern and not tostring(prev.kernels):find(kern, 1, true) then
        kern = prev.kernels .. " then " .. kern
      end
      -- recorded before it runs, so that a stage killed with the session still names the machine it began on
      doc.stages[p.name] = {cmd = p.cmd, status = "started", seconds = prev.seconds or 0, threads = th, cpu = cpu,
        kernels = kern, cpu_seconds = prev.cpu_seconds or 0, peak_rss_mb = prev.peak_rss_mb, runs = prev.runs or 0,
        started = os.date("!%Y-%m-%dT%H:%M:%SZ")}
      save()
      local r = qr.spawn(p.cmd) -- the exit status, wall and CPU time, peak memory of this stage's run
      local status = r.status
      doc.stages[p.name] = {cmd = p.cmd, status = status, seconds = r.seconds + (prev.seconds or 0), threads = th, cpu = cpu, kernels = kern, gemm = (qr.kernels()),
        cpu_seconds = r.user + r.sys + (prev.cpu_seconds or 0),
        peak_rss_mb = math.max(r.max_rss_mb, prev.peak_rss_mb or 0), runs = (prev.runs or 0) + 1,
        finished = os.date("!%Y-%m-%dT%H:%M:%SZ")}
      save()
      print(string.format("study: %-12s exit %d, %.0fs wall, %.0fs CPU, peak %.0f MB resident", p.name, status,
        r.seconds, r.user + r.sys, r.max_rss_mb))
      if status ~= 0 then
        io.stderr:write(string.format("study: stage %s failed (exit %d); fix it and rerun the same command: the "
          .. "finished stages are skipped and this one resumes\n", p.name, status))
        os.exit(1)
      end
    end
  end
end
doc.seconds_this_run = qr.now() - t_all
save()
print(string.format("study: done in %.0fs; %s", qr.now() - t_all, spath))
