-- wrk script: RFC 8058 one-click POSTs (urlencoded `List-Unsubscribe=One-Click`), each to a
-- distinct unsubscribe path from the file named by TOKENS (one `/unsubscribe/<token>` per line,
-- written by `cargo run --example web_bench_seed`). Thread k of THREADS (set it to wrk's -t)
-- takes lines k, k+THREADS, ..., so no two requests share a token until the list runs out;
-- done() says whether it did (repeats are cheap no-ops and would flatter the rate).
--   TOKENS=/tmp/tokens.txt THREADS=2 wrk -t2 -c16 -d20s -s benches/web/unsubscribe.lua http://127.0.0.1:18080
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local function load_paths()
  local paths = {}
  for line in io.lines(os.getenv("TOKENS") or "benches/web/tokens.txt") do
    if #line > 0 then table.insert(paths, line) end
  end
  return paths
end

local paths, i, stride

function init(args)
  paths = load_paths()
  stride = tonumber(os.getenv("THREADS") or "1")
  i = (id or 1) - stride
end

function request()
  i = i + stride
  if i > #paths then i = (i - 1) % #paths + 1 end
  return wrk.format("POST", paths[i], { ["Content-Type"] = "application/x-www-form-urlencoded" }, "List-Unsubscribe=One-Click")
end

function done(summary, latency, requests)
  local n = #load_paths()
  if summary.requests > n then
    io.write(string.format("WARNING: %d requests but only %d distinct tokens: some repeated\n", summary.requests, n))
  else
    io.write(string.format("all %d requests used distinct tokens (of %d)\n", summary.requests, n))
  end
  io.write(string.format("non-2xx/3xx: %d, errors: connect %d read %d write %d timeout %d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
