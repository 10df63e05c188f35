import RedisClient

/// The scripts a replay runs in the target Redis.
public enum ReplayScripts {
    /// Appends an entry with its channel's next seq, atomically, for `--seq restamp`.
    /// KEYS[1] the channel's seq counter, KEYS[2] the stream, KEYS[3] the channel's state hash.
    /// ARGV[1] the entry id, or '*' for a new one; ARGV[2] the index in ARGV of the `seq` value to
    /// replace; ARGV[3…] the entry's fields as name, value pairs.
    /// Returns {entry id, seq}. The seq is one above the larger of the counter and the state's
    /// `last_seq` (the counter may be behind after an import with kept seqs). XADD's own error
    /// (an id at or below the stream's last id) is returned as it is, and then nothing was
    /// written: the counter is only moved after the XADD succeeded.
    public static let restamp = RedisScript("""
        local counter = tonumber(redis.call('GET', KEYS[1]) or '0')
        if not counter then return redis.error_reply('ERR seq counter ' .. KEYS[1] .. ' is not an integer') end
        local last = tonumber(redis.call('HGET', KEYS[3], 'last_seq') or '0')
        if not last then return redis.error_reply('ERR last_seq of ' .. KEYS[3] .. ' is not an integer') end
        local seq = string.format('%.0f', math.max(counter, last) + 1)
        local args = {KEYS[2], ARGV[1]}
        for i = 3, #ARGV do args[i] = ARGV[i] end
        args[tonumber(ARGV[2])] = seq
        local added = redis.pcall('XADD', unpack(args))
        if type(added) == 'table' and added.err then return added end
        redis.call('SET', KEYS[1], seq)
        return {added, seq}
        """)

    /// Raises a channel's seq counter to at least ARGV[1], after a replay with kept seqs, so that
    /// a later replay or producer continues above them. KEYS[1] the seq counter.
    /// Returns the counter afterwards.
    public static let raiseCounter = RedisScript("""
        local counter = tonumber(redis.call('GET', KEYS[1]) or '0')
        if not counter then return redis.error_reply('ERR seq counter ' .. KEYS[1] .. ' is not an integer') end
        if counter < tonumber(ARGV[1]) then
          redis.call('SET', KEYS[1], ARGV[1])
          return tonumber(ARGV[1])
        end
        return counter
        """)
}
