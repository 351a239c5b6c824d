-- tiny_squad.lua - writes tiny SQuAD-format files whose prompts fit the
-- fuzz corpus's tiny Llama (64 tokens of context): "<Name> has a <color>
-- hat." / "What color?". For the shell tests that run recipes end to end.
--   qrun tests/tiny_squad.lua OUT_DIR [N_TRAIN [N_DEV]]   -> OUT_DIR/{train,dev}.json
local out = assert(arg[1], "usage: qrun tests/tiny_squad.lua OUT_DIR [N_TRAIN [N_DEV]]")
local colors = {"red", "blue", "green", "black", "white", "pink", "gray", "gold"}
local names = {"Bob", "Ann", "Tom", "Eve", "Max", "Ida", "Sam", "Liz"}
local function make(n, seed, file)
  local paras, s = {}, seed
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    local nm, c = names[1 + s % #names], colors[1 + (s // 16) % #colors]
    local ctx = nm .. " has a " .. c .. " hat."
    paras[#paras + 1] = {context = ctx, qas = {
      {id = file .. i, question = "What color is the hat?", answers = {{text = c, answer_start = ctx:find(c, 1, true) - 1}}}}}
  end
  assert(qr.json.write(out .. "/" .. file .. ".json", {version = "1.1", data = {{title = "t", paragraphs = paras}}}))
end
make(tonumber(arg[2]) or 16, 3, "train")
make(tonumber(arg[3]) or 12, 5, "dev")
