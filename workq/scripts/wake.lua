-- wake: an enqueue that made a queue non-empty wakes the pools waiting for that job name, if any.
-- KEYS[1]: the name's waiting flag (ext; set with an expiry by idle pools just before their last look)
-- ARGV[1]: the namespace's wake-up channel   ARGV[2]: the job name
-- Deleting the flag makes this publish once per idle spell, however many enqueues follow.
-- Returns 1 when a wake-up was published.
if redis.call('del', KEYS[1]) == 1 then
  redis.call('publish', ARGV[1], ARGV[2])
  return 1
end
return 0
