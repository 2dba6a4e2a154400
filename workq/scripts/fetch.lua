-- fetch: take the next job for this pool, trying job names in the given (priority-sampled) order.
-- KEYS: for each job name, seven keys: queue, this pool's in-progress list, paused flag, lock (jobs of the name
--       in flight across pools), lock_info (per-pool in-flight hash), max_concurrency (cap; 0 or missing = none),
--       leases (ext: sorted set of running jobs' deadlines, for job time-outs)
-- ARGV[1]: pool id   ARGV[2]: now (epoch s)   ARGV[2 + group]: the job name's timeout in seconds (0 = none)
-- Returns {job bytes, 1-based index of the job name's group, lease deadline or ''}, or false when nothing can be
-- fetched. The deadline identifies this run of the job: ack.lua and extend_lease.lua act only while it holds.
local pool_id, now = ARGV[1], tonumber(ARGV[2])
for group = 1, #KEYS / 7 do
  local base = (group - 1) * 7
  local queue = KEYS[base + 1]
  if redis.call('llen', queue) > 0 and redis.call('exists', KEYS[base + 3]) == 0 then
    local cap = tonumber(redis.call('get', KEYS[base + 6]) or '0') or 0
    local running = tonumber(redis.call('get', KEYS[base + 4]) or '0') or 0
    if cap <= 0 or running < cap then
      local payload = redis.call('rpoplpush', queue, KEYS[base + 2])
      redis.call('incr', KEYS[base + 4])
      redis.call('hincrby', KEYS[base + 5], pool_id, 1)
      local timeout = tonumber(ARGV[2 + group]) or 0
      local deadline = ''
      if timeout > 0 then
        deadline = tostring(now + timeout)
        redis.call('zadd', KEYS[base + 7], deadline, pool_id .. ':' .. payload)
      end
      return {payload, group, deadline}
    end
  end
end
return false
