-- enqueue_unique: take the unique lock and enqueue in one step, so concurrent enqueuers add exactly one job.
-- KEYS[1]: destination: the job's queue, or the scheduled set when ARGV[3] is a score
-- KEYS[2]: the unique lock   KEYS[3]: known_jobs   KEYS[4]: the name's waiting flag (see enqueue.lua)
-- ARGV[1]: job JSON   ARGV[2]: lock lifetime in seconds   ARGV[3]: due time (epoch s) or '' to enqueue now
-- ARGV[4]: lock value: '1', or the job JSON for unique-by-key   ARGV[5]: job name   ARGV[6]: wake-up channel
-- Returns 1 when the job was enqueued; 0 when an identical job is pending (by-key: its stored JSON, which is what
-- the worker runs, is replaced by this job's, so the pending job runs with the newest args).
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
if ARGV[4] ~= '1' then
  redis.call('set', KEYS[2], ARGV[4], 'XX', 'KEEPTTL')
end
return 0
