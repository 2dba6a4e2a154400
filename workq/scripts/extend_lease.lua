-- extend_lease: push a running job's deadline ahead (checkin), only while the lease is still the one this run
-- holds: a lease that expired and was taken by a new run of the same bytes is not this run's to extend.
-- KEYS[1]: leases   ARGV[1]: lease member   ARGV[2]: the deadline this run holds   ARGV[3]: the new deadline
-- Returns 1 when extended, 0 when the lease is no longer this run's.
local held = redis.call('zscore', KEYS[1], ARGV[1])
if not held or tonumber(held) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('zadd', KEYS[1], ARGV[3], ARGV[1])
return 1
