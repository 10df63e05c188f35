import RedisClient

/// The dead-letter tools' contract with Redis.
enum DeadLetterScripts {
    /// Moves one dead letter back onto its input stream and records the move, atomically, so a
    /// dead letter is requeued at most once even when two operators requeue at the same time.
    /// KEYS[1] input stream, KEYS[2] dead-letter stream, KEYS[3] requeue log stream,
    /// KEYS[4] the channel's seq counter, KEYS[5] the channel's state hash (both only used when restamping).
    /// ARGV[1] dead-letter id, ARGV[2] position of the seq value in the field list (1-based, 0 = keep),
    /// ARGV[3] time (ms), ARGV[4] original id, ARGV[5] reason, ARGV[6] original seq or '',
    /// ARGV[7…] the fields to append as name, value pairs.
    /// Returns {'requeued', new id, new seq or ''} or {'missing', '', ''} when the dead letter is gone.
    static let requeue = RedisScript("""
        if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return {'missing', '', ''} end
        local fields = {}
        for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
        local seq = ''
        local at = tonumber(ARGV[2])
        if at > 0 then
          -- The counter may lag the applied seqs (a stream imported without its counters).
          local n = redis.call('INCR', KEYS[4])
          local last = tonumber(redis.call('HGET', KEYS[5], 'last_seq') or '0')
          if n <= last then
            n = last + 1
            redis.call('SET', KEYS[4], n)
          end
          seq = tostring(n)
          fields[at] = seq
        end
        local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
        redis.call('XDEL', KEYS[2], ARGV[1])
        redis.call('XADD', KEYS[3], '*', 'dead_id', ARGV[1], 'original_id', ARGV[4], 'new_id', id,
                   'reason', ARGV[5], 'original_seq', ARGV[6], 'new_seq', seq, 'time_ms', ARGV[3])
        return {'requeued', id, seq}
        """)
}
