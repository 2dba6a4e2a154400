-- extend_lease: push a running job's deadline ahead (checkin), only while the run still holds its lease: a lease
-- that expired was taken away with the job, and a new run of the same bytes holds a lease of its own.
-- KEYS[1]: leases   ARGV[1]: the run's lease member   ARGV[2]: seconds from now   ARGV[3]: now ('' = Redis TIME)
-- Returns 1 when extended, 0 when the lease is no longer this run's.
if not redis.call('zscore', KEYS[1], ARGV[1]) then
  return 0
end
local now = tonumber(ARGV[3])
if not now then
  local time = redis.call('time')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
