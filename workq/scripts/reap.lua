-- reap: give a dead pool's jobs of one name back to their queue and take back the counts it held.
-- KEYS[1]: queue   KEYS[2]: the dead pool's in-progress list   KEYS[3]: lock   KEYS[4]: lock_info   KEYS[5]: leases
-- ARGV[1]: the dead pool's id
-- ARGV[2]: '1' to requeue its jobs; '0' to drop them as leftovers (a gocraft/work pool that stopped cleanly leaves
--          by-key placeholders behind, which its counters no longer count: their job already ran)
-- Jobs go onto the fetching end of the queue, oldest fetched ending nearest, so they run next in their old order.
-- Both lists are checked before anything moves: with either of the wrong type nothing changes (no job lost).
-- Returns {number of jobs moved (or dropped), the key of the wrong type or ''}.
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  local kind = redis.call('type', key)['ok']
  if kind ~= 'none' and kind ~= 'list' then
    return {0, key}
  end
end
local moved = 0
while true do
  local payload = redis.call('lpop', KEYS[2])
  if not payload then break end
  if ARGV[2] == '1' then
    redis.call('rpush', KEYS[1], payload)
  end
  moved = moved + 1
end
if redis.call('type', KEYS[5])['ok'] == 'zset' then
  -- this pool's leases, named `<pool id>:<run token>:<job bytes>`
  local pattern = string.gsub(ARGV[1], '[%*%?%[%]\\]', '\\%0') .. ':*'
  local cursor = '0'
  repeat
    local page = redis.call('zscan', KEYS[5], cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      redis.call('zrem', KEYS[5], page[2][i])
    end
  until cursor == '0'
end
local held = tonumber(redis.pcall('hget', KEYS[4], ARGV[1]) or '0') or 0
if held > 0 then
  local left = redis.pcall('decrby', KEYS[3], held)
  if type(left) ~= 'number' or left < 0 then
    redis.call('set', KEYS[3], 0)
  end
end
redis.pcall('hdel', KEYS[4], ARGV[1])
return {moved, ''}
