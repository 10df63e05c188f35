import Logging
import RedisClient

/// One stream's consumer group as `XINFO GROUPS` reports it.
struct GroupInfo: Sendable, Equatable {
    /// Entries delivered to a consumer and not acknowledged yet.
    var pending: Int64
    /// Entries not yet delivered to the group; `nil` when Redis cannot tell (after XDEL or XTRIM).
    var lag: Int64?

    /// Finds `group` in an `XINFO GROUPS` reply (a list of flat key/value lists); `nil` if it is not there.
    static func parse(_ reply: RESPValue, group: String) -> GroupInfo? {
        for item in reply.array ?? [] {
            guard let fields = try? item.hash(from: "XINFO GROUPS"), fields["name"]?.string == group else { continue }
            return GroupInfo(pending: fields["pending"]?.int ?? 0, lag: fields["lag"]?.int)
        }
        return nil
    }
}

/// Samples what the worker cannot count as it goes: the group's pending count and lag per stream
/// (one pipelined `XINFO GROUPS` per interval) and how many channels and messages are in flight.
/// What it sees about the group also feeds readiness, so a probe never has to ask Redis itself.
struct GroupSampler: Sendable {
    let client: RedisClient
    let streams: [String]
    let group: String
    let interval: Duration
    let dispatcher: ChannelDispatcher
    let metrics: WorkerMetrics
    let groupMetrics: GroupMetrics
    let health: WorkerHealth
    let logger: Logger

    /// Samples every `interval` until cancelled.
    func run() async {
        while !Task.isCancelled {
            await sample()
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }

    func sample() async {
        metrics.inFlightChannels.record(await dispatcher.activeChannels)
        metrics.inFlightMessages.record(await dispatcher.inFlight)
        let results: [Result<RESPValue, RedisError>]
        do {
            results = try await client.pipeline(streams.map { RedisCommand("XINFO", "GROUPS", $0) })
        } catch {
            health.update { $0.sampleFailed(error: error) }
            logger.debug("Sampling the consumer group failed", metadata: ["error": "\(error)"])
            return
        }
        var exists: [String: Bool] = [:]
        for (stream, result) in zip(streams, results) {
            switch result {
            case .success(let reply):
                let info = GroupInfo.parse(reply, group: group)
                exists[stream] = info != nil
                if let info { groupMetrics.record(stream: stream, pending: info.pending, lag: info.lag) }
            case .failure(.server(let reply)) where reply.message.lowercased().contains("no such key"):
                // The stream, and with it the group, is gone.
                exists[stream] = false
            case .failure(.server(let reply)):
                // Redis answered (for example NOPERM under a narrow ACL): it is reachable, and the
                // reader is the judge of the group. Only the stats are missing.
                logger.debug("XINFO GROUPS refused", metadata: ["stream": "\(stream)", "error": "\(reply)"])
            case .failure(let error):
                health.update { $0.sampleFailed(error: error) }
                return
            }
        }
        health.update { $0.sampled(groupExists: exists) }
    }
}
