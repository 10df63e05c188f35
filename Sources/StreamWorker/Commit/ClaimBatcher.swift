import DistributedLocking
import RedisClient

/// One channel's part of a ``WorkerScripts/claim`` call: its lock, claimed with the token of the
/// `DistributedLock` that then adopts the claim, and the state its run needs.
struct ChannelClaim: Sendable {
    /// What the claim reads besides the lock.
    enum Read: String, Sendable {
        /// The whole state hash (the handler reads the state).
        case state = "s"
        /// Only `last_seq` (the order check needs it).
        case lastSeq = "l"
        case nothing = "n"
    }

    enum Outcome: Sendable {
        /// Someone else holds the lock for `pttl` more milliseconds.
        case contended(pttl: Int64)
        /// Claimed with `fence`; `reads` as `DistributedLock.acquireBlocking(reading:)` returns
        /// them: the state read (unless nothing), then the dead seqs (when the run has seqs).
        case claimed(fence: Int64, reads: [Result<RESPValue, RedisError>])
        /// Claimed with `fence`, but a read failed: the lock is held and must be released.
        case unreadable(fence: Int64, error: RedisError)
        /// Not claimed: the lock or fence key is of another type, so waiting would not help.
        case refused(RedisError)
    }

    var keys: [String]
    var token: String
    var read: Read
    var hasSeq: Bool

    init(lock: String, token: String, channel: String, keys layout: WorkerKeys, read: Read, hasSeq: Bool) {
        keys = [lock, LockKeys.fenceKey(forLock: lock), layout.state(channel: channel), layout.deadSeqs(channel: channel)]
        self.token = token
        self.read = read
        self.hasSeq = hasSeq
    }

    func outcome(from reply: RESPValue) throws -> Outcome {
        guard let parts = reply.array, parts.count >= 2, let status = parts[0].int, let value = parts[1].int else {
            throw RedisError.unexpectedReply("claim returned \(reply)")
        }
        switch (status, parts.count) {
        case (0, 2):
            return .contended(pttl: value)
        case (1, 4):
            var reads: [Result<RESPValue, RedisError>] = []
            if read != .nothing { reads.append(.success(parts[2])) }
            if hasSeq { reads.append(.success(parts[3])) }
            return .claimed(fence: value, reads: reads)
        case (2, 3):
            return .unreadable(fence: value, error: .server(RedisServerError(line: parts[2].string ?? "ERR read failed")))
        case (3, 3):
            return .refused(.server(RedisServerError(line: parts[2].string ?? "ERR claim failed")))
        default:
            throw RedisError.unexpectedReply("claim returned \(reply)")
        }
    }

    /// Claims in one script call; one outcome per claim, in order.
    static func claim(_ claims: [ChannelClaim], ttl: Duration, on client: RedisClient) async throws -> [Result<Outcome, any Error>] {
        var keys: [String] = []
        var arguments: [String] = [String(ttl.redisMilliseconds)]
        keys.reserveCapacity(4 * claims.count)
        for claim in claims {
            keys += claim.keys
            arguments += [claim.token, claim.read.rawValue, claim.hasSeq ? "1" : "0"]
        }
        let reply = try await client.evaluate(WorkerScripts.claim, keys: keys, arguments: arguments)
        guard let replies = reply.array, replies.count == claims.count else {
            throw RedisError.unexpectedReply("claim of \(claims.count) channels returned \(reply)")
        }
        return zip(claims, replies).map { claim, reply in Result { try claim.outcome(from: reply) } }
    }
}

/// Claims the channels whose runs become ready together in one ``WorkerScripts/claim`` call: the
/// claims made while one of their partition is in flight go together in the next call, one
/// partition (one Redis Cluster slot) per call.
struct ClaimBatcher: Sendable {
    static let maxChannels = 64

    private let combiner: CallCombiner<ChannelClaim, ChannelClaim.Outcome>

    init(client: RedisClient, ttl: Duration) {
        combiner = CallCombiner(maxBatch: Self.maxChannels) { claims in
            do {
                return try await ChannelClaim.claim(claims, ttl: ttl, on: client)
            } catch {
                return claims.map { _ in .failure(error) }
            }
        }
    }

    /// - Parameter partition: the stream of the channel's partition (claims are grouped by it).
    func claim(_ claim: ChannelClaim, partition: String) async throws -> ChannelClaim.Outcome {
        try await combiner.call(claim, group: partition)
    }
}
