-- enqueue_unique: take the unique lock and enqueue in one step, so concurrent enqueuers add exactly one job.
-- KEYS[1]: destination: the job's queue, or the scheduled set when ARGV[3] is a score
-- KEYS[2]: the unique lock   KEYS[3]: known_jobs   KEYS[4]: the name's waiting flag (see enqueue.lua)
-- ARGV[1]: job JSON   ARGV[2]: lock lifetime in seconds   ARGV[3]: due time (epoch s) or '' to enqueue now
-- ARGV[4]: lock value (see workq/unique.py): the job's JSON   ARGV[5]: job name   ARGV[6]: wake-up channel
-- ARGV[7] (unique-by-key only): the job's JSON without its closing brace
-- Returns 1 when the job was enqueued; 0 when an identical job is pending. By key, the pending job's lock then
-- holds this job's args (what the worker runs), still owned by the pending job.
if redis.call('set', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[2]) then
  if ARGV[3] == '' then
    redis.call('lpush', KEYS[1], ARGV[1])
    if redis.call('del', KEYS[4]) == 1 then
      redis.call('publish', ARGV[6], ARGV[5])
    end
  else
    redis.call('zadd', KEYS[1], ARGV[3], ARGV[1])
  end
  redis.call('sadd', KEYS[3], ARGV[5])
  return 1
end
if ARGV[7] then
  local ok, pending = pcall(cjson.decode, redis.call('get', KEYS[2]))
  local owner = ok and type(pending) == 'table' and (pending['unique_owner'] or pending['id'])
  local value = ARGV[7] .. '}'  -- no owner known: as gocraft/work's by-key lock, whoever finds it owns it
  if type(owner) == 'string' then
    value = ARGV[7] .. ',"unique_owner":' .. cjson.encode(owner) .. '}'
  end
  redis.call('set', KEYS[2], value, 'XX', 'KEEPTTL')
end
return 0
