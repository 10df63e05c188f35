import RedisClient

/// The dead-letter tools' contract with Redis.
enum DeadLetterScripts {
    /// Records a requeue in the log; runs inside the requeue's MULTI … EXEC, right after the XADD
    /// of the requeued entry, so the input stream's newest entry is that one.
    /// KEYS[1] input stream, KEYS[2] requeue log stream.
    /// ARGV[1] dead-letter id, ARGV[2] original id, ARGV[3] reason, ARGV[4] original seq or '',
    /// ARGV[5] new seq or '', ARGV[6] time (ms). Returns the requeued entry's new id.
    ///
    /// Sent as EVAL with its source (an admin command): inside a transaction there is no way to
    /// load a missing script and retry.
    static let logRequeue = """
        local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][1]
        redis.call('XADD', KEYS[2], '*', 'dead_id', ARGV[1], 'original_id', ARGV[2], 'new_id', newest,
                   'reason', ARGV[3], 'original_seq', ARGV[4], 'new_seq', ARGV[5], 'time_ms', ARGV[6])
        return newest
        """
}
