-- purge_queue: take every job of a queue at once by renaming it (O(1)), so the caller can release the unique
-- locks of the jobs taken and free them with UNLINK, in the background, instead of one long DEL.
-- KEYS[1]: the queue   KEYS[2]: a fresh key in the same slot that receives the jobs
-- ARGV[1]: seconds KEYS[2] lives at most (a caller that dies mid-purge leaves nothing behind for good)
-- Returns the number of jobs taken; an error when KEYS[1] is not a list.
local kind = redis.call('type', KEYS[1])['ok']
if kind == 'none' then
  return 0
end
if kind ~= 'list' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a ' .. kind .. ', not a queue')
end
local count = redis.call('llen', KEYS[1])
redis.call('rename', KEYS[1], KEYS[2])
redis.call('expire', KEYS[2], tonumber(ARGV[1]))
return count
