-- wrk script: POST /subscribe with a distinct address per request (thread id + counter) and one
-- topic. Run against a server whose config lifts the rate limit ([web] subscribe_per_minute = 0).
--   wrk -t2 -c16 -d20s -s benches/web/subscribe.lua http://127.0.0.1:18080
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local counter = 0
local run = 0

function init(args)
  run = os.time()
end

function request()
  counter = counter + 1
  local body = string.format("email=bench-%d-%d-%d%%40example.com&topic=%s", run, id or 0, counter, os.getenv("TOPIC") or "rust")
  return wrk.format("POST", "/subscribe", { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx/3xx: %d, errors: connect %d read %d write %d timeout %d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
