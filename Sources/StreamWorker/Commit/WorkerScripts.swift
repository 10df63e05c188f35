import DistributedLocking
import RedisClient

/// The worker's contract with Redis: commit, dead-letter and produce, each one atomic script.
public enum WorkerScripts {
    /// Commit = check lease, check fence, check order, acknowledge, apply, release — atomically.
    /// KEYS[1] lock, KEYS[2] state hash, KEYS[3] history list, KEYS[4] stream, KEYS[5] dead-seq set.
    /// ARGV[1] token, ARGV[2] fence, ARGV[3] group, ARGV[4] entry id, ARGV[5] seq or '',
    /// ARGV[6] release channel, ARGV[7] '1' to accept a gap (after gap-timeout), ARGV[8…] the update.
    /// Returns {status, n}: 'applied' fence | 'lost' 0 | 'stale' recorded fence |
    /// 'duplicate' last_seq | 'gap' last_seq. Every status but 'lost' and 'stale' releases the lock
    /// and publishes `<token> <last_seq>` on the release channel (just the token without a seq), so
    /// a message parked behind a gap wakes only when the channel reached it.
    ///
    /// Every `redis.call` costs Redis a few microseconds, so the script reads the state once (HMGET)
    /// and writes it once (HSET). Type and integer checks come before the first write: a failing
    /// check returns an error and changes nothing.
    public static let commit = RedisScript(FencedScripts.applyUpdateChunk + """

        local function release(applied)
          redis.call('DEL', KEYS[1])
          redis.call('PUBLISH', ARGV[6], applied and (ARGV[1] .. ' ' .. applied) or ARGV[1])
        end
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'lost', 0} end
        local nset, nincr, nappend = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
        local fields, i = {'fence', 'last_seq'}, 12 + 2 * nset
        for _ = 1, nincr do fields[#fields + 1] = ARGV[i]; i = i + 2 end
        local values = redis.pcall('HMGET', KEYS[2], unpack(fields))
        if values.err then return redis.error_reply('WRONGTYPE state key ' .. KEYS[2] .. ' is not a hash') end
        local recorded = tonumber(values[1] or '0')
        if recorded > tonumber(ARGV[2]) then return {'stale', recorded} end
        for k = 3, #values do
          if values[k] and not sg_is_counter(values[k]) then
            return redis.error_reply('ERR state field ' .. fields[k] .. ' is not an integer')
          end
        end
        if nappend > 0 then
          local ltype = redis.call('TYPE', KEYS[3])['ok']
          if ltype ~= 'list' and ltype ~= 'none' then
            return redis.error_reply('WRONGTYPE list key ' .. KEYS[3] .. ' holds a ' .. ltype)
          end
        end
        local seq = tonumber(ARGV[5])
        local last = tonumber(values[2] or '0')
        -- Dead-lettered sequence numbers count as done; the set rarely exists.
        local dead = seq and redis.call('EXISTS', KEYS[5]) == 1
        if dead then
          local advanced = last
          while redis.call('SREM', KEYS[5], advanced + 1) == 1 do advanced = advanced + 1 end
          if advanced ~= last then redis.call('HSET', KEYS[2], 'last_seq', advanced); last = advanced end
        end
        if seq then
          if seq <= last then
            redis.call('XACK', KEYS[4], ARGV[3], ARGV[4])
            release(last)
            return {'duplicate', last}
          end
          if seq > last + 1 and ARGV[7] ~= '1' then
            release()
            return {'gap', last}
          end
        end
        if redis.call('XACK', KEYS[4], ARGV[3], ARGV[4]) == 0 then
          release(seq and last)
          return {'duplicate', last}
        end
        sg_apply_update(KEYS[2], KEYS[3], 8)
        if seq then
          if seq > last + 1 then redis.call('HINCRBY', KEYS[2], 'skipped_seqs', seq - last - 1) end
          if dead then
            while redis.call('SREM', KEYS[5], seq + 1) == 1 do seq = seq + 1 end
          end
          redis.call('HSET', KEYS[2], 'last_id', ARGV[4], 'fence', ARGV[2], 'last_seq', seq)
        else
          redis.call('HSET', KEYS[2], 'last_id', ARGV[4], 'fence', ARGV[2])
        end
        release(seq)
        return {'applied', tonumber(ARGV[2])}
        """)

    /// Moves an entry to the dead-letter stream and acknowledges it, atomically.
    /// KEYS[1] stream, KEYS[2] dead-letter stream, KEYS[3] state hash, KEYS[4] dead-seq set
    /// (KEYS[3] and KEYS[4] are only touched when a seq is given).
    /// ARGV[1] group, ARGV[2] entry id, ARGV[3] reason, ARGV[4] deliveries, ARGV[5] consumer,
    /// ARGV[6] time (ms), ARGV[7] seq or '', ARGV[8] detail, ARGV[9…] original fields as name, value pairs.
    /// Returns 1 when dead-lettered, 0 when the entry was already acknowledged (nothing written).
    public static let deadLetter = RedisScript("""
        if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
        local entry = {'original_id', ARGV[2], 'stream', KEYS[1], 'reason', ARGV[3], 'detail', ARGV[8],
                       'deliveries', ARGV[4], 'consumer', ARGV[5], 'time_ms', ARGV[6]}
        for i = 9, #ARGV, 2 do
          entry[#entry + 1] = 'f:' .. ARGV[i]
          entry[#entry + 1] = ARGV[i + 1]
        end
        redis.call('XADD', KEYS[2], '*', unpack(entry))
        local seq = tonumber(ARGV[7])
        if seq then
          -- Later messages must not wait behind a message that will never be applied.
          local last = tonumber(redis.call('HGET', KEYS[3], 'last_seq') or '0')
          if seq == last + 1 then
            while redis.call('SREM', KEYS[4], seq + 1) == 1 do seq = seq + 1 end
            redis.call('HSET', KEYS[3], 'last_seq', seq)
          elseif seq > last + 1 then
            redis.call('SADD', KEYS[4], seq)
          end
        end
        return 1
        """)

    /// Stamps the channel's next seq and appends the message, atomically.
    /// KEYS[1] seq counter, KEYS[2] stream. ARGV[1] channel field, ARGV[2] channel id,
    /// ARGV[3…] other fields as name, value pairs. Returns {entry id, seq}.
    public static let produce = RedisScript("""
        local seq = redis.call('INCR', KEYS[1])
        local args = {KEYS[2], '*', ARGV[1], ARGV[2], 'seq', seq}
        for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
        return {redis.call('XADD', unpack(args)), seq}
        """)
}

/// What a commit did.
public enum CommitOutcome: Sendable, Equatable {
    case applied
    /// The lock no longer holds our token: nothing applied; the entry stays pending.
    case lost
    /// A newer holder already committed with a higher fence: nothing applied.
    case stale(recorded: Int64)
    /// Already applied or acknowledged by someone else: acknowledged, not applied.
    case duplicate
    /// An earlier seq of this channel is not applied yet: nothing applied, lock released.
    case gap(lastSeq: Int64)

    static func parse(_ reply: RESPValue) throws -> CommitOutcome {
        guard let items = reply.array, items.count == 2, let status = items[0].string, let n = items[1].int else {
            throw RedisError.unexpectedReply("commit returned \(reply)")
        }
        switch status {
        case "applied": return .applied
        case "lost": return .lost
        case "stale": return .stale(recorded: n)
        case "duplicate": return .duplicate
        case "gap": return .gap(lastSeq: n)
        default: throw RedisError.unexpectedReply("commit returned status \(status)")
        }
    }
}
