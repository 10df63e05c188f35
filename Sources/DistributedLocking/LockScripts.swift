import RedisClient

/// The lock's contract with Redis. Every script is atomic, so a claim, renewal or release
/// can never interleave with another holder's.
public enum LockScripts {
    /// The claim as a Lua function, for scripts that claim as one of their steps (a worker's batch
    /// of claims): `sg_lock_claim(lock, fence, token, ttl)` sets the lock if it is free and draws
    /// the next fence, returning `1, fence`; a lock this token already holds (a claim whose reply
    /// was lost) is extended and keeps its fence; a lock someone else holds returns `0, pttl`.
    /// Defines no globals.
    public static let claimChunk = """
        local function sg_lock_claim(lock, fence, token, ttl)
          -- SET NX GET (Redis 7.0): sets a free lock and returns what was there, in one call.
          local holder = redis.call('SET', lock, token, 'NX', 'PX', ttl, 'GET')
          if not holder then
            return 1, redis.call('INCR', fence)
          end
          if holder == token then
            redis.call('PEXPIRE', lock, ttl)
            return 1, tonumber(redis.call('GET', fence) or '0')
          end
          return 0, redis.call('PTTL', lock)
        end

        """

    /// Claims the lock and draws a fencing token in one round trip.
    /// KEYS[1] lock key, KEYS[2] fence counter (never expires).
    /// ARGV[1] owner token, ARGV[2] TTL in milliseconds.
    /// Returns {1, fence} when claimed, {0, pttl} when someone else holds it.
    static let acquire = RedisScript(claimChunk + """
        local claimed, value = sg_lock_claim(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
        return {claimed, value}
        """)

    /// Extends the lease only if this token still owns the key.
    /// KEYS[1] lock key. ARGV[1] owner token, ARGV[2] TTL in milliseconds.
    /// Returns 1 when renewed, 0 when the lock is no longer ours.
    static let renew = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        """)

    /// Deletes the key only if this token still owns it, then wakes the waiters.
    /// KEYS[1] lock key. ARGV[1] owner token, ARGV[2] notification channel.
    /// Returns 1 when deleted, 0 when the lock was no longer ours (nothing is touched).
    static let release = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('SPUBLISH', ARGV[2], ARGV[1])
          return 1
        end
        return 0
        """)
}

extension DistributedLock {
    /// The scripts the lock and the fenced store run, for a deploy step that loads them ahead.
    public static var redisScripts: [RedisScript] {
        [LockScripts.acquire, LockScripts.renew, LockScripts.release, FencedScripts.apply]
    }
}

/// How lock keys relate to their companion keys.
public enum LockKeys {
    /// `sg:lock:channel:7` → `sg:fence:channel:7`; keys without a `:lock:` segment get a `:fence` suffix.
    public static func fenceKey(forLock key: String) -> String {
        if let lock = key.firstRange(of: ":lock:") {
            var fence = String(key[..<lock.lowerBound])
            fence.reserveCapacity(key.utf8.count + 1)
            fence += ":fence:"
            fence += key[lock.upperBound...]
            return fence
        }
        if key.hasPrefix("lock:") { return "fence:" + key.dropFirst(5) }
        return key + ":fence"
    }

    /// The shard channel (`SPUBLISH`) a release is announced on. It keeps the key's hash tag, so on a
    /// Redis Cluster the release script publishes in the key's own slot.
    public static func releaseChannel(forLock key: String) -> String {
        key + ":released"
    }

    /// A low-cardinality metric label: the key up to the segment after `:lock:` (`sg:lock:channel`),
    /// else the key without its last segment. Ids may contain colons themselves
    /// (`sg:lock:channel:a:b`), so cutting at the last colon would put part of an id in the label.
    public static func metricPrefix(forLock key: String) -> String {
        // The standard library's search: Foundation's `range(of:)` goes through ICU, on every lock made.
        if let lock = key.firstRange(of: ":lock:") {
            let afterLock = key[lock.upperBound...]
            guard let colon = afterLock.firstIndex(of: ":") else { return String(key[..<lock.lowerBound]) + ":lock" }
            return String(key[..<colon])
        }
        guard let colon = key.lastIndex(of: ":") else { return key }
        return String(key[..<colon])
    }
}
