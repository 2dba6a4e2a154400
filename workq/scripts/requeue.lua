-- requeue: move due members of a sorted set (retry or scheduled) to their destinations, each only if it is
-- still in the set, so that concurrent requeuers on several pools move every job exactly once.
-- KEYS[1]: the sorted set   KEYS[2..n]: one destination per member: its queue, or the dead set
-- ARGV[1]: now (epoch seconds, the dead-set score)
-- ARGV[2..]: per member, three values: the member as stored, the JSON to file, 'queue' or 'dead'
-- Returns the number of members moved.
local moved = 0
for i = 2, #KEYS do
  local at = 2 + (i - 2) * 3
  if redis.call('zrem', KEYS[1], ARGV[at]) == 1 then
    if ARGV[at + 2] == 'queue' then
      redis.call('lpush', KEYS[i], ARGV[at + 1])
    else
      redis.call('zadd', KEYS[i], ARGV[1], ARGV[at + 1])
    end
    moved = moved + 1
  end
end
return moved
