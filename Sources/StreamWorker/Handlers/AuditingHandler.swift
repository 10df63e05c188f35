import DistributedLocking
import Foundation
import RedisClient

/// Wraps a handler and records, per message, when this worker entered and left the channel's
/// critical section, to an audit stream. Chaos runs and pool tests use it to prove exclusion.
/// Enabled in `stream-consumer` by the `SG_AUDIT_STREAM` environment variable
/// (`SG_AUDIT_JITTER_MS` adds jitter, `SG_AUDIT_SAMPLE=N` records one message in N).
public struct AuditingHandler: MessageHandler {
    public let inner: any MessageHandler
    public let client: RedisClient
    public let stream: String
    public let consumer: String
    /// Extra random time spent inside the critical section, to shake out interleavings.
    public let jitter: Duration
    /// Record one message in this many, at random (1: every message, as exclusion checks need).
    /// Benchmarks sample, so the audit's own XADD does not dominate what they measure.
    public let sampleEvery: Int

    public init(wrapping inner: any MessageHandler, client: RedisClient, stream: String, consumer: String,
                jitter: Duration = .zero, sampleEvery: Int = 1) {
        self.inner = inner
        self.client = client
        self.stream = stream
        self.consumer = consumer
        self.jitter = jitter
        self.sampleEvery = max(1, sampleEvery)
    }

    public var needsState: Bool { inner.needsState }

    public func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
        let enter = Self.nowMicros()
        let update = try await inner.handle(message, state: state)
        if jitter > .zero { try await Task.sleep(for: jitter * Double.random(in: 0...1)) }
        let exit = Self.nowMicros()
        if sampleEvery > 1, Int.random(in: 0..<sampleEvery) != 0 { return update }
        try await client.send(
            "XADD", stream, "*", "consumer", consumer, "channel", message.channel, "entry", message.id,
            "seq", message.seq.map(String.init) ?? "", "fence", String(LeaseContext.fence ?? 0),
            "enter_us", String(enter), "exit_us", String(exit))
        return update
    }

    /// Wall-clock microseconds: comparable across the worker processes of one machine.
    static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}
