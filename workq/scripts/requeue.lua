-- requeue: move due members of a sorted set (retry or scheduled) to their destinations, each only if it is
-- still in the set, so that concurrent requeuers on several pools move every job exactly once.
-- KEYS[1]: the sorted set   KEYS[2..n]: one destination per member: its queue, or the dead set
-- ARGV[1]: now (epoch s, the dead-set score; '' = Redis TIME)
-- ARGV[2..]: per member, three values: the member as stored, the JSON to file, 'queue' or 'dead'
-- A destination of the wrong type is found before its member leaves the set: that member stays where it is.
-- Returns {number of members moved, the first destination of the wrong type or ''}.
local now = tonumber(ARGV[1])
if not now then
  now = tonumber(redis.call('time')[1])
end
local moved, broken = 0, ''
for i = 2, #KEYS do
  local at = 2 + (i - 2) * 3
  local to_queue = ARGV[at + 2] == 'queue'
  local kind = redis.call('type', KEYS[i])['ok']
  if kind ~= 'none' and kind ~= (to_queue and 'list' or 'zset') then
    broken = broken ~= '' and broken or KEYS[i]
  elseif redis.call('zrem', KEYS[1], ARGV[at]) == 1 then
    if to_queue then
      redis.call('lpush', KEYS[i], ARGV[at + 1])
    else
      redis.call('zadd', KEYS[i], math.floor(now), ARGV[at + 1])
    end
    moved = moved + 1
  end
end
return {moved, broken}
