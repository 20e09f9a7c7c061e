#!lua
--[[
  read_group: deliver a shard's findings to one consumer of a consumer group, and
  count the events the stream lost (trimmed by MAXLEN ~) before the group read them.

  The group is created on first use at the oldest event the stream still holds,
  with its read counter set exactly (ENTRIESREAD), so Redis's `lag` stays exact.
  A group whose last delivered id is older than the oldest held event fell behind
  the stream's bound: the events in between are gone. Their number is
  lag - length (Redis counts lag from the events ever added); the counter is then
  moved past them (XGROUP SETID to just before the oldest event held, ENTRIESREAD),
  in the same atomic step, so the loss is reported exactly once and never
  re-counted after the group reads on; an unknown loss (-1) too.
  Only then are the events read (XREADGROUP ... >).

  KEYS[1]: P:{s}:findings  stream  findings events of one shard

  ARGV[1]: group name (non-empty)
  ARGV[2]: consumer name (non-empty)
  ARGV[3]: count: most events to deliver (whole number; 0 only creates the group
           and counts losses)

  Reply    { lost, server_ms, last_id, entries }
           lost: events trimmed before the group read them (-1: an unknown number,
           when Redis cannot tell the group's position); 0 most of the time
           last_id: the stream's last generated id ("0-0": nothing ever added)
           entries: the delivered events, { {id, {field, value, ...}}, ... }
  Errors   "RAC_BADARG <what>" for a malformed call; nothing is written.
]]
-- @include "common"

if #KEYS ~= 1 or #ARGV ~= 3 then return redis.error_reply('RAC_BADARG expected 1 key and 3 arguments') end
local stream_key, group, consumer = KEYS[1], ARGV[1], ARGV[2]
if group == '' then return redis.error_reply('RAC_BADARG group') end
if consumer == '' then return redis.error_reply('RAC_BADARG consumer') end
local count = whole(ARGV[3])
if count == nil then return redis.error_reply('RAC_BADARG count') end

-- The value of `name` in a flat name/value reply (XINFO), or nil.
local function field(reply, name)
  for i = 1, #reply, 2 do
    if reply[i] == name then return reply[i + 1] end
  end
  return nil
end

local function id_before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, bms = tonumber(ams), tonumber(bms)
  return ams < bms or (ams == bms and tonumber(aseq) < tonumber(bseq))
end

if redis.call('EXISTS', stream_key) == 0 then
  redis.call('XGROUP', 'CREATE', stream_key, group, '0', 'MKSTREAM', 'ENTRIESREAD', 0)
end
local stream = redis.call('XINFO', 'STREAM', stream_key)
local length = field(stream, 'length')
local added = field(stream, 'entries-added')
local last_id = field(stream, 'last-generated-id')
local first = field(stream, 'first-entry')
-- The read counter of a group positioned just before the oldest event held.
local settled = added - length

-- The greatest id before `id` (ids are ms-seq, seq a 64-bit counter).
local function id_preceding(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq ~= '0' then return ms .. '-' .. string.format('%.0f', tonumber(seq) - 1) end
  if ms == '0' then return '0-0' end
  return string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
end

local info = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream_key)) do
  if field(g, 'name') == group then info = g end
end
local lost = 0
if info == nil then
  redis.call('XGROUP', 'CREATE', stream_key, group, '0', 'ENTRIESREAD', settled)
else
  local delivered = field(info, 'last-delivered-id')
  -- Where a group that missed nothing held could be: just before the oldest event
  -- held, or at the last id when the stream holds none.
  local reach = first and id_preceding(first[1]) or last_id
  if id_before(delivered, reach) then
    local lag = field(info, 'lag')
    if lag then lost = math.max(0, lag - length) else lost = -1 end
    if lost ~= 0 then
      -- Past the loss: an unknown one leaves Redis unable to tell the lag until the
      -- group reads past the deleted entry, so the group is moved to `reach`, which
      -- is not before itself: the next call does not report the same loss again.
      redis.call('XGROUP', 'SETID', stream_key, group, reach, 'ENTRIESREAD', settled)
    end
  end
end

local entries = {}
if count > 0 then
  local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream_key, '>')
  if reply then
    -- Redis replies { {key, entries} }; the embedded server { stream_key, entries }.
    local pair = reply
    if type(reply[1]) == 'table' then pair = reply[1] end
    entries = pair[2] or {}
  end
end
return { lost, now_ms(), last_id, entries }
