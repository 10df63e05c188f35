import DistributedLocking
import RedisClient

/// The worker's contract with Redis: commit, dead-letter and produce, each one atomic script.
public enum WorkerScripts {
    /// Every script a worker runs, its lock's included: what `sgctl functions load` loads.
    public static var all: [RedisScript] { [claim, commit, deadLetter, produce, produceBatch, heartbeat, route, routerCursor] + DistributedLock.redisScripts }

    /// The input contract's seq, as every script checks it: decimal digits without a sign or a
    /// leading zero, from 1 to 2^53-1 (`InboundMessage.maxSeq`). Lua numbers are doubles, so a
    /// larger value would compare and print inexactly; every value above the bound rounds to a
    /// double of at least 2^53, so the comparison below refuses them all.
    static let seqChunk = """

        local SG_MAX_SEQ = 9007199254740991
        local function sg_is_seq(v)
          return type(v) == 'string' and string.match(v, '^[1-9]%d*$') ~= nil and #v <= 16 and tonumber(v) <= SG_MAX_SEQ
        end

        """

    /// `sg_error_text(e)`: the reply line of an error caught by `pcall`: a command's error keeps
    /// its code (`WRONGTYPE …`), and one of Lua itself (`user_function:3: attempt to …`) gets `ERR`.
    static let errorTextChunk = """

        local function sg_error_text(e)
          if type(e) == 'table' and e.err then e = e.err end
          e = tostring(e)
          if string.match(e, '^%u[%u_]* ') then return e end
          return 'ERR ' .. e
        end

        """

    /// Claims of runs: for each channel, the lock's claim (SET NX PX and the fence's INCR, as
    /// `DistributedLock` claims) and, when claimed, the state the run needs, so a claim needs no
    /// separate reads. Several channels go in one call (``ClaimBatcher``), all of one partition.
    /// KEYS, 4 per channel: lock, fence counter, state hash, dead-seq set.
    /// ARGV[1] TTL in milliseconds, then per channel: token, what to read ('s' the state hash,
    /// 'l' its `last_seq`, 'n' nothing) and '1' when the run has seqs (then the dead seqs are read).
    /// Returns one reply per channel: {0, pttl} when someone else holds the lock; {1, fence, state,
    /// dead seqs} when claimed, where state is the flat HGETALL array, the `last_seq` value (nil
    /// when unset) or nil, and dead seqs the set's members (empty when there is none);
    /// {2, fence, error} when claimed but a read failed (the lock is held: release it); or
    /// {3, 0, error} when the lock or fence key is of another type (not claimed).
    public static let claim = RedisScript(LockScripts.claimChunk + errorTextChunk + """
        local replies, ttl = {}, ARGV[1]
        for c = 1, (#ARGV - 1) / 3 do
          local K, A = 4 * c - 3, 3 * c - 1
          local ok, claimed, value = pcall(sg_lock_claim, KEYS[K], KEYS[K + 1], ARGV[A], ttl)
          if not ok then
            -- A lock or fence key of another type: this channel's claim is refused, not the
            -- call. The lock may have been set before the fence failed; it is not held then.
            if redis.pcall('GET', KEYS[K]) == ARGV[A] then redis.call('DEL', KEYS[K]) end
            replies[c] = {3, 0, sg_error_text(claimed)}
          elseif claimed == 0 then
            replies[c] = {0, value}
          else
            local state, dead = false, {}
            if ARGV[A + 1] == 's' then
              state = redis.pcall('HGETALL', KEYS[K + 2])
            elseif ARGV[A + 1] == 'l' then
              state = redis.pcall('HGET', KEYS[K + 2], 'last_seq')
            end
            if ARGV[A + 2] == '1' and redis.call('EXISTS', KEYS[K + 3]) == 1 then
              dead = redis.pcall('SMEMBERS', KEYS[K + 3])
            end
            if type(state) == 'table' and state.err then
              replies[c] = {2, value, state.err}
            elseif dead.err then
              replies[c] = {2, value, dead.err}
            else
              replies[c] = {1, value, state, dead}
            end
          end
        end
        return replies
        """)

