-- enqueue_unique: take the unique lock and enqueue in one step, so concurrent enqueuers add exactly one job.
-- KEYS[1]: destination: the job's queue, or the scheduled set when ARGV[3] is a delay
-- KEYS[2]: the unique lock   KEYS[3]: known_jobs   KEYS[4]: the name's waiting flag (see enqueue.lua)
-- ARGV[1]: job JSON   ARGV[2]: lock lifetime in seconds
-- ARGV[3]: seconds from now until the job is due ('' to enqueue now): due at ceil(now + delay), negative = now
-- ARGV[4]: lock value (see workq/unique.py): the job's JSON   ARGV[5]: job name   ARGV[6]: wake-up channel
-- ARGV[7]: now (epoch s; '' = Redis TIME)   ARGV[8] (unique-by-key only): the job's JSON without its closing brace
-- Returns 1 when the job was queued, its due time when it was scheduled; 0 when an identical job is pending. By
-- key, the pending job's lock then holds this job's args (what the worker runs), still owned by the pending job.
if redis.call('set', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[2]) then
  if ARGV[3] == '' then
    redis.call('lpush', KEYS[1], ARGV[1])
    if redis.call('del', KEYS[4]) == 1 then
      redis.call('publish', ARGV[6], ARGV[5])
    end
    redis.call('sadd', KEYS[3], ARGV[5])
    return 1
  end
  local now = tonumber(ARGV[7])
  if not now then
    local time = redis.call('time')
    now = tonumber(time[1]) + tonumber(time[2]) / 1000000
  end
  local run_at = math.ceil(now + math.max(tonumber(ARGV[3]), 0))
  redis.call('zadd', KEYS[1], run_at, ARGV[1])
  redis.call('sadd', KEYS[3], ARGV[5])
  return run_at
end
if ARGV[8] then
  local ok, pending = pcall(cjson.decode, redis.call('get', KEYS[2]))
  local owner = ok and type(pending) == 'table' and (pending['unique_owner'] or pending['id'])
  local value = ARGV[8] .. '}'  -- no owner known: as gocraft/work's by-key lock, whoever finds it owns it
  if type(owner) == 'string' then
    value = ARGV[8] .. ',"unique_owner":' .. cjson.encode(owner) .. '}'
  end
  redis.call('set', KEYS[2], value, 'XX', 'KEEPTTL')
end
return 0
