-- expire_leases: recover the jobs whose lease expired (the pool running them died or stalled past the time limit
-- plus its margins): each run counts as a failure, and the job goes to the retry set, the dead set, or is dropped.
-- KEYS[1]: leases   KEYS[2]: lock   KEYS[3]: lock_info   KEYS[4]: retry   KEYS[5]: dead   KEYS[6]: today's stats hash
-- KEYS[7..]: one in-progress list per lease
-- ARGV[1]: now (epoch s; '' = Redis TIME)   ARGV[2]: stats lifetime in seconds
-- ARGV[3..]: per lease, six values: the lease member, the job bytes, the holding pool id, where the failed job goes
-- ('retry', 'dead' or '' = dropped), its delay in seconds, and its JSON as filed (fails and err updated)
-- A lease extended since it was read (checkin) is left alone; a job no longer in progress just loses its lease.
-- Every destination is checked before a job moves: with a key of the wrong type, nothing moves and its lease
-- stays, so the job is neither lost nor run twice.
-- Returns {number of jobs recovered, the first key of the wrong type or ''}.
local function is_a(key, wanted)
  local kind = redis.call('type', key)['ok']
  return kind == 'none' or kind == wanted
end

for _, key in ipairs({KEYS[4], KEYS[5]}) do
  if not is_a(key, 'zset') then
    return {0, key}
  end
end
local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('time')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local destinations = {retry = KEYS[4], dead = KEYS[5]}
local moved, broken = 0, ''
for i = 7, #KEYS do
  local at = 3 + (i - 7) * 6
  local member, payload, pool_id = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local destination, delay, filed = destinations[ARGV[at + 3]], tonumber(ARGV[at + 4]) or 0, ARGV[at + 5]
  local deadline = tonumber(redis.call('zscore', KEYS[1], member))
  if deadline and deadline <= now then
    if not is_a(KEYS[i], 'list') then
      broken = broken ~= '' and broken or KEYS[i]
    else
      redis.call('zrem', KEYS[1], member)
      if redis.call('lrem', KEYS[i], 1, payload) == 1 then
        if destination then
          redis.call('zadd', destination, delay > 0 and math.ceil(now + delay) or math.floor(now), filed)
        end
        local left = redis.pcall('decr', KEYS[2])
        if type(left) ~= 'number' or left < 0 then
          redis.call('set', KEYS[2], 0)
        end
        local held = redis.pcall('hincrby', KEYS[3], pool_id, -1)
        if type(held) ~= 'number' or held <= 0 then
          redis.pcall('hdel', KEYS[3], pool_id)
        end
        if redis.pcall('hincrby', KEYS[6], 'failed', 1) == 1 then
          redis.call('expire', KEYS[6], ARGV[2])
        end
        moved = moved + 1
      end
    end
  end
end
return {moved, broken}
