-- fetch: take the next job for this pool, trying job names in the given (priority-sampled) order.
-- KEYS: for each job name, seven keys: queue, this pool's in-progress list, paused flag, lock (jobs of the name
--       in flight across pools), lock_info (per-pool in-flight hash), max_concurrency (cap; 0 or missing = none),
--       leases (ext: sorted set of running jobs' deadlines, for job time-outs)
-- ARGV[1]: pool id   ARGV[2]: now (epoch s; '' = Redis TIME)   ARGV[3]: this run's token (unique per fetch)
-- ARGV[3 + group]: the job name's timeout in seconds (0 = none)
-- Returns {job bytes, 1-based index of the job name's group, '1' when a lease was taken else ''}; when nothing
-- can be fetched, false, or {'', 0, key} naming a queue or in-progress key of the wrong type that was skipped.
-- A lease is named `<pool id>:<run token>:<job bytes>`, so two runs of identical bytes never share one; ack.lua
-- and extend_lease.lua act only while the run's own lease exists.
-- Garbage never strands a job: a counter that is not a number (or not a string/hash) is reset before any job
-- moves, a name whose queue or in-progress key has the wrong type is skipped, and the job moves last.
local pool_id, token = ARGV[1], ARGV[3]
local broken = nil

local function now()
  if ARGV[2] ~= '' then return tonumber(ARGV[2]) end
  local time = redis.call('time')
  return tonumber(time[1]) + tonumber(time[2]) / 1000000
end

-- The number in a reply of GET/HGET, 0 when missing, nil for garbage (not a number, or a WRONGTYPE error).
local function number_in(reply)
  if type(reply) == 'table' then return nil end
  if not reply then return 0 end
  return tonumber(reply)
end

local function is_a(key, wanted)
  local kind = redis.call('type', key)['ok']
  return kind == 'none' or kind == wanted
end

for group = 1, #KEYS / 7 do
  local base = (group - 1) * 7
  local queue, in_progress, lock, lock_info = KEYS[base + 1], KEYS[base + 2], KEYS[base + 4], KEYS[base + 5]
  local length = redis.pcall('llen', queue)
  if type(length) ~= 'number' then
    broken = broken or queue
  elseif length > 0 and not is_a(in_progress, 'list') then
    broken = broken or in_progress
  elseif length > 0 and redis.call('exists', KEYS[base + 3]) == 0 then
    local cap = number_in(redis.pcall('get', KEYS[base + 6])) or 0
    local running = number_in(redis.pcall('get', lock))
    if running == nil then
      redis.call('del', lock)
      running = 0
    end
    if cap <= 0 or running < cap then
      if not is_a(lock_info, 'hash') then
        redis.call('del', lock_info)
      elseif number_in(redis.call('hget', lock_info, pool_id)) == nil then
        redis.call('hdel', lock_info, pool_id)
      end
      redis.call('incr', lock)
      redis.call('hincrby', lock_info, pool_id, 1)
      local payload = redis.call('rpoplpush', queue, in_progress)
      local timeout = tonumber(ARGV[3 + group]) or 0
      local leased = ''
      if timeout > 0 then
        leased = '1'
        if type(redis.pcall('zadd', KEYS[base + 7], now() + timeout, pool_id .. ':' .. token .. ':' .. payload)) == 'table' then
          leased = ''  -- a leases key of the wrong type: the job runs without a time-out
        end
      end
      return {payload, group, leased}
    end
  end
end
if broken then
  return {'', 0, broken}
end
return false
