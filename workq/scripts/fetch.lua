-- fetch: take up to K jobs for this pool in one call, each slot trying job names in its own (priority-sampled)
-- order; pause and max_concurrency are honoured for every job taken.
-- KEYS: for each job name (group g = 1..G), seven keys: queue, this pool's in-progress list, paused flag, lock (jobs
--       of the name in flight across pools), lock_info (per-pool in-flight hash), max_concurrency (cap; 0 or
--       missing = none), leases (ext: sorted set of running jobs' deadlines, for job time-outs)
-- ARGV[1]: pool id   ARGV[2]: now (epoch s; '' = Redis TIME)   ARGV[3]: K, the most jobs to take
-- ARGV[3 + g]: the lease of group g's runs in seconds (0 = no time-out, no lease)
-- then for each slot, G + 1 values: its run token (unique per fetch), then the G group numbers in the order to try
-- Returns {broken, then per job taken: its bytes, its group, '1' when a lease was taken else ''}, in the order
-- taken; `broken` is '' or the first queue or in-progress key of the wrong type met (its name was skipped).
-- A slot that finds nothing ends the call: the slots after it would find the same (caps only fill up).
-- A lease is named `<pool id>:<run token>:<job bytes>`, so two runs of identical bytes never share one; ack.lua
-- and extend_lease.lua act only while the run's own lease exists.
-- The hot path checks no key's type, and reads each name's flag, cap and count once per call: garbage shows up as
-- an error reply of the command that meets it, and only then is it looked at. Garbage never strands a job:
-- RPOPLPUSH checks both lists' types before it pops (a name whose queue or in-progress key has the wrong type is
-- skipped), the first one is the script's first write (a refused write, e.g. OOM, moves nothing and is returned as
-- the error), and every write after it repairs a counter that is not a number rather than fail.
local pool_id, slots = ARGV[1], tonumber(ARGV[3])
local groups = #KEYS / 7
local broken = nil
local taken = {''}
local counted = {}   -- group -> jobs taken in this call
local skipped = {}   -- group -> true once paused, at its cap, empty or broken
local room = {}      -- group -> jobs its cap still allows (math.huge without a cap)

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

-- How many more jobs of the group may start (pause and max_concurrency), read once per call.
local function room_of(group)
  local base = (group - 1) * 7
  if redis.call('exists', KEYS[base + 3]) == 1 then
    return 0
  end
  local cap = number_in(redis.pcall('get', KEYS[base + 6])) or 0
  if cap <= 0 then
    return math.huge
  end
  return cap - (number_in(redis.pcall('get', KEYS[base + 4])) or 0)
end

-- Count `n` more jobs of the group in flight, here and across pools, resetting a counter that holds garbage.
-- The lock counter goes up by DECRBY -n: the commands an ACL user needs stay the ones the README's recipe (and
-- the deployments made from it) already allows; INCRBY would be refused there and no job fetched.
local function count_in_flight(group, n)
  local base = (group - 1) * 7
  local lock, lock_info = KEYS[base + 4], KEYS[base + 5]
  if type(redis.pcall('decrby', lock, -n)) ~= 'number' then
    redis.call('del', lock)
    redis.call('decrby', lock, -n)
  end
  if type(redis.pcall('hincrby', lock_info, pool_id, n)) ~= 'number' then
    if is_a(lock_info, 'hash') then
      redis.call('hdel', lock_info, pool_id)
    else
      redis.call('del', lock_info)
    end
    redis.call('hincrby', lock_info, pool_id, n)
  end
end

-- One slot (its values after ARGV[at]): the first job its order allows; false when none.
local function take(at)
  for i = 1, groups do
    local group = tonumber(ARGV[at + 1 + i])
    if not skipped[group] then
      if room[group] == nil then
        room[group] = room_of(group)
      end
      if room[group] <= 0 then
        skipped[group] = true
      else
        local base = (group - 1) * 7
        local payload = redis.pcall('rpoplpush', KEYS[base + 1], KEYS[base + 2])
        if type(payload) == 'table' then
          if not string.find(tostring(payload['err']), 'WRONGTYPE', 1, true) then
            return payload  -- not garbage (a refused write): nothing moved
          end
          skipped[group] = true
          broken = broken or (is_a(KEYS[base + 1], 'list') and KEYS[base + 2] or KEYS[base + 1])
        elseif payload then
          room[group] = room[group] - 1
          counted[group] = (counted[group] or 0) + 1
          return {payload, group}
        else
          skipped[group] = true
        end
      end
    end
  end
  return false
end

local leases = {}  -- group -> {score, member, ...} of the leases to take, and where each run's flag sits in `taken`
for slot = 1, slots do
  local at = 3 + groups + (slot - 1) * (groups + 1)
  local job = take(at)
  if not job then
    break
  end
  if job['err'] then
    if #taken == 1 then
      return job  -- the caller sees the error; nothing moved
    end
    break  -- keep what was taken: those jobs are in progress and must be counted
  end
  local payload, group = job[1], job[2]
  taken[#taken + 1] = payload
  taken[#taken + 1] = group
  taken[#taken + 1] = ''
  local lease = tonumber(ARGV[3 + group]) or 0
  if lease > 0 then
    leases[group] = leases[group] or {}
    local held = leases[group]
    held[#held + 1] = #taken
    held[#held + 1] = pool_id .. ':' .. ARGV[at + 1] .. ':' .. payload
  end
end
for group, n in pairs(counted) do
  count_in_flight(group, n)
end
if next(leases) then
  local deadline = nil
  for group, held in pairs(leases) do
    deadline = deadline or now()
    local members = {}
    for i = 1, #held, 2 do
      members[#members + 1] = deadline + tonumber(ARGV[3 + group])
      members[#members + 1] = held[i + 1]
    end
    -- A leases key of the wrong type: those jobs run without a time-out.
    if type(redis.pcall('zadd', KEYS[(group - 1) * 7 + 7], unpack(members))) ~= 'table' then
      for i = 1, #held, 2 do
        taken[held[i]] = '1'
      end
    end
  end
end
if broken then
  taken[1] = broken
end
return taken
