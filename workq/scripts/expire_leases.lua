-- expire_leases: make jobs that outran their time-out available again (beanstalkd's TTR).
-- KEYS[1]: leases   KEYS[2]: queue   KEYS[3]: lock   KEYS[4]: lock_info   KEYS[5..]: one in-progress list per lease
-- ARGV[1]: now (epoch s); ARGV[2..]: per lease, three values: the lease member, the job bytes, the holding pool id
-- A lease extended since it was read (checkin) is left alone; a job no longer in progress just loses its lease.
-- Returns the number of jobs put back on the queue.
local now, moved = tonumber(ARGV[1]), 0
for i = 5, #KEYS do
  local at = 2 + (i - 5) * 3
  local member, payload, pool_id = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local deadline = tonumber(redis.call('zscore', KEYS[1], member))
  if deadline and deadline <= now then
    redis.call('zrem', KEYS[1], member)
    if redis.call('lrem', KEYS[i], 1, payload) == 1 then
      redis.call('rpush', KEYS[2], payload)
      if redis.call('decr', KEYS[3]) < 0 then
        redis.call('set', KEYS[3], 0)
      end
      if redis.call('hincrby', KEYS[4], pool_id, -1) <= 0 then
        redis.call('hdel', KEYS[4], pool_id)
      end
      moved = moved + 1
    end
  end
end
return moved