    /// Commit of runs: for each channel, check lease, check fence, then check order, acknowledge and
    /// apply each of its consecutive messages, record and release once, atomically. Several
    /// channels go in one call (``CommitBatcher``), all of one partition, so one Redis Cluster slot;
    /// each gets its own outcome, and one channel's failure leaves the others' untouched.
    /// KEYS, 6 per channel: lock, state hash, history list, stream, dead-seq set, skipped-seq set.
    /// ARGV[1] channel count, then per channel: its argument count and its arguments: token, fence,
    /// group, release channel, message count, then per message: entry id, seq or '', mode, and its
    /// update (`StateUpdate.scriptArguments`).
    /// Mode 'h': the handler ran and the update applies if the seq is next; 'f': the same, and a
    /// gap before it is skipped (after gap-timeout); 'd': planned as a duplicate (empty update).
    /// Returns one reply per channel: {'lost', 0} or {'stale', recorded fence} having changed
    /// nothing; {'err', message} when a check failed before any write (wrong type, not a counter,
    /// bad seq) or, what the checks are there to prevent, a Lua error stopped that channel's
    /// commit; else {'ok', last_seq, codes}: one letter per message, 'a' applied, 'd' duplicate
    /// (acknowledged, not applied), 's' a seq that gap-timeout skipped earlier (neither applied nor
    /// acknowledged: the worker dead-letters it), 'g' a seq before it is missing, 'n' not reached.
    /// The first message that is not as planned stops the run: the handlers of the later ones saw a
    /// state that did not happen, so they are 'n' and run again from a fresh claim.
    /// An 'ok' channel's lock is released and `<token> <last_seq>` published on its release channel
    /// (just the token when nothing of a seq was settled), so a message parked behind a gap wakes
    /// only when the channel reached it.
    ///
    /// A channel's state is read once (HMGET); its duplicates are acknowledged with one XACK, and
    /// each message it applies with its own, so an entry acknowledged elsewhere meanwhile (dead-
    /// lettered, say) is a duplicate rather than applied.
    /// Type, seq and counter checks of every message come before the channel's first write.
    public static let commit = RedisScript(FencedScripts.applyUpdateChunk + seqChunk + errorTextChunk + """

        local function sg_err(message) return {'err', message} end
        -- Applies the updates that start at ARGV[first] for each first in `firsts`, in order, with
        -- as few calls as that allows: one HSET of every set, one HINCRBY per counter with the
        -- deltas summed, one RPUSH of every value and an LTRIM if the list outgrew its cap. The
        -- same result as applying them one by one as long as no field is both set and incremented,
        -- all appends share a cap, each sum stays exact (|sum| < 2^53) and unpack can take them;
        -- otherwise one by one.
        local function sg_apply_updates(state, list, firsts)
          if #firsts == 1 then sg_apply_update(state, list, firsts[1]); return end
          local sets, set_fields, deltas, order, values, cap, separate = {}, {}, {}, {}, {}, nil, false
          for _, first in ipairs(firsts) do
            local nset, nincr, nappend = tonumber(ARGV[first]), tonumber(ARGV[first + 1]), tonumber(ARGV[first + 2])
            local i = first + 4
            for _ = 1, nset do
              sets[#sets + 1] = ARGV[i]; sets[#sets + 1] = ARGV[i + 1]; set_fields[ARGV[i]] = true
              i = i + 2
            end
            for _ = 1, nincr do
              local f = ARGV[i]
              if not deltas[f] then deltas[f] = 0; order[#order + 1] = f end
              deltas[f] = deltas[f] + tonumber(ARGV[i + 1])
              if math.abs(deltas[f]) >= 9007199254740992 then separate = true end
              i = i + 2
            end
            if nappend > 0 then
              if cap == nil then cap = ARGV[first + 3] elseif cap ~= ARGV[first + 3] then separate = true end
              for _ = 1, nappend do values[#values + 1] = ARGV[i]; i = i + 1 end
            end
          end
          for _, f in ipairs(order) do if set_fields[f] then separate = true end end
          -- unpack stops at 8,000 values; one by one has no such limit.
          if separate or #sets > 4000 or #values > 4000 then
            for _, first in ipairs(firsts) do sg_apply_update(state, list, first) end
            return
          end
          if #sets > 0 then redis.call('HSET', state, unpack(sets)) end
          -- Even a sum of 0: one by one, the increments would have created the field.
          for _, f in ipairs(order) do redis.call('HINCRBY', state, f, string.format('%d', deltas[f])) end
          if #values > 0 then
            local length = redis.call('RPUSH', list, unpack(values))
            if tonumber(cap) > 0 and length > tonumber(cap) then redis.call('LTRIM', list, -tonumber(cap), -1) end
          end
        end
        -- One channel's run; its keys start at KEYS[K] and its arguments at ARGV[A].
        local function sg_commit_run(K, A)
          local lock, state, history, stream, deadset = KEYS[K], KEYS[K + 1], KEYS[K + 2], KEYS[K + 3], KEYS[K + 4]
          local skipset = KEYS[K + 5]
          if redis.call('GET', lock) ~= ARGV[A] then return {'lost', 0} end
          local n = tonumber(ARGV[A + 4])
          local msgs, fields, known_at = {}, {'fence', 'last_seq'}, {}
          local has_seq, appends, forced = false, false, false
          local i = A + 5
          for m = 1, n do
            local seq = ARGV[i + 1]
            if seq ~= '' and not sg_is_seq(seq) then
              return sg_err('ERR seq ' .. seq .. ' is not an integer from 1 to 2^53-1')
            end
            local first = i + 3
            local nset, nincr, nappend = tonumber(ARGV[first]), tonumber(ARGV[first + 1]), tonumber(ARGV[first + 2])
            for k = first + 4 + 2 * nset, first + 3 + 2 * nset + 2 * nincr, 2 do
              if not known_at[ARGV[k]] then fields[#fields + 1] = ARGV[k]; known_at[ARGV[k]] = #fields end
            end
            if nappend > 0 then appends = true end
            if seq ~= '' then has_seq = true end
            if ARGV[i + 2] == 'f' then forced = true end
            msgs[m] = {ARGV[i], seq ~= '' and tonumber(seq) or nil, ARGV[i + 2], first}
            i = first + 4 + 2 * nset + 2 * nincr + nappend
          end
          -- A skipped gap is counted in skipped_seqs at the end: it must be a counter too. It is read
          -- for every run with seqs: a channel that never skipped has no skipped-seq set to ask.
          if has_seq and not known_at['skipped_seqs'] then fields[#fields + 1] = 'skipped_seqs'; known_at['skipped_seqs'] = #fields end
          local values = redis.pcall('HMGET', state, unpack(fields))
          if values.err then return sg_err('WRONGTYPE state key ' .. state .. ' is not a hash') end
          local recorded = tonumber(values[1] or '0')
          if recorded > tonumber(ARGV[A + 1]) then return {'stale', recorded} end
          -- HMGET answers false for a missing field.
          local has_skips = has_seq and values[known_at['skipped_seqs']] ~= false
          if forced or has_skips then
            local ktype = redis.call('TYPE', skipset)['ok']
            if ktype ~= 'set' and ktype ~= 'none' then
              return sg_err('WRONGTYPE skipped-seq key ' .. skipset .. ' holds a ' .. ktype)
            end
          end
          -- Every counter must still be one when its increment comes, including after an earlier
          -- message of the run set it: HINCRBY failing halfway would leave a partial commit.
          local current = {}
          for f, k in pairs(known_at) do current[f] = values[k] end
          for m = 1, n do
            local first = msgs[m][4]
            local nset, nincr = tonumber(ARGV[first]), tonumber(ARGV[first + 1])
            local k = first + 4
            for _ = 1, nset do
              if known_at[ARGV[k]] then current[ARGV[k]] = ARGV[k + 1] end
              k = k + 2
            end
            for _ = 1, nincr do
              local v = current[ARGV[k]]
              if v and not sg_is_counter(v) then
                return sg_err('ERR state field ' .. ARGV[k] .. ' is not an integer')
              end
              current[ARGV[k]] = '0'
              k = k + 2
            end
          end
          if forced and current['skipped_seqs'] and not sg_is_counter(current['skipped_seqs']) then
            return sg_err('ERR state field skipped_seqs is not an integer')
          end
          if appends then
            local ltype = redis.call('TYPE', history)['ok']
            if ltype ~= 'list' and ltype ~= 'none' then
              return sg_err('WRONGTYPE list key ' .. history .. ' holds a ' .. ltype)
            end
          end
          local last = tonumber(values[2] or '0')
          -- Dead-lettered sequence numbers count as done; the set rarely exists.
          local dead = has_seq and redis.call('EXISTS', deadset) == 1
          if dead then
            local advanced = last
            while redis.call('SREM', deadset, advanced + 1) == 1 do advanced = advanced + 1 end
            if advanced ~= last then redis.call('HSET', state, 'last_seq', advanced); last = advanced end
          end
          local codes, acks, stop, settled = {}, {}, false, false
          local last_id, skipped, updates = nil, 0, {}
          for m = 1, n do
            local id, seq, mode, first = msgs[m][1], msgs[m][2], msgs[m][3], msgs[m][4]
            local code = 'n'
            if stop then
              code = 'n'
            elseif seq and seq <= last and has_skips and redis.call('SISMEMBER', skipset, seq) == 1 then
              -- Its turn was skipped: applying it now would break the order, acknowledging it
              -- would lose it. Left pending for the worker to dead-letter.
              code = 's'
              if mode ~= 'd' then stop = true end
            elseif seq and seq <= last then
              acks[#acks + 1] = id
              code, settled = 'd', true
              if mode ~= 'd' then stop = true end
            elseif mode == 'd' then
              stop = true
            elseif seq and seq > last + 1 and mode ~= 'f' then
              code, stop = 'g', true
            elseif not seq then
              if redis.call('XACK', stream, ARGV[A + 2], id) == 0 then
                code, stop = 'd', true
              else
                updates[#updates + 1] = first
                code, last_id = 'a', id
              end
            elseif redis.call('XACK', stream, ARGV[A + 2], id) == 0 then
              -- Acknowledged by someone else meanwhile (dead-lettered, say): never applied here.
              code, stop, settled = 'd', true, true
            else
              updates[#updates + 1] = first
              if seq > last + 1 then
                skipped = skipped + seq - last - 1
                -- Remembered, so that one of them arriving after all is not taken for a duplicate.
                local missing = {}
                for s = last + 1, math.min(seq - 1, last + 1000) do missing[#missing + 1] = string.format('%d', s) end
                redis.call('SADD', skipset, unpack(missing))
              end
              last = seq
              if dead then
                while redis.call('SREM', deadset, last + 1) == 1 do last = last + 1 end
              end
              code, last_id, settled = 'a', id, true
            end
            codes[m] = code
          end
          sg_apply_updates(state, history, updates)
          if #acks > 0 then redis.call('XACK', stream, ARGV[A + 2], unpack(acks)) end
          if skipped > 0 then redis.call('HINCRBY', state, 'skipped_seqs', skipped) end
          if last_id then
            if has_seq then
              redis.call('HSET', state, 'last_id', last_id, 'fence', ARGV[A + 1], 'last_seq', last)
            else
              redis.call('HSET', state, 'last_id', last_id, 'fence', ARGV[A + 1])
            end
          end
          redis.call('DEL', lock)
          -- '%d', not '..': Lua prints numbers of 15 digits or more in exponent form.
          redis.call('SPUBLISH', ARGV[A + 3], settled and (ARGV[A] .. ' ' .. string.format('%d', last)) or ARGV[A])
          return {'ok', last, table.concat(codes)}
        end
        local replies, a = {}, 2
        for c = 1, tonumber(ARGV[1]) do
          -- A key the checks did not foresee (a fence that is not a number, say) fails its own
          -- channel, not the call: the channels before it have committed and released already.
          local ok, reply = pcall(sg_commit_run, 6 * c - 5, a + 1)
          replies[c] = ok and reply or {'err', sg_error_text(reply)}
          a = a + 1 + tonumber(ARGV[a])
        end
        return replies
        """)

