-- ack: finish a fetched job. Removes the exact popped bytes from the in-progress list, gives back its
-- concurrency counts (never below zero) and, when a destination is given, files the job there.
-- KEYS[1]: in-progress list   KEYS[2]: lock   KEYS[3]: lock_info
-- KEYS[4] (optional): destination: a sorted set (retry, scheduled, dead) or, with no score, the queue
-- ARGV[1]: pool id   ARGV[2]: the bytes fetch returned
-- ARGV[3]: destination score ('' = push onto the fetching end of the queue)   ARGV[4]: job JSON to file
-- Returns 1, or 0 when the job was no longer in progress here (a reaper or time-out took it back): then
-- nothing else changes, because the job is already available again.
if redis.call('lrem', KEYS[1], 1, ARGV[2]) == 0 then
  return 0
end
if redis.call('decr', KEYS[2]) < 0 then
  redis.call('set', KEYS[2], 0)
end
if redis.call('hincrby', KEYS[3], ARGV[1], -1) <= 0 then
  redis.call('hdel', KEYS[3], ARGV[1])
end
if KEYS[4] then
  if ARGV[3] == '' then
    redis.call('rpush', KEYS[4], ARGV[4])
  else
    redis.call('zadd', KEYS[4], ARGV[3], ARGV[4])
  end
end
return 1
