-- wrk script for bench/memory_soak.py: the small chat request of bench/post.lua, with the
-- attribution headers a caller controls varied per request, so that every per-caller structure in
-- the gateway (rate-limit windows per agent, budget accounts per task, metric label sets, ...) sees
-- many distinct values:
--   x-agent-id    one of SOAK_AGENTS names (default 500), round robin
--   x-task-id     one of SOAK_TASKS ids (default 50000), round robin, so tasks repeat
--   x-session-id  unique per request (chunk number, wrk thread, counter)
-- Environment: BENCH_KEY (the bearer key), SOAK_CHUNK (this wrk run's number, keeps session ids
-- unique across runs), SOAK_OFFSET (requests sent by earlier runs, so task and agent ids continue
-- where the last run stopped), SOAK_THREADS (wrk's -t, the stride between a thread's ids),
-- SOAK_AGENTS, SOAK_TASKS.
wrk.method = "POST"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")

local threads = 0

function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

function init(args)
   -- wrk copies globals set in setup() into each thread's own Lua state
   tid = tid or 0
   chunk = os.getenv("SOAK_CHUNK") or "0"
   offset = tonumber(os.getenv("SOAK_OFFSET") or "0")
   agents = tonumber(os.getenv("SOAK_AGENTS") or "500")
   tasks = tonumber(os.getenv("SOAK_TASKS") or "50000")
   stride = tonumber(os.getenv("SOAK_THREADS") or "1")
   counter = 0
end

function request()
   local index = offset + counter * stride + tid
   counter = counter + 1
   wrk.headers["X-Agent-Id"] = "agent-" .. (index % agents)
   wrk.headers["X-Task-Id"] = "task-" .. (index % tasks)
   wrk.headers["X-Session-Id"] = "sess-" .. chunk .. "-" .. tid .. "-" .. counter
   return wrk.format()
end
