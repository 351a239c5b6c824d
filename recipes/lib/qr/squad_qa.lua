-- squad_qa.lua - the SQuAD question-answering protocol shared by every
-- recipe: the prompt format, answer clean-up, and evaluation (EM/F1 with
-- the official v1.1 normalisation, bootstrap confidence intervals).
--
-- Prompt format. A model whose vocabulary has ChatML tokens (SmolLM2-Instruct)
-- is asked in its chat template:
--   <|im_start|>system\n{SYSTEM}<|im_end|>\n
--   <|im_start|>user\nContext: {context}\nQuestion: {question}\n{INSTRUCTION}<|im_end|>\n
--   <|im_start|>assistant\n
-- and generation stops at <|im_end|> or a newline. A base model (GPT-2) gets
--   {context}\nQuestion: {question}\nAnswer:
-- and the answer is what follows " Answer:" up to the first newline. The
-- training recipes append the reference answer (and the end token) to the
-- same prompt, so tuning and evaluation see one format.

local M = {}

M.system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
M.instruction = "Answer in as few words as possible, copying them from the context."

local function chat(tok)
  return tok:token_id("<|im_start|>") ~= nil and tok:token_id("<|im_end|>") ~= nil
end

-- Worked examples shown before the question (chat models only), written
-- for qrun (not SQuAD text): they teach the answer's form, a short span.
-- M.n_shots of them are used (set_shots): the quickstart asks zero-shot
-- (0, the default here); ptq.lua and sp.lua use both (--shots=2), and
-- their reports record the number.
M.n_shots = 0
M.shots = {
  {context = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It was designed by the "
     .. "engineering company of Gustave Eiffel and is 330 metres tall.",
   question = "Whose company designed the Eiffel Tower?", answer = "Gustave Eiffel"},
  {context = "The Amazon river flows through Peru, Colombia and Brazil before it reaches the Atlantic Ocean.",
   question = "Which ocean does the Amazon flow into?", answer = "the Atlantic Ocean"},
}

local function user_turn(context, question)
  return "<|im_start|>user\nContext: " .. context .. "\nQuestion: " .. question .. "\n" .. M.instruction
    .. "<|im_end|>\n<|im_start|>assistant\n"
end

