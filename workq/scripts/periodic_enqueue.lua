-- periodic_enqueue: add cron fire times to the scheduled set, each at most once across all pools and restarts.
-- KEYS[1]: scheduled set   KEYS[2]: high-water hash (schedule → last fire time added)   KEYS[3]: last_periodic_enqueue
-- ARGV[1]: now (epoch s)
-- ARGV[2..]: per fire time, three values in ascending time per schedule: schedule field, fire time, job JSON
-- A fire time at or below its schedule's high-water mark was added before (and may already have run), so it is
-- never added again, whatever this host's clock says. Returns the number of fire times added.
local added = 0
for at = 2, #ARGV, 3 do
  local field, fire_at = ARGV[at], tonumber(ARGV[at + 1])
  local high_water = tonumber(redis.call('hget', KEYS[2], field) or '0') or 0
  if fire_at > high_water then
    redis.call('zadd', KEYS[1], fire_at, ARGV[at + 2])
    redis.call('hset', KEYS[2], field, fire_at)
    added = added + 1
  end
end
redis.call('set', KEYS[3], ARGV[1])
return added
