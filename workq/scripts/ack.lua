-- ack: finish a fetched job. Removes the exact popped bytes from the in-progress list, gives back its
-- concurrency counts (never below zero), drops its lease, counts the outcome and, when a destination is given,
-- files the job there.
-- KEYS[1]: in-progress list   KEYS[2]: lock   KEYS[3]: lock_info   KEYS[4]: leases   KEYS[5]: today's stats hash
-- KEYS[6] (optional): destination: a sorted set (retry, scheduled, dead) or, with no delay, the queue
-- KEYS[7] (optional): a unique lock to take again before filing (a unique job going back to its queue)
-- KEYS[last] (with ARGV[10]): the job's result key; with 'cancel', the job's cancel request (deleted) before it
-- ARGV[1]: pool id   ARGV[2]: the bytes fetch returned
-- ARGV[3]: seconds from now until the filed job is due: its score is ceil(now + delay), never early (0: the
--          whole second now, a dead job's time of death; '' = push onto the fetching end of the queue)
-- ARGV[4]: job JSON to file
-- ARGV[5]: stats field to count ('processed', 'failed' or '' for neither)   ARGV[6]: stats lifetime in seconds
-- ARGV[7]: the lease this run holds ('' for a job without a time-out): when it is gone, the job timed out and
--          was made available again, so this ack changes nothing
-- ARGV[8]: now (epoch s; '' = Redis TIME)   ARGV[9]: value of the unique lock to take again ('' = none)
-- ARGV[10] (optional): 'result' (a kept result) or 'cancel' (a cancelled run: its request is deleted); either way
--          ARGV[11] is the result record's JSON, stored at the result key for ARGV[12] milliseconds
-- Returns 1; 0 when the job was no longer in progress here (a reaper or time-out took it back: it is already
-- available again, so nothing changes); 2 when the unique lock was taken meanwhile by an identical pending job,
-- which then stands in for this one. Everything that could fail is checked before the job leaves in-progress,
-- and the counters (bookkeeping, not jobs) are updated with pcall, so no garbage can lose a job.
local extra = ARGV[10] or ''
local optional = #KEYS - (extra == 'cancel' and 2 or (extra == 'result' and 1 or 0))
local destination = optional >= 6 and KEYS[6] or nil
local relock = optional >= 7 and KEYS[7] or nil
if destination then
  local wanted = ARGV[3] == '' and 'list' or 'zset'
  local kind = redis.call('type', destination)['ok']
  if kind ~= 'none' and kind ~= wanted then
    return redis.error_reply('ack: ' .. destination .. ' is a ' .. kind .. ', not a ' .. wanted .. '; job left in progress')
  end
  if ARGV[3] ~= '' and not tonumber(ARGV[3]) then
    return redis.error_reply('ack: delay ' .. ARGV[3] .. ' is not a number')
  end
end
if ARGV[7] ~= '' then
  local held = redis.pcall('zscore', KEYS[4], ARGV[7])
  if type(held) ~= 'table' and not held then
    return 0
  end
end
if redis.call('lrem', KEYS[1], 1, ARGV[2]) == 0 then
  return 0
end
local left = redis.pcall('decr', KEYS[2])
if type(left) ~= 'number' or left < 0 then
  redis.call('set', KEYS[2], 0)
end
local mine = redis.pcall('hincrby', KEYS[3], ARGV[1], -1)
if type(mine) ~= 'number' or mine <= 0 then
  redis.pcall('hdel', KEYS[3], ARGV[1])
end
if ARGV[7] ~= '' then
  redis.pcall('zrem', KEYS[4], ARGV[7])
end
if ARGV[5] ~= '' and redis.pcall('hincrby', KEYS[5], ARGV[5], 1) == 1 then
  redis.call('expire', KEYS[5], ARGV[6])
end
if relock and not redis.pcall('set', relock, ARGV[9], 'NX', 'EX', 86400)
    and redis.call('type', relock)['ok'] == 'string' then
  return 2
end
if extra ~= '' then
  redis.pcall('set', KEYS[#KEYS], ARGV[11], 'PX', ARGV[12])
end
if extra == 'cancel' then
  redis.pcall('del', KEYS[#KEYS - 1])
end
if destination then
  if ARGV[3] == '' then
    redis.call('rpush', destination, ARGV[4])
  else
    local now = tonumber(ARGV[8])
    if not now then
      local time = redis.call('time')
      now = tonumber(time[1]) + tonumber(time[2]) / 1000000
    end
    local delay = tonumber(ARGV[3])
    redis.call('zadd', destination, delay > 0 and math.ceil(now + delay) or math.floor(now), ARGV[4])
  end
end
return 1
