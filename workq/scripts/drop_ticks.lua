-- drop_ticks: remove the future ticks of cron schedules that no live pool registers any more.
-- KEYS[1]: scheduled set   KEYS[2]: high-water hash (schedule → last fire time added)   KEYS[3]: worker_pools set
-- ARGV[1]: n, the number of pool ids the caller read from worker_pools; ARGV[2..n+1]: those pool ids
-- ARGV[n+2..]: per schedule: schedule field, its high-water mark as read, the mark to set, m, then m tick members
-- Nothing happens if worker_pools holds a pool the caller did not see (a pool that may register a schedule started
-- meanwhile). A schedule whose mark changed since it was read is left alone. Lowering the mark to now lets a pool
-- that registers the schedule again add the ticks that were dropped, and no fire time at or before now.
-- Returns the number of ticks removed, or -1 when worker_pools changed.
local seen = {}
local count = tonumber(ARGV[1])
for at = 2, count + 1 do
  seen[ARGV[at]] = true
end
for _, pool_id in ipairs(redis.call('smembers', KEYS[3])) do
  if not seen[pool_id] then
    return -1
  end
end
local removed = 0
local at = count + 2
while at <= #ARGV do
  local field, read_mark, new_mark, ticks = ARGV[at], ARGV[at + 1], ARGV[at + 2], tonumber(ARGV[at + 3])
  if redis.call('hget', KEYS[2], field) == read_mark then
    for index = at + 4, at + 3 + ticks do
      removed = removed + redis.call('zrem', KEYS[1], ARGV[index])
    end
    redis.call('hset', KEYS[2], field, new_mark)
  end
  at = at + 4 + ticks
end
return removed
