-- enqueue: push jobs onto a queue and, if a pool said it is idle and waiting for this name, wake it.
-- KEYS[1]: the queue   KEYS[2]: the name's waiting flag (ext; set by idle pools, with an expiry)   KEYS[3]: known_jobs
-- ARGV[1]: the namespace's wake-up channel   ARGV[2]: the job name   ARGV[3..]: job JSON, oldest first
-- Only the first enqueue after a pool went idle publishes (it deletes the flag), so a busy queue costs no messages.
-- Returns the queue length.
local length = redis.call('lpush', KEYS[1], unpack(ARGV, 3))
redis.call('sadd', KEYS[3], ARGV[2])
if redis.call('del', KEYS[2]) == 1 then
  redis.call('publish', ARGV[1], ARGV[2])
end
return length
