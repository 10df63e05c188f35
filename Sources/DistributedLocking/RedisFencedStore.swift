import RedisClient

/// ``FencedStore`` on Redis: one Lua script checks the fence and applies the update atomically.
public struct RedisFencedStore: FencedStore {
    private let client: RedisClient

    public init(client: RedisClient) {
        self.client = client
    }

    public func apply(_ update: StateUpdate, to target: FencedTarget, fence: Int64) async throws -> FencedWriteOutcome {
        try update.validate()
        let listKey = target.listKey ?? (target.stateKey + ":list")
        let reply = try await client.evaluate(
            FencedScripts.apply,
            keys: [target.stateKey, listKey],
            arguments: [String(fence)] + update.scriptArguments
        )
        guard let items = reply.array, items.count == 2, let applied = items[0].int, let recorded = items[1].int else {
            throw RedisError.unexpectedReply("fenced apply returned \(reply)")
        }
        return applied == 1 ? .applied : .staleFence(recorded: recorded)
    }
}

/// Lua for fenced writes. The update-applying chunk is shared with the worker's commit script,
/// so a commit and a plain fenced write change state in exactly the same way.
public enum FencedScripts {
    /// Defines `sg_check_update(state, list, first)`, which returns an error message when the
    /// update cannot be applied in full (wrong key types, non-integer counters), and
    /// `sg_apply_update(state, list, first)`, which applies an update encoded by
    /// ``StateUpdate/scriptArguments`` starting at ARGV[first]. Redis does not roll back a
    /// script that fails halfway, so scripts check before their first write. Defines no globals.
    public static let applyUpdateChunk = """
        -- What HINCRBY accepts and cannot overflow with a delta of at most 2^53: a plain decimal
        -- integer below 10^18, written as Redis writes one. (tonumber also takes '1.5', '1e3',
        -- '0x10', '007' and '-0', which HINCRBY refuses halfway through a commit.)
        local function sg_is_counter(v)
          return v == '0' or (string.match(v, '^-?[1-9]%d*$') ~= nil and #v <= 18)
        end
        local function sg_check_update(state, list, first)
          local nset, nincr, nappend = tonumber(ARGV[first]), tonumber(ARGV[first+1]), tonumber(ARGV[first+2])
          local stype = redis.call('TYPE', state)['ok']
          if stype ~= 'hash' and stype ~= 'none' then return 'WRONGTYPE state key ' .. state .. ' holds a ' .. stype end
          if nappend > 0 then
            local ltype = redis.call('TYPE', list)['ok']
            if ltype ~= 'list' and ltype ~= 'none' then return 'WRONGTYPE list key ' .. list .. ' holds a ' .. ltype end
          end
          local i = first + 4 + 2 * nset
          for _ = 1, nincr do
            local current = redis.call('HGET', state, ARGV[i])
            if current and not sg_is_counter(current) then return 'ERR state field ' .. ARGV[i] .. ' is not an integer' end
            i = i + 2
          end
          return false
        end
        local function sg_apply_update(state, list, first)
          local nset, nincr, nappend, cap = tonumber(ARGV[first]), tonumber(ARGV[first+1]), tonumber(ARGV[first+2]), tonumber(ARGV[first+3])
          local i = first + 4
          for _ = 1, nset do redis.call('HSET', state, ARGV[i], ARGV[i+1]); i = i + 2 end
          for _ = 1, nincr do redis.call('HINCRBY', state, ARGV[i], ARGV[i+1]); i = i + 2 end
          local length = 0
          for _ = 1, nappend do length = redis.call('RPUSH', list, ARGV[i]); i = i + 1 end
          -- A list within its cap needs no trim.
          if cap > 0 and length > cap then redis.call('LTRIM', list, -cap, -1) end
        end
        """

    /// KEYS[1] state hash, KEYS[2] list. ARGV[1] writer's fence, ARGV[2…] the encoded update.
    /// Returns {1, fence} when applied, {0, recorded} when the state already has a higher fence.
    public static let apply = RedisScript(applyUpdateChunk + """

        local fence = tonumber(ARGV[1])
        local recorded = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
        if recorded > fence then return {0, recorded} end
        local bad = sg_check_update(KEYS[1], KEYS[2], 2)
        if bad then return redis.error_reply(bad) end
        sg_apply_update(KEYS[1], KEYS[2], 2)
        redis.call('HSET', KEYS[1], 'fence', ARGV[1])
        return {1, fence}
        """)
}
