"""Produce to a partitioned stream-consumer deployment from Python (redis-py).

A channel's partition is crc32(utf8(channel_id)) mod partitions, with zlib's CRC-32; every key of
the partition carries the hash tag {p<N>}. The script stamps the channel's next seq and appends
the entry in one atomic step, exactly as the worker's own Producer does (docs/partitions.md).
"""
import zlib

import redis

# KEYS[1] seq counter, KEYS[2] partition stream; ARGV[1] channel field, ARGV[2] channel id,
# ARGV[3...] other fields as name, value pairs. Returns {entry id, seq}.
PRODUCE = """
local seq = redis.call('INCR', KEYS[1])
local args = {KEYS[2], '*', ARGV[1], ARGV[2], 'seq', seq}
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
return {redis.call('XADD', unpack(args)), seq}
"""


def partition(channel_id: str, partitions: int) -> int:
    """The partition a channel lives in."""
    return zlib.crc32(channel_id.encode("utf-8")) % partitions


class Producer:
    def __init__(self, client: redis.Redis, stream: str = "sg:stream:inbound", partitions: int = 16,
                 prefix: str = "sg", channel_field: str = "channel_id"):
        self.client, self.stream, self.partitions = client, stream, partitions
        self.prefix, self.channel_field = prefix, channel_field
        self.script = client.register_script(PRODUCE)

    def keys(self, channel_id: str) -> tuple[str, str]:
        """The channel's seq counter and the stream it is appended to."""
        if self.partitions == 1:
            return f"{self.prefix}:seq:channel:{channel_id}", self.stream
        tag = "{p%d}" % partition(channel_id, self.partitions)
        return f"{self.prefix}:{tag}:seq:channel:{channel_id}", f"{self.stream}:{tag}"

    def send(self, channel_id: str, fields: dict[str, str] | None = None) -> tuple[str, int]:
        """Appends one message; returns its entry id and seq."""
        args = [self.channel_field, channel_id]
        for name, value in (fields or {}).items():
            args += [name, value]
        entry_id, seq = self.script(keys=list(self.keys(channel_id)), args=args)
        return entry_id.decode() if isinstance(entry_id, bytes) else entry_id, int(seq)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Produce seq-stamped messages to partition streams.")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--stream", default="sg:stream:inbound")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--key-prefix", default="sg")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=10)
    a = parser.parse_args()
    producer = Producer(redis.Redis.from_url(a.redis_url), a.stream, a.partitions, a.key_prefix)
    for i in range(a.messages):
        producer.send(f"py-{i % a.channels}", {"text": f"message {i}"})
    print(f"produced {a.messages} messages over {a.channels} channels")
