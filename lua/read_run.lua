#!lua flags=no-writes
--[[
  read_run: one consistent snapshot of a run for the reconciler.

  KEYS[1]: P:{s}:exp:<run>   hash  "domain|action" -> encoded expectation
  KEYS[2]: P:{s}:st:<run>    hash  "domain|action" -> "STATUS|acked_at_ms|late|live"
                                   (and the run's counters and last verdict, "#..." fields)
  KEYS[3]: P:{s}:due:<run>   zset  PENDING "domain|action" -> due (ms)
  KEYS[4]: P:{s}:acks:<run>  list  encoded acks (only counted)

  ARGV     none

  Reply    { HGETALL exp, HGETALL st, due set as key, due_ms pairs, ack count,
             server time in ms }
  Errors   "RAC_BADARG <what>" for a malformed call.
]]
-- @include "common"

if #KEYS ~= 4 or #ARGV ~= 0 then return redis.error_reply('RAC_BADARG expected 4 keys') end
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
  redis.call('LLEN', KEYS[4]),
  now_ms(),
}
