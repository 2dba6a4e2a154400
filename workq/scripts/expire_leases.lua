-- expire_leases: make jobs that outran their time-out available again (beanstalkd's TTR).
-- KEYS[1]: leases   KEYS[2]: queue   KEYS[3]: lock   KEYS[4]: lock_info   KEYS[5..]: one in-progress list per lease
-- ARGV[1]: now (epoch s; '' = Redis TIME); ARGV[2..]: per lease, three values: the lease member, the job bytes,
-- the holding pool id
-- A lease extended since it was read (checkin) is left alone; a job no longer in progress just loses its lease.
-- Every destination is checked before a job moves: with a queue (or an in-progress key) of the wrong type,
-- nothing moves and its lease stays, so the job is neither lost nor run twice.
-- Returns {number of jobs put back on the queue, the first key of the wrong type or ''}.
local function is_a(key, wanted)
  local kind = redis.call('type', key)['ok']
  return kind == 'none' or kind == wanted
end

if not is_a(KEYS[2], 'list') then
  return {0, KEYS[2]}
end
local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('time')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local moved, broken = 0, ''
for i = 5, #KEYS do
  local at = 2 + (i - 5) * 3
  local member, payload, pool_id = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local deadline = tonumber(redis.call('zscore', KEYS[1], member))
  if deadline and deadline <= now then
    if not is_a(KEYS[i], 'list') then
      broken = broken ~= '' and broken or KEYS[i]
    else
      redis.call('zrem', KEYS[1], member)
      if redis.call('lrem', KEYS[i], 1, payload) == 1 then
        redis.call('rpush', KEYS[2], payload)
        local left = redis.pcall('decr', KEYS[3])
        if type(left) ~= 'number' or left < 0 then
          redis.call('set', KEYS[3], 0)
        end
        local held = redis.pcall('hincrby', KEYS[4], pool_id, -1)
        if type(held) ~= 'number' or held <= 0 then
          redis.pcall('hdel', KEYS[4], pool_id)
        end
        moved = moved + 1
      end
    end
  end
end
return {moved, broken}
