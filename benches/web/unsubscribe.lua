-- wrk script: RFC 8058 one-click POSTs, cycling through the unsubscribe paths listed one per
-- line in the file named by TOKENS (default benches/web/tokens.txt), e.g. lines like
--   /unsubscribe/<token>
-- Idempotent, so repeats are fine once the list is exhausted.
--   TOKENS=/tmp/tokens.txt wrk -t2 -c16 -d20s -s benches/web/unsubscribe.lua http://127.0.0.1:8080
local paths = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS") or "benches/web/tokens.txt") do
    if #line > 0 then table.insert(paths, line) end
  end
  i = math.random(0, #paths)
end

function request()
  i = i % #paths + 1
  return wrk.format("POST", paths[i], { ["Content-Type"] = "application/x-www-form-urlencoded" }, "List-Unsubscribe=One-Click")
end
