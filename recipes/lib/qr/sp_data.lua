-- sp_data.lua - SQuAD v1.1 examples as training sequences for
-- switchable-precision tuning (qr.train's `data`).
--
-- Each example becomes one sequence: the evaluation prompt of squad_qa.lua
-- (the same format the model is scored in) followed by the reference answer
-- and the end marker (squad_qa.answer_suffix: "<|im_end|>" for chat models,
-- "\n" for base models, where the answer also gets its leading space after
-- "Answer:"). Prompt and answer are tokenized separately, as in generation,
-- where the answer's tokens follow the prompt's. Targets are next-token ids
-- on the answer and end-marker positions only (the loss sees only the
-- answer), -1 elsewhere.
--
--   local D = require("qr.sp_data")
--   local seqs, st = D.build(model.tokenizer, examples, {seq = 384})
--   print(D.describe(st))
--
-- Contexts too long for `seq` are cut (squad_qa.prompt_ids keeps the start
-- of the context and the answer when it fits); an example whose answer
-- would be cut off, or whose prompt cannot fit at all, is skipped and
-- counted. Malformed examples (no answer, empty question, answer not in the
-- context) are skipped and reported in st.warnings, never fatal.

local qa = require("qr.squad_qa")

local D = {}

local function chat(tok)
  return tok:token_id("<|im_start|>") ~= nil and tok:token_id("<|im_end|>") ~= nil
end

-- The answer's token ids for ex (the first reference answer).
function D.answer_ids(tok, answer)
  if chat(tok) then return tok:encode(answer .. qa.answer_suffix(tok)) end
  return tok:encode(" " .. answer .. qa.answer_suffix(tok))
end

-- D.build(tok, examples, opts) -> seqs, stats
-- opts.seq (384): longest sequence; opts.max_warnings (20).
-- seqs[i] = {ids = {...}, targets = {...}, id = example id}
-- stats = {examples=, used=, truncated=, skipped_long=, malformed=,
--          tokens=, answer_tokens=, warnings = {...}}
function D.build(tok, examples, opts)
  opts = opts or {}
  local seq = opts.seq or 384
  local maxw = opts.max_warnings or 20
  local st = {examples = #examples, used = 0, truncated = 0, skipped_long = 0, malformed = 0, tokens = 0,
              answer_tokens = 0, warnings = {}}
  local function warn(ex, why)
    st.malformed = st.malformed + 1
    if #st.warnings < maxw then
      st.warnings[#st.warnings + 1] = string.format("question %s: %s (skipped)", tostring(ex.id), why)
    end
  end
  local seqs = {}
  for _, ex in ipairs(examples) do
    local ans = type(ex.answers) == "table" and ex.answers[1] or nil
    if type(ans) ~= "string" or ans:match("^%s*$") then
      warn(ex, "no answer")
    elseif type(ex.question) ~= "string" or ex.question:match("^%s*$") then
      warn(ex, "empty question")
    elseif type(ex.context) ~= "string" or not ex.context:find(ans, 1, true) then
      warn(ex, "answer not found in the context")
    else
      local aids = D.answer_ids(tok, ans)
      local budget = seq - #aids
      local ok, pids, cut = pcall(qa.prompt_ids, tok, ex, budget)
      if not ok or #pids + #aids > seq then
        st.skipped_long = st.skipped_long + 1
      else
        -- a cut context must still hold the answer, or the target is unlearnable
        local keep = true
        if cut then
          st.truncated = st.truncated + 1
          keep = tok:decode(pids):find(ans, 1, true) ~= nil
          if not keep then st.skipped_long = st.skipped_long + 1 end
        end
        if keep then
          local ids, tg = {}, {}
          for i = 1, #pids do ids[i] = pids[i] end
          for i = 1, #aids do ids[#pids + i] = aids[i] end
          local n, p = #ids, #pids
          -- position j predicts ids[j + 1]: scored for the answer and end marker
          for j = 1, n do tg[j] = (j >= p and j < n) and ids[j + 1] or -1 end
          seqs[#seqs + 1] = {ids = ids, targets = tg, id = ex.id}
          st.used = st.used + 1
          st.tokens = st.tokens + n
          st.answer_tokens = st.answer_tokens + #aids
        end
      end
    end
  end
  return seqs, st
end

function D.describe(st)
  local s = string.format("%d examples -> %d sequences (%d tokens, %d scored); %d contexts cut, %d skipped "
    .. "as too long, %d malformed", st.examples, st.used, st.tokens, st.answer_tokens, st.truncated,
    st.skipped_long, st.malformed)
  for _, w in ipairs(st.warnings) do s = s .. "\n  warning: " .. w end
  return s
end

return D
