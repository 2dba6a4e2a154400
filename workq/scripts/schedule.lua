-- schedule: file a job in the scheduled set, due `delay` seconds from now on Redis's clock, in one round trip
-- (reading TIME from the enqueuer would take a second one).
-- KEYS[1]: the scheduled set   KEYS[2]: known_jobs
-- ARGV[1]: job JSON   ARGV[2]: job name   ARGV[3]: delay in seconds (negative: due now)
-- ARGV[4]: now (epoch s; '' = Redis TIME)
-- Returns the due time: ceil(now + delay), a whole second never before the delay has passed.
local now = tonumber(ARGV[4])
if not now then
  local time = redis.call('time')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local run_at = math.ceil(now + math.max(tonumber(ARGV[3]), 0))
redis.call('sadd', KEYS[2], ARGV[2])
redis.call('zadd', KEYS[1], run_at, ARGV[1])
return run_at
