/// Where a command's keys are, so the cluster client can route it to the node that serves their
/// slot. Commands not listed here go to any primary; if they do name a key, the `MOVED` reply
/// sends them on, at the cost of one round trip.
enum CommandKeys {
    /// The slot every key of `command` hashes to; nil when it has no keys. Throws when the keys
    /// span slots, naming them, since the server would refuse the command with CROSSSLOT.
    static func slot(of command: RedisCommand) throws(RedisError) -> Int? {
        let positions = keyPositions(of: command)
        guard !positions.isEmpty else { return nil }
        var slot: Int?
        for position in positions {
            let keySlot = command.withArgument(at: position) { HashSlot.of(bytes: $0) }
            if let slot, slot != keySlot {
                let keys = positions.map { p in command.withArgument(at: p) { String(decoding: $0, as: UTF8.self) } }
                throw .crossSlot(command: command.name, keys: keys)
            }
            slot = keySlot
        }
        return slot
    }

    /// Indices (into the arguments, the name being 0) of the keys, or of the shard channels.
    static func keyPositions(of command: RedisCommand) -> [Int] {
        let count = command.argumentCount
        guard count > 1 else { return [] }
        switch command.name {
        case "FCALL", "FCALL_RO", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO":
            guard count > 2, let n = Int(command.withArgument(at: 2) { String(decoding: $0, as: UTF8.self) }),
                  n > 0 else { return [] }
            return Array(3..<min(count, 3 + n))
        case "XREAD", "XREADGROUP":
            guard let streams = (1..<count).first(where: {
                command.withArgument(at: $0) { $0.count == 7 && String(decoding: $0, as: UTF8.self).uppercased() == "STREAMS" }
            }) else { return [] }
            let rest = count - streams - 1
            return Array((streams + 1)..<(streams + 1 + rest / 2))
        case "XINFO", "XGROUP", "OBJECT", "MEMORY":
            return count > 2 ? [2] : []
        case "DEL", "UNLINK", "EXISTS", "TOUCH", "MGET", "WATCH", "SSUBSCRIBE", "SUNSUBSCRIBE":
            return Array(1..<count)
        case "MSET", "MSETNX":
            return Array(stride(from: 1, to: count, by: 2))
        case _ where singleKey.contains(command.name):
            return [1]
        default:
            return []
        }
    }

    /// Commands whose only key is their first argument (`SPUBLISH`'s shard channel counts as one).
    private static let singleKey: Set<String> = [
        "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "GETDEL", "GETEX", "APPEND", "STRLEN",
        "INCR", "INCRBY", "DECR", "DECRBY", "INCRBYFLOAT",
        "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "TTL", "PTTL", "TYPE", "DUMP", "RESTORE",
        "HGET", "HSET", "HSETNX", "HMSET", "HMGET", "HGETALL", "HDEL", "HINCRBY", "HINCRBYFLOAT", "HLEN",
        "HEXISTS", "HKEYS", "HVALS", "HSCAN",
        "LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE", "LTRIM", "LLEN", "LINDEX", "LREM", "LSET",
        "SADD", "SREM", "SMEMBERS", "SCARD", "SISMEMBER", "SMISMEMBER", "SSCAN",
        "ZADD", "ZREM", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZCARD", "ZSCORE",
        "ZREMRANGEBYSCORE", "ZRANK", "ZINCRBY", "ZSCAN", "ZCOUNT",
        "XADD", "XACK", "XAUTOCLAIM", "XCLAIM", "XPENDING", "XLEN", "XRANGE", "XREVRANGE", "XTRIM",
        "XDEL", "XSETID",
        "SPUBLISH",
    ]
}

extension RedisCommand {
    /// Calls `body` with argument `index`'s bytes, without copying them out.
    func withArgument<T>(at index: Int, _ body: (ArraySlice<UInt8>) -> T) -> T {
        var offset = 0
        for i in 0..<index { offset += lengths[i] }
        return body(storage[offset..<offset + lengths[index]])
    }
}
