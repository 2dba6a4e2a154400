-- ack: finish fetched jobs, N runs in one call. For each run: remove the exact popped bytes from its in-progress
-- list, file the job in its destination (if any), give back its concurrency counts (never below zero), drop its
-- lease and count its outcome; counters and leases are updated once per key for the whole call.
-- KEYS, for each run in turn: its in-progress list, lock, lock_info, leases, today's stats hash; then, optionally:
--   the destination: a sorted set (retry, scheduled, dead) or, with no delay, the queue
--   a unique lock to take again before filing (a unique job going back to its queue; only after a destination)
--   with extra kind 'result', the job's result key; with 'cancel', its cancel request (deleted) then its result key
-- ARGV[1]: pool id   ARGV[2]: now (epoch s; '' = Redis TIME)   ARGV[3]: stats lifetime in seconds
-- ARGV, for each run, ten values:
--   its number of KEYS; the bytes fetch returned;
--   seconds from now until the filed job is due: its score is ceil(now + delay), never early (0: the whole second
--     now, a dead job's time of death; '' = push onto the fetching end of the queue);
--   the job JSON to file; the stats field to count ('processed', 'failed' or '' for neither);
--   the lease the run holds ('' for a job without a time-out): when it is gone, the job timed out and was made
--     available again, so this ack changes nothing;
--   the value of the unique lock to take again ('' = none);
--   extra kind ('' = none, 'result': a kept result, 'cancel': a cancelled run, its request deleted), the result
--     record's JSON and its lifetime in milliseconds
-- Returns one reply per run, in order: 1; 0 when the job was no longer in progress here (a reaper or time-out took
-- it back: it is already available again, so nothing changes); 2 when the unique lock was taken meanwhile by an
-- identical pending job, which then stands in for this one; or a message (a string) saying why the run was left
-- in progress. A write Redis refuses (READONLY, MISCONF, OOM) fails the whole call, having changed nothing.
-- No key's type is checked on the way: the job leaves in progress first, and a destination that refuses it
-- (garbage of the wrong type) puts it straight back, so no garbage can lose a job; a run whose in-progress key is
-- garbage is left alone. The counters (bookkeeping, not jobs) are updated with pcall.
local pool_id, lifetime = ARGV[1], ARGV[3]
local replies = {}
local released = {}   -- lock key -> runs finished; lock_info key -> runs finished (this pool's field)
local released_info = {}
local leases = {}     -- leases key -> members to remove
local stats = {}      -- stats key -> field -> count
local clock = nil

local function now()
  if clock then return clock end
  clock = tonumber(ARGV[2])
  if not clock then
    local time = redis.call('time')
    clock = tonumber(time[1]) + tonumber(time[2]) / 1000000
  end
  return clock
end

local function add(counts, key, n)
  counts[key] = (counts[key] or 0) + n
end

-- File one run whose keys start at KEYS[k] and values at ARGV[a].
local function finish(k, a)
  local count, payload, delay, filed = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local counted, lease, relock_value, extra = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  local in_progress, lock, lock_info, leases_key, stats_key = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local optional = count - (extra == 'cancel' and 2 or (extra == 'result' and 1 or 0))
  local destination = optional >= 6 and KEYS[k + 5] or nil
  local relock = optional >= 7 and KEYS[k + 6] or nil
  if destination and delay ~= '' and not tonumber(delay) then
    return 'ack: delay ' .. delay .. ' is not a number; job left in progress'
  end
  if lease ~= '' then
    local held = redis.pcall('zscore', leases_key, lease)
    if type(held) ~= 'table' and not held then
      return 0
    end
  end
  local removed = redis.pcall('lrem', in_progress, 1, payload)
  if type(removed) == 'table' then
    local err = tostring(removed['err'])
    if not string.find(err, 'WRONGTYPE', 1, true) then
      return {refused = err}  -- Redis refuses writes (READONLY, MISCONF, OOM): nothing of this call was written
    end
    return 'ack: ' .. in_progress .. ' is not a list; job left there'
  end
  if removed == 0 then
    return 0
  end
  local stand_in, locked = false, false
  if relock then
    local set = redis.pcall('set', relock, relock_value, 'NX', 'EX', 86400)
    locked = type(set) == 'table' and set['ok'] ~= nil
    stand_in = not set and redis.call('type', relock)['ok'] == 'string'
  end
  if destination and not stand_in then
    local reply
    if delay == '' then
      reply = redis.pcall('rpush', destination, filed)
    else
      local seconds = tonumber(delay)
      reply = redis.pcall('zadd', destination, seconds > 0 and math.ceil(now() + seconds) or math.floor(now()), filed)
    end
    if type(reply) == 'table' then
      -- The destination refused the job (a key of the wrong type): back in progress, as if never acknowledged.
      redis.call('lpush', in_progress, payload)
      if locked then
        redis.call('del', relock)
      end
      return 'ack: ' .. destination .. ' refused the job (' .. tostring(reply['err']) .. '); job left in progress'
    end
  end
  add(released, lock, 1)
  add(released_info, lock_info, 1)
  if lease ~= '' then
    leases[leases_key] = leases[leases_key] or {}
    table.insert(leases[leases_key], lease)
  end
  if counted ~= '' then
    stats[stats_key] = stats[stats_key] or {}
    add(stats[stats_key], counted, 1)
  end
  if stand_in then
    return 2
  end
  if extra ~= '' then
    redis.pcall('set', KEYS[k + count - 1], ARGV[a + 8], 'PX', ARGV[a + 9])
    if extra == 'cancel' then
      redis.pcall('del', KEYS[k + count - 2])
    end
  end
  return 1
end

local k, a = 1, 4
while a <= #ARGV do
  local reply = finish(k, a)
  if type(reply) == 'table' then
    -- A write refused is refused from the first write of a call on, and only runs whose lease was gone (which
    -- write nothing) can come before: the whole call is refused, to be sent again.
    return redis.error_reply(reply['refused'])
  end
  replies[#replies + 1] = reply
  k = k + tonumber(ARGV[a])
  a = a + 10
end

for lock, n in pairs(released) do
  local left = redis.pcall('decrby', lock, n)
  if type(left) ~= 'number' or left < 0 then
    redis.call('set', lock, 0)
  end
end
for lock_info, n in pairs(released_info) do
  local mine = redis.pcall('hincrby', lock_info, pool_id, -n)
  if type(mine) ~= 'number' or mine <= 0 then
    redis.pcall('hdel', lock_info, pool_id)
  end
end
for leases_key, members in pairs(leases) do
  redis.pcall('zrem', leases_key, unpack(members))
end
for stats_key, fields in pairs(stats) do
  for field, n in pairs(fields) do
    if redis.pcall('hincrby', stats_key, field, n) == n then
      redis.call('expire', stats_key, lifetime)
    end
  end
end
return replies
