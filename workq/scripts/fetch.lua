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
-- The hot path checks no key's type: garbage shows up as an error reply of the command that meets it, and only
-- then is it looked at. Garbage never strands a job: RPOPLPUSH checks both lists' types before it pops (a name
-- whose queue or in-progress key has the wrong type is skipped), it is the script's first write (a refused write,
-- e.g. OOM, moves nothing), and every write after it repairs a counter that is not a number rather than fail.
local pool_id, token = ARGV[1], ARGV[3]
local broken = nil

local function now()
  if ARGV[2] ~= '' then return tonumber(ARGV[2]) end
  local time = redis.call('time')
  return tonumber(time[1]) + tonumber(time[2]) / 1000000
end

-- The number in a reply of GET, 0 when missing, nil for garbage (not a number, or a WRONGTYPE error).
local function number_in(reply)
  if type(reply) == 'table' then return nil end
  if not reply then return 0 end
  return tonumber(reply)
end

local function is_a(key, wanted)
  local kind = redis.call('type', key)['ok']
  return kind == 'none' or kind == wanted
end

-- Count one more job of the name in flight, here and across pools, resetting a counter that holds garbage.
local function count_in_flight(lock, lock_info)
  if type(redis.pcall('incr', lock)) ~= 'number' then
    redis.call('del', lock)
    redis.call('incr', lock)
  end
  if type(redis.pcall('hincrby', lock_info, pool_id, 1)) ~= 'number' then
    if is_a(lock_info, 'hash') then
      redis.call('hdel', lock_info, pool_id)
    else
      redis.call('del', lock_info)
    end
    redis.call('hincrby', lock_info, pool_id, 1)
  end
end

for group = 1, #KEYS / 7 do
  local base = (group - 1) * 7
  local queue, in_progress, lock = KEYS[base + 1], KEYS[base + 2], KEYS[base + 4]
  if redis.call('exists', KEYS[base + 3]) == 0 then
    local cap = number_in(redis.pcall('get', KEYS[base + 6])) or 0
    if cap <= 0 or (number_in(redis.pcall('get', lock)) or 0) < cap then
      local payload = redis.pcall('rpoplpush', queue, in_progress)
      if type(payload) == 'table' then
        if not string.find(payload['err'] or '', 'WRONGTYPE', 1, true) then
          return payload  -- not garbage (a refused write): the caller sees the error, nothing moved
        end
        broken = broken or (is_a(queue, 'list') and in_progress or queue)
      elseif payload then
        count_in_flight(lock, KEYS[base + 5])
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
end
if broken then
  return {'', 0, broken}
end
return false