-- Use the first n worked examples (0..#M.shots) in every prompt from now on.
function M.set_shots(n)
  n = math.tointeger(n)
  if not n or n < 0 or n > #M.shots then
    error(string.format("squad: shots = %s: expected an integer 0..%d", tostring(n), #M.shots), 2)
  end
  M.n_shots = n
end

-- The prompt's head and tail around the context, so the context alone can
-- be cut to fit a token budget.
local function parts(tok, ex)
  if chat(tok) then
    local head = "<|im_start|>system\n" .. M.system .. "<|im_end|>\n"
    for i = 1, M.n_shots do
      local s = M.shots[i]
      head = head .. user_turn(s.context, s.question) .. s.answer .. "<|im_end|>\n"
    end
    local turn = user_turn("\0", ex.question)
    local a, b = turn:find("\0", 1, true)
    return head .. turn:sub(1, a - 1), turn:sub(b + 1)
  end
  return "", "\nQuestion: " .. ex.question .. "\nAnswer:"
end

-- Stop strings and the answer's end marker for this tokenizer.
function M.stops(tok)
  if chat(tok) then return {"<|im_end|>", "\n"} end
  return {"\n"}
end

function M.answer_suffix(tok)
  return chat(tok) and "<|im_end|>" or "\n"
end

-- Token ids of the prompt for ex, the context cut (keeping its start, and
-- the answer if ex.answers is given and fits) so the prompt has at most
-- max_tokens tokens. Returns ids, truncated (boolean).
function M.prompt_ids(tok, ex, max_tokens)
  local head, tail = parts(tok, ex)
  local ids = tok:encode(head .. ex.context .. tail)
  if #ids <= max_tokens then return ids, false end
  local h, t = tok:encode(head), tok:encode(tail)
  local ctx = tok:encode(ex.context)
  local budget = max_tokens - #h - #t
  if budget < 16 then
    error(string.format("squad: question %s: the prompt without context already has %d tokens (limit %d)",
      ex.id, #h + #t, max_tokens))
  end
  local out = {}
  for _, v in ipairs(h) do out[#out + 1] = v end
  for i = 1, budget do out[#out + 1] = ctx[i] end
  for _, v in ipairs(t) do out[#out + 1] = v end
  return out, true
end

function M.prompt_text(tok, ex)
  local head, tail = parts(tok, ex)
  return head .. ex.context .. tail
end

-- Clean a generated answer: trim spaces and a trailing full stop.
function M.clean(s)
  s = s:gsub("^%s+", ""):gsub("%s+$", "")
  s = s:gsub("%.$", "")
  return s
end

-- Evaluate a model on examples. opts: max_new_tokens (24), batch (8),
-- max_prompt_tokens (model context - max_new_tokens, at most 1024),
-- progress (true), ci_iters (1000), seed (1).
-- Returns {em=%, f1=%, n=, em_ci={lo,hi}, f1_ci={lo,hi}, qps=, truncated=,
-- predictions={ {id=, prediction=, em=, f1=[, rpi=]}, ... }, prefill_tok_s=, decode_tok_s=
-- [, rpi = {names=, counts=}]}; under model:rpi each prediction names the
-- configuration its question drew.
function M.evaluate(model, examples, opts)
  opts = opts or {}
  local tok = model.tokenizer
  local info = model:info()
  local max_new = opts.max_new_tokens or 24
  local max_prompt = opts.max_prompt_tokens or math.min(1024, info.n_ctx) - max_new
  local prompts, truncated = {}, 0
  for i, ex in ipairs(examples) do
    local ids, cut = M.prompt_ids(tok, ex, max_prompt)
    prompts[i] = ids
    if cut then truncated = truncated + 1 end
  end
  local t0 = qr.now()
  local texts, gen = model:generate(prompts, {
    max_new_tokens = max_new, stop = M.stops(tok), batch = opts.batch or 8,
    progress = opts.progress ~= false,
  })
  local elapsed = qr.now() - t0
  local ems, f1s, preds = {}, {}, {}
  for i, ex in ipairs(examples) do
    local p = M.clean(texts[i])
    local em, f1 = qr.squad.score(p, ex.answers)
    ems[i], f1s[i] = em, f1
    preds[i] = {id = ex.id, prediction = p, em = em, f1 = f1}
    if gen.rpi then preds[i].rpi = gen.rpi_names[gen.rpi[i]] end -- the configuration this question drew
  end
  local rpi
  if gen.rpi then -- under model:rpi: how often each configuration was drawn
    rpi = {names = gen.rpi_names, counts = {}}
    for k = 1, #gen.rpi_names do rpi.counts[k] = 0 end
    for _, k in ipairs(gen.rpi) do rpi.counts[k] = rpi.counts[k] + 1 end
  end
  local function mean(t)
    local s = 0
    for _, v in ipairs(t) do s = s + v end
    return #t > 0 and s / #t or 0
  end
  local ci = {iters = opts.ci_iters or 1000, seed = opts.seed or 1, level = 0.95}
  local elo, ehi = qr.squad.ci(ems, ci)
  local flo, fhi = qr.squad.ci(f1s, ci)
  return {
    em = 100 * mean(ems), f1 = 100 * mean(f1s), n = #examples,
    em_ci = {100 * elo, 100 * ehi}, f1_ci = {100 * flo, 100 * fhi},
    qps = #examples / elapsed, seconds = elapsed, truncated = truncated,
    prefill_tok_s = gen.prefill_tokens / math.max(gen.prefill_s, 1e-9),
    decode_tok_s = gen.decode_tokens / math.max(gen.decode_s, 1e-9),
    predictions = preds, rpi = rpi,
  }
end

-- The first `limit` examples of a SQuAD file (0 or nil: all).
function M.load(path, limit)
  local all, info = qr.squad.load(path)
  if not limit or limit <= 0 or limit >= #all then return all, info end
  local out = {}
  for i = 1, limit do out[i] = all[i] end
  return out, info
end

-- A path as results files record it: relative to the checkout
-- ("datasets/squad/dev-sample.json") or to the model cache
-- ("$QRUN_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf") when it lies there, so a
-- results file names the same things on every machine; other paths as given.
function M.portable_path(path)
  if type(path) ~= "string" then return path end
  local src = qr.source_dir and (qr.source_dir .. "/")
  if src and path:sub(1, #src) == src then return path:sub(#src + 1) end
  local cache = os.getenv("QRUN_CACHE")
  if not cache or cache == "" then cache = (os.getenv("HOME") or "") .. "/.cache/qrun" end
  cache = cache .. "/"
  if path:sub(1, #cache) == cache then return "$QRUN_CACHE/" .. path:sub(#cache + 1) end
  return path
end

-- The git revision of the source tree, or "unknown".
function M.git_rev()
  local p = io.popen("git -C '" .. qr.source_dir .. "' rev-parse --short HEAD 2>/dev/null")
  if not p then return "unknown" end
  local r = p:read("l")
  p:close()
  return r or "unknown"
end

-- The CPU model, as /proc/cpuinfo names it ("unknown CPU" elsewhere): which
-- machine made a result. Quantized configurations' answers depend on the
-- BLAS kernels (scripts/probe_kernels.sh), so results name their machine.
function M.cpu_model()
  local f = io.open("/proc/cpuinfo", "r")
  if not f then return "unknown CPU" end
  local m
  for line in f:lines() do
    m = line:match("^model name%s*:%s*(.-)%s*$")
    if m then break end
  end
  f:close()
  return m or "unknown CPU"
end

-- The kernels' fingerprint: 16 hex digits hashing the float bits
-- of a model's last-position logits over a fixed token sequence, at fp,
-- w8a8 and w4a8 (minmax, adapters off). Two machines (or thread counts)
-- with the same fingerprint computed these bit for bit alike; the CPU model
-- string does not tell that ("AMD EPYC" names more than one kind of host).
-- Takes a loaded model (left at fp, adapters off) or a model path.
function M.kernel_fingerprint(model)
  if type(model) == "string" then model = assert(qr.model(model)) end
  local P = require("qr.precision")
  local nv = model:info().n_vocab
  local ids, x = {}, 12345
  for i = 1, 64 do
    x = (x * 1103515245 + 12345) % 2147483648
    ids[i] = x % nv
  end
  model:quantize{weight = "minmax", act = "minmax"}
  local h = -3750763034362895579 -- FNV-1a 64 offset basis (0xcbf29ce484222325); integer arithmetic wraps
  for _, name in ipairs{"fp", "w8a8", "w4a8"} do
    local cfg = P.load({name}, model)[1]
    local run = {name = cfg.name, layers = {}}
    for i, l in ipairs(cfg.layers) do run.layers[i] = {name = l.name, w = l.w, a = l.a, adapter = -1} end
    model:precision(run)
    for _, v in ipairs(model:logits(ids)) do
      h = (h ~ string.unpack("<I4", string.pack("<f", v))) * 1099511628211
    end
  end
  local cfg = P.load({"fp"}, model)[1]
  local run = {name = "fp", layers = {}}
  for i, l in ipairs(cfg.layers) do run.layers[i] = {name = l.name, w = l.w, a = l.a, adapter = -1} end
  model:precision(run)
  return string.format("%016x", h)
end

return M
