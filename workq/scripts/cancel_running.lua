-- cancel_running: ask the pool running a job to stop it, only while the job is still in that pool's in-progress
-- list (a run that ended meanwhile is not reported as cancelled).
-- KEYS[1]: the in-progress list   KEYS[2]: the job's cancel request (`cancel:<id>`, polled by pools as a fallback)
-- ARGV[1]: the job's exact bytes   ARGV[2]: seconds the request is kept   ARGV[3]: the cancel channel
-- ARGV[4]: the job id (the message pools listening on the channel receive)
-- Returns 1 when the request was made, 0 when the job is no longer in that list.
if not redis.call('lpos', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('set', KEYS[2], '1', 'EX', tonumber(ARGV[2]))
redis.call('publish', ARGV[3], ARGV[4])
return 1
