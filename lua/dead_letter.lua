#!lua
--[[
  dead_letter: move one findings event that a consumer could not deliver to the
  shard's dead-letter stream, and acknowledge it in its group, in one step.

  Idempotent: an event no longer pending in the group (already acked, or already
  dead-lettered by an earlier run of this call) is left alone. An event without
  a stream id (a consumer's gap record) is appended as it is.

  KEYS[1]: P:{s}:findings       stream  the shard's findings events
  KEYS[2]: P:{s}:findings:dead  stream  the shard's dead letters

  ARGV[1]: group name (non-empty)
  ARGV[2]: the event's stream id ("" for a gap record, which has none)
  ARGV[3]: dead-letter stream bound (whole number > 0; approximate MAXLEN)
  ARGV[4]: reason (the last delivery error)
  ARGV[5]: tries (whole number)
  ARGV[6..] the event's fields as name, value pairs (the consumer has them, even
           when the stream has trimmed the event since)

  Reply    the dead letter's stream id, or false when the event was not pending
           (nothing written).
  Errors   "RAC_BADARG <what>" for a malformed call; nothing is written.
]]
-- @include "common"

if #KEYS ~= 2 or #ARGV < 5 or #ARGV % 2 ~= 1 then
  return redis.error_reply('RAC_BADARG expected 2 keys and 5 + 2k arguments')
end
local group, id = ARGV[1], ARGV[2]
if group == '' then return redis.error_reply('RAC_BADARG group') end
local maxlen = whole(ARGV[3])
if maxlen == nil or maxlen == 0 then return redis.error_reply('RAC_BADARG dead-letter maxlen') end
if whole(ARGV[5]) == nil then return redis.error_reply('RAC_BADARG tries') end
if id ~= '' then
  if not string.match(id, '^%d+%-%d+$') then return redis.error_reply('RAC_BADARG stream id') end
  if #redis.call('XPENDING', KEYS[1], group, id, id, 1) == 0 then return false end
end
local fields = {}
for i = 6, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
local extra = { 'dead_group', group, 'dead_stream_id', id, 'dead_reason', ARGV[4],
  'dead_tries', ARGV[5], 'dead_at_ms', string.format('%d', now_ms()) }
for _, value in ipairs(extra) do fields[#fields + 1] = value end
local dead = emit(KEYS[2], maxlen, unpack_all(fields))
if id ~= '' then redis.call('XACK', KEYS[1], group, id) end
return dead
