-- reap: give a dead pool's jobs of one name back to their queue and take back the counts it held.
-- KEYS[1]: queue   KEYS[2]: the dead pool's in-progress list   KEYS[3]: lock   KEYS[4]: lock_info   KEYS[5]: leases
-- ARGV[1]: the dead pool's id
-- Jobs go onto the fetching end of the queue, oldest fetched ending nearest, so they run next in their old order.
-- Returns the number of jobs moved.
local moved = 0
while true do
  local payload = redis.call('lpop', KEYS[2])
  if not payload then break end
  redis.call('rpush', KEYS[1], payload)
  redis.call('zrem', KEYS[5], ARGV[1] .. ':' .. payload)
  moved = moved + 1
end
local held = tonumber(redis.call('hget', KEYS[4], ARGV[1]) or '0') or 0
if held > 0 and redis.call('decrby', KEYS[3], held) < 0 then
  redis.call('set', KEYS[3], 0)
end
redis.call('hdel', KEYS[4], ARGV[1])
return moved
