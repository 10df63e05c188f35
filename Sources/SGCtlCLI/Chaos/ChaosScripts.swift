import RedisClient

/// The chaos run's one script against the worker's keys.
enum ChaosScripts {
    /// Takes a held lock away from its holder, atomically with reading who held it.
    /// KEYS[1] lock key, KEYS[2] its fence counter.
    /// ARGV[1] 'del' or 'overwrite', ARGV[2] the intruder token, ARGV[3] the intruder's PX in ms.
    /// Returns {token, fence} of the robbed holder, or nil when the key was not held. While the key
    /// exists its holder is the last claimer, so the counter's value is that holder's fence.
    static let steal = RedisScript("""
        local token = redis.call('GET', KEYS[1])
        if not token then return false end
        local fence = redis.call('GET', KEYS[2]) or '0'
        if ARGV[1] == 'del' then
          redis.call('DEL', KEYS[1])
        else
          redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
        end
        return {token, fence}
        """)
}
