-- wrk script: POST the JSON body in env WRK_BODY (with optional WRK_AUTH bearer token) and
-- print one machine-readable line of latency percentiles (microseconds) and throughput.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = "Bearer " .. auth end
wrk.body = os.getenv("WRK_BODY")
-- WRK_HEADERS: more request headers, one "Name: value" per line (a peer's routing headers)
for line in string.gmatch(os.getenv("WRK_HEADERS") or "", "[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout + summary.errors.status
  io.write(string.format(
    "RESULT p50=%d p95=%d p99=%d max=%d requests=%d seconds=%.3f errors=%d\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.requests, summary.duration / 1e6, errors))
end