    /// Fields per dead-letter stream entry: an XADD from Lua takes its arguments through `unpack`,
    /// which stops at 8,000 values, so a larger entry is written as several consecutive entries.
    public static let deadLetterFieldsPerPart = 3000

    /// Moves an entry to the dead-letter stream and acknowledges it, atomically, keeping every field.
    /// KEYS[1] stream, KEYS[2] dead-letter stream, KEYS[3] state hash, KEYS[4] dead-seq set,
    /// KEYS[5] skipped-seq set (KEYS[3…5] are only touched when a seq is given).
    /// ARGV[1] group, ARGV[2] entry id, ARGV[3] reason, ARGV[4] deliveries, ARGV[5] consumer,
    /// ARGV[6] time (ms), ARGV[7] seq or '', ARGV[8] detail, ARGV[9…] original fields as name, value pairs.
    /// Returns 1 when dead-lettered, 0 when the entry was already acknowledged (nothing written).
    /// A key of the wrong type, or a `last_seq` that is not a number, is an error before any write.
    ///
    /// Up to `deadLetterFieldsPerPart` fields go in one entry. Beyond that the first entry also
    /// holds `parts` (how many entries make up the dead letter) and each further one holds
    /// `continues` (the first entry's id), `part` (2, 3, …) and the next fields; one script writes
    /// them all, so they are adjacent in the stream and appear together or not at all.
    public static let deadLetter = RedisScript(seqChunk + """
        local dtype = redis.call('TYPE', KEYS[2])['ok']
        if dtype ~= 'stream' and dtype ~= 'none' then
          return redis.error_reply('WRONGTYPE dead-letter key ' .. KEYS[2] .. ' holds a ' .. dtype)
        end
        -- A seq outside the contract took no part in the channel's order: nothing to advance.
        -- The order's keys are read before the first write: a script that fails halfway is not undone.
        local seq, last = sg_is_seq(ARGV[7]) and tonumber(ARGV[7]), nil
        if seq then
          for k = 3, 5 do
            local want = k == 3 and 'hash' or 'set'
            local ktype = redis.call('TYPE', KEYS[k])['ok']
            if ktype ~= want and ktype ~= 'none' then
              return redis.error_reply('WRONGTYPE key ' .. KEYS[k] .. ' holds a ' .. ktype .. ', not a ' .. want)
            end
          end
          last = tonumber(redis.call('HGET', KEYS[3], 'last_seq') or '0')
          if not last then return redis.error_reply('ERR last_seq of ' .. KEYS[3] .. ' is not a number') end
        end
        if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
        local per = 2 * \(deadLetterFieldsPerPart)
        local function sg_add_fields(entry, from)
          for i = from, math.min(#ARGV, from + per - 1), 2 do
            entry[#entry + 1] = 'f:' .. ARGV[i]
            entry[#entry + 1] = ARGV[i + 1]
          end
          return entry
        end
        local head = {'original_id', ARGV[2], 'stream', KEYS[1], 'reason', ARGV[3], 'detail', ARGV[8],
                      'deliveries', ARGV[4], 'consumer', ARGV[5], 'time_ms', ARGV[6]}
        local parts = math.max(1, math.ceil((#ARGV - 8) / per))
        if parts > 1 then head[#head + 1] = 'parts'; head[#head + 1] = tostring(parts) end
        local id = redis.call('XADD', KEYS[2], '*', unpack(sg_add_fields(head, 9)))
        for k = 2, parts do
          redis.call('XADD', KEYS[2], '*', unpack(sg_add_fields({'continues', id, 'part', tostring(k)}, 9 + (k - 1) * per)))
        end
        if seq then
          -- Later messages must not wait behind a message that will never be applied.
          if seq == last + 1 then
            while redis.call('SREM', KEYS[4], seq + 1) == 1 do seq = seq + 1 end
            redis.call('HSET', KEYS[3], 'last_seq', seq)
          elseif seq > last + 1 then
            redis.call('SADD', KEYS[4], seq)
          else
            -- A seq gap-timeout skipped, now dead-lettered: nothing is left to wait for it.
            redis.call('SREM', KEYS[5], seq)
          end
        end
        return 1
        """)

