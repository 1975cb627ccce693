-- wrk script for bench/proxy_bench.py: one POST of a small OpenAI chat request per call.
-- The bearer key comes from the BENCH_KEY environment variable (each target has its own key).
wrk.method = "POST"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")
wrk.headers["X-Task-Id"] = "bench-task" -- task budgets apply (overhead_bench.py's policy variants have one)
