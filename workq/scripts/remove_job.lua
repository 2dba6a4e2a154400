-- remove_job: take one waiting job out of its queue or sorted set by its exact bytes, so it never runs; for a
-- cancel, record in the same call that it was cancelled.
-- KEYS[1]: the queue (a list) or the sorted set (scheduled, retry, dead) holding the job
-- KEYS[2]: the job's result key (`result:<id>`), written only with a tombstone
-- ARGV[1]: the job's exact bytes
-- ARGV[2]: for a queue, 1 to look from the pushing end (head), -1 from the fetching end (tail): LREM stops at the
--          first copy, so starting at the end nearer the job bounds its scan; '' for a sorted set
-- ARGV[3]: the tombstone JSON (`{"state":"cancelled",...}`), or '' for none   ARGV[4]: seconds the tombstone is kept
-- Returns 1 when the job was removed, 0 when it was no longer there (fetched, requeued or removed meanwhile).
local removed
if ARGV[2] == '' then
  removed = redis.call('zrem', KEYS[1], ARGV[1])
else
  removed = redis.call('lrem', KEYS[1], tonumber(ARGV[2]), ARGV[1])
end
if removed == 1 and ARGV[3] ~= '' then
  redis.call('set', KEYS[2], ARGV[3], 'EX', tonumber(ARGV[4]))
end
return removed
