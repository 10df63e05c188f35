// Produce to a partitioned stream-consumer deployment from Node (ioredis).
// A channel's partition is crc32(utf8(channel_id)) mod partitions (zlib's CRC-32, Node >= 20.15);
// every key of the partition carries the hash tag {p<N>} (docs/partitions.md).
import { crc32 } from "node:zlib";

// KEYS[1] seq counter, KEYS[2] partition stream; ARGV[1] channel field, ARGV[2] channel id,
// ARGV[3...] other fields as name, value pairs. Returns [entry id, seq].
export const PRODUCE = `
local seq = redis.call('INCR', KEYS[1])
local args = {KEYS[2], '*', ARGV[1], ARGV[2], 'seq', seq}
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
return {redis.call('XADD', unpack(args)), seq}
`;

export function partition(channelId, partitions) {
  return crc32(Buffer.from(channelId, "utf8")) % partitions;
}

export function keys(channelId, { stream = "sg:stream:inbound", partitions = 16, prefix = "sg" } = {}) {
  if (partitions === 1) return [`${prefix}:seq:channel:${channelId}`, stream];
  const tag = `{p${partition(channelId, partitions)}}`;
  return [`${prefix}:${tag}:seq:channel:${channelId}`, `${stream}:${tag}`];
}

// With ioredis: redis.defineCommand("sgProduce", { numberOfKeys: 2, lua: PRODUCE }), then
//   const [id, seq] = await redis.sgProduce(...keys(channel, options), "channel_id", channel, "text", "hi");
