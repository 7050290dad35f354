-- wrk script: POST /subscribe with a distinct address per request (thread id + counter).
-- Run against a server whose config lifts the rate limit: [web] subscribe_per_minute = 0.
--   wrk -t2 -c16 -d20s -s benches/web/subscribe.lua http://127.0.0.1:8080
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id or 0
end

function request()
  counter = counter + 1
  local body = string.format("email=bench-%d-%d-%d%%40example.com&topic=%s", thread_id, counter, math.random(1, 1e9), os.getenv("TOPIC") or "rust")
  return wrk.format("POST", "/subscribe", { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
