-- release_lock: delete a lock only if it still holds our token (it may have expired and been taken by another).
-- KEYS[1]: the lock   ARGV[1]: our token
-- Returns 1 when released, 0 otherwise.
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
