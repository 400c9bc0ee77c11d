-- One partition batch of the metrics-aggregator, atomically: its increments and its
-- stored offset, only when the stored offset is where the batch begins.
--
-- KEYS[1]        the offsets hash of the topic and group
-- KEYS[2..]      the hashes and sets the batch updates (same hash tag as KEYS[1])
-- ARGV[1]        partition (the field in KEYS[1])
-- ARGV[2]        the offset the batch begins at ('' = the group holds nothing yet)
-- ARGV[3]        the next offset after the batch
-- ARGV[4]        the topic id ('' = unknown)
-- ARGV[5]        TTL of the offsets hash (seconds)
-- then per key:  kind ('h' hash, 's' set), TTL, n, and n entries:
--                hash: field, op ('i' add, 'n' min, 'x' max), value; set: member
-- Returns {0, next} applied, {1, stored} already applied, {2, stored} elsewhere.
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored == ARGV[3] then
  return {1, stored}
end
if (stored or '') ~= ARGV[2] then
  return {2, stored or ''}
end
local a = 6
for k = 2, #KEYS do
  local key, kind, ttl, n = KEYS[k], ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  if kind == 's' then
    for j = 1, n do
      redis.call('SADD', key, ARGV[a])
      a = a + 1
    end
  else
    for j = 1, n do
      local field, op, v = ARGV[a], ARGV[a + 1], ARGV[a + 2]
      a = a + 3
      if op == 'i' then
        redis.call('HINCRBY', key, field, v)
      else
        local cur = redis.call('HGET', key, field)
        local x = tonumber(v)
        if (not cur) or (op == 'n' and x < tonumber(cur)) or (op == 'x' and x > tonumber(cur)) then
          redis.call('HSET', key, field, v)
        end
      end
    end
  end
  redis.call('EXPIRE', key, ttl)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'topic_id', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return {0, ARGV[3]}
