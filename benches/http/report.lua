-- Prints one machine-readable line at the end of a wrk run (read by benches/http/run).
-- With WRK_RANGE_SPAN and WRK_RANGE_LEN set, each request asks for a random aligned range.
local span = tonumber(os.getenv("WRK_RANGE_SPAN") or "")
local len = tonumber(os.getenv("WRK_RANGE_LEN") or "")
local auth = os.getenv("WRK_AUTH")

local thread_no = 0
function setup(thread)
  thread_no = thread_no + 1
  thread:set("seed", thread_no)
end

function init(args)
  math.randomseed(seed or 1)
  if auth then
    wrk.headers["Authorization"] = auth
  end
end

if span and len then
  local slots = math.floor((span - len) / len)
  function request()
    local start = math.random(0, slots) * len
    wrk.headers["Range"] = string.format("bytes=%d-%d", start, start + len - 1)
    return wrk.format(nil, nil, wrk.headers)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"bytes\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d," ..
    "\"socket_errors\":%d,\"bad_status\":%d}\n",
    summary.requests, summary.bytes, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