    /// One heartbeat of a pool member, on Redis's clock so members' clocks need not agree.
    /// KEYS[1] members sorted set (member → expiry in ms). ARGV[1] member, ARGV[2] TTL in ms,
    /// ARGV[3] '1' to leave instead, ARGV[4] channel announcing membership changes.
    /// Drops expired members and returns the live ones, sorted by name. A join, a leave or an
    /// expiry is published on ARGV[4], so every member recomputes the assignment at once.
    public static let heartbeat = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local ttl = tonumber(ARGV[2])
        local changed = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if ARGV[3] == '1' then
          changed = changed + redis.call('ZREM', KEYS[1], ARGV[1])
        else
          changed = changed + redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
          -- The set outlives its members only briefly, so a retired pool leaves nothing behind.
          redis.call('PEXPIRE', KEYS[1], ttl * 10)
        end
        if changed > 0 then redis.call('PUBLISH', ARGV[4], ARGV[1]) end
        local members = redis.call('ZRANGE', KEYS[1], 0, -1)
        table.sort(members)
        return members
        """)

    /// Routes a batch of one partition: appends each entry under its own source id, stamping the
    /// channel's next seq when the entry has none. Idempotent: an id the partition stream already
    /// holds was routed before (a router crashed after appending and before recording its cursor)
    /// and is skipped. An id below the stream's top that it does not hold means something else
    /// appends to this partition too; the entry is then appended with a new id, never dropped.
    /// KEYS[1] partition stream, KEYS[2…] the seq counter of each entry's channel (the partition
    /// stream again for an entry without a channel, which gets no seq and is dead-lettered downstream). ARGV[1] number of entries, then per entry:
    /// id, 1 to stamp a seq or 0, the number of fields n, then n name, value pairs.
    /// Returns {routed, skipped, reassigned}.
    public static let route = RedisScript("""
        local routed, skipped, reassigned = 0, 0, 0
        local i = 2
        for e = 1, tonumber(ARGV[1]) do
          local id, stamp, n = ARGV[i], ARGV[i + 1] == '1', tonumber(ARGV[i + 2])
          local args = {KEYS[1], id}
          for k = i + 3, i + 2 + 2 * n do args[#args + 1] = ARGV[k] end
          i = i + 3 + 2 * n
          local seq
          if stamp then
            seq = redis.call('INCR', KEYS[1 + e])
            args[#args + 1] = 'seq'
            args[#args + 1] = seq
          end
          local added = redis.pcall('XADD', unpack(args))
          if type(added) == 'table' and added.err then
            if #redis.call('XRANGE', KEYS[1], id, id) == 1 then
              if stamp then redis.call('DECR', KEYS[1 + e]) end
              skipped = skipped + 1
            else
              args[2] = '*'
              args[#args + 1] = 'sg_routed_from'
              args[#args + 1] = id
              redis.call('XADD', unpack(args))
              reassigned = reassigned + 1
            end
          else
            routed = routed + 1
          end
        end
        return {routed, skipped, reassigned}
        """)

    /// Records how far the router got, only while it holds the router lease.
    /// KEYS[1] router lock, KEYS[2] cursor. ARGV[1] token, ARGV[2] last routed id. Returns 1, or 0 when not ours.
    public static let routerCursor = RedisScript("""
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[2], ARGV[2])
        return 1
        """)

    /// Stamps the channel's next seq and appends the message, atomically.
    /// KEYS[1] seq counter, KEYS[2] stream. ARGV[1] channel field, ARGV[2] channel id,
    /// ARGV[3…] other fields as name, value pairs. Returns {entry id, seq}, or an error (and
    /// writes nothing) when the counter already holds 2^53-1 or is not a valid seq.
    public static let produce = RedisScript(seqChunk + """
        local current = redis.call('GET', KEYS[1])
        if current and current ~= '0' and not sg_is_seq(current) then
          return redis.error_reply('ERR seq counter ' .. KEYS[1] .. ' holds ' .. current .. ', not a seq')
        end
        if current and tonumber(current) >= SG_MAX_SEQ then
          return redis.error_reply('ERR seq counter ' .. KEYS[1] .. ' is at the limit 2^53-1')
        end
        local seq = redis.call('INCR', KEYS[1])
        local args = {KEYS[2], '*', ARGV[1], ARGV[2], 'seq', seq}
        for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
        return {redis.call('XADD', unpack(args)), seq}
        """)
}

extension WorkerScripts {
    /// ``produce`` for many messages of one partition (or of a single-stream layout) in one call:
    /// the per-call cost of a script is most of what a lone produce costs Redis.
    /// KEYS[1] stream, KEYS[1 + i] the seq counter of message i. ARGV[1] channel field, then per
    /// message: channel id, field count n, n name, value pairs.
    /// Every counter is checked before the first write, so a counter that is not a valid seq, or
    /// that the batch would take past 2^53-1, fails the call with nothing written.
    /// Returns entry id, seq, entry id, seq, … in the messages' order.
    public static let produceBatch = RedisScript(seqChunk + """
        local wanted = {}
        for i = 2, #KEYS do wanted[KEYS[i]] = (wanted[KEYS[i]] or 0) + 1 end
        for key, count in pairs(wanted) do
          local current = redis.call('GET', key)
          if current and current ~= '0' and not sg_is_seq(current) then
            return redis.error_reply('ERR seq counter ' .. key .. ' holds ' .. current .. ', not a seq')
          end
          if tonumber(current or '0') > SG_MAX_SEQ - count then
            return redis.error_reply('ERR seq counter ' .. key .. ' is at the limit 2^53-1')
          end
        end
        local replies, a = {}, 2
        for i = 2, #KEYS do
          local seq = redis.call('INCR', KEYS[i])
          local args = {KEYS[1], '*', ARGV[1], ARGV[a], 'seq', seq}
          local n = tonumber(ARGV[a + 1])
          for k = a + 2, a + 1 + 2 * n do args[#args + 1] = ARGV[k] end
          a = a + 2 + 2 * n
          replies[#replies + 1] = redis.call('XADD', unpack(args))
          replies[#replies + 1] = seq
        end
        return replies
        """)
}

/// What a commit did with one message.
public enum CommitOutcome: Sendable, Equatable {
    case applied
    /// The lock no longer holds our token: nothing applied; the entry stays pending.
    case lost
    /// A newer holder already committed with a higher fence: nothing applied.
    case stale(recorded: Int64)
    /// Already applied or acknowledged by someone else: acknowledged, not applied.
    case duplicate
    /// Its seq was skipped after gap-timeout before it arrived: not applied; dead-lettered.
    case skipped
    /// An earlier seq of this channel is not applied yet (or an earlier message of its run was
    /// not as planned): nothing applied, lock released.
    case gap(lastSeq: Int64)
}
