import DistributedLocking
import RedisClient

/// One channel's part of a ``WorkerScripts/commit`` call: its run of messages committed together
/// under the lease that claimed them. ``CommitBatcher`` puts several channels in one call.
struct RunCommit: Sendable {
    /// What the worker planned for a message, as the script reads it.
    enum Mode: String, Sendable {
        /// The handler ran; its update applies if the seq is next.
        case handled = "h"
        /// The handler ran after gap-timeout; the missing seqs before it are skipped.
        case handledAcceptingGap = "f"
        /// At or below `last_seq` when claimed: acknowledged only.
        case duplicate = "d"
    }

    struct Item: Sendable {
        var message: InboundMessage
        var mode: Mode
        var update: StateUpdate
    }

    /// What the script did with one message of the run.
    enum Result: Character, Sendable, Equatable {
        case applied = "a"
        case duplicate = "d"
        /// Its seq was skipped after gap-timeout: neither applied nor acknowledged; dead-letter it.
        case skipped = "s"
        /// A seq before it is missing: nothing applied.
        case gap = "g"
        /// An earlier message of the run was not as planned: not applied; claim again.
        case notReached = "n"
    }

    enum Outcome: Sendable, Equatable {
        /// The lock no longer holds our token: nothing applied, nothing released.
        case lost
        /// A newer holder already committed with a higher fence: nothing applied.
        case stale(recorded: Int64)
        /// Checked and released; one result per item, and the channel's `last_seq` afterwards.
        case committed(lastSeq: Int64, results: [Result])
    }

    var keys: [String]
    var arguments: [String]
    var count: Int

    init(items: [Item], lockKey: String, token: String, fence: Int64, group: String, keys layout: WorkerKeys) {
        let channel = items[0].message.channel
        keys = [lockKey, layout.state(channel: channel), layout.history(channel: channel), items[0].message.stream,
                layout.deadSeqs(channel: channel), layout.skippedSeqs(channel: channel)]
        var arguments = [token, String(fence), group, LockKeys.releaseChannel(forLock: lockKey), String(items.count)]
        for item in items {
            arguments += [item.message.id, item.message.seq.map(String.init) ?? "", item.mode.rawValue]
            arguments += item.update.scriptArguments
        }
        self.arguments = arguments
        count = items.count
    }

    /// Decodes this channel's part of the script's reply; throws a check that failed as the server
    /// error it names, and anything else as an unexpected reply.
    func outcome(from reply: RESPValue) throws -> Outcome {
        guard let items = reply.array, items.count >= 2, let status = items[0].string else {
            throw RedisError.unexpectedReply("commit returned \(reply)")
        }
        if status == "err", let line = items[1].string { throw RedisError.server(RedisServerError(line: line)) }
        guard let n = items[1].int else { throw RedisError.unexpectedReply("commit returned \(reply)") }
        switch status {
        case "lost": return .lost
        case "stale": return .stale(recorded: n)
        case "ok":
            guard items.count == 3, let codes = items[2].string else { throw RedisError.unexpectedReply("commit returned \(reply)") }
            let results = codes.compactMap(Result.init(rawValue:))
            guard results.count == count, codes.count == count else {
                throw RedisError.unexpectedReply("commit returned \(codes.count) results for \(count) messages: \(codes)")
            }
            return .committed(lastSeq: n, results: results)
        default:
            throw RedisError.unexpectedReply("commit returned status \(status)")
        }
    }

    /// Commits `runs` in one script call; one outcome per run, in order. A run's own failure is
    /// its own; a failure of the call fails every run.
    static func commit(_ runs: [RunCommit], on client: RedisClient) async throws -> [Swift.Result<Outcome, any Error>] {
        var keys: [String] = []
        var arguments: [String] = [String(runs.count)]
        keys.reserveCapacity(6 * runs.count)
        for run in runs {
            keys += run.keys
            arguments.append(String(run.arguments.count))
            arguments += run.arguments
        }
        let reply = try await client.evaluate(WorkerScripts.commit, keys: keys, arguments: arguments)
        guard let replies = reply.array, replies.count == runs.count else {
            throw RedisError.unexpectedReply("commit of \(runs.count) channels returned \(reply)")
        }
        return zip(runs, replies).map { run, reply in Swift.Result { try run.outcome(from: reply) } }
    }

    /// Commits this run alone.
    func run(on client: RedisClient) async throws -> Outcome {
        try await Self.commit([self], on: client)[0].get()
    }
}

extension RunCommit.Outcome {
    /// How one message's attempt ended, for the handler's ``MessageHandler/finished(_:fence:outcome:)``.
    func attempt(at index: Int) -> CommitOutcome {
        switch self {
        case .lost: return .lost
        case .stale(let recorded): return .stale(recorded: recorded)
        case .committed(let lastSeq, let results):
            switch results[index] {
            case .applied: return .applied
            case .duplicate: return .duplicate
            case .skipped: return .skipped
            case .gap, .notReached: return .gap(lastSeq: lastSeq)
            }
        }
    }
}
