-- wrk script for bench/ingest.py: POSTs pre-built JSON bodies round-robin and
-- reports p50/p95/p99 latency and the non-202 answers.
-- Arguments (after --): <bodies file, one JSON body per line> <API key>
local bodies = {}
local key = ""
local idx = 0
local errors = 0

init = function(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  key = args[2]
  idx = math.random(#bodies)
end

request = function()
  idx = idx % #bodies + 1
  return wrk.format("POST", "/api/v1/metrics", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }, bodies[idx])
end

response = function(status, headers, body)
  if status ~= 202 then
    errors = errors + 1
  end
end

done = function(summary, latency, requests)
  io.write(string.format("WRK requests=%d duration_us=%d errors_status=%d errors_socket=%d\n",
    summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
  io.write(string.format("WRK p50_us=%d p95_us=%d p99_us=%d\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
