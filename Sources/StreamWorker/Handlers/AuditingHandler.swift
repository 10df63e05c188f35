import DistributedLocking
import Foundation
import RedisClient

/// Wraps a handler and records, per attempt, when this worker entered and left the channel's
/// critical section, and what the commit script then did, to an audit stream. Chaos runs and pool
/// tests use it to prove exclusion and to count late writes the store refused.
/// Enabled in `stream-consumer` by the `SG_AUDIT_STREAM` environment variable
/// (`SG_AUDIT_JITTER_MS` adds jitter, `SG_AUDIT_SAMPLE=N` records one message in N).
///
/// Three kinds of entries, all with `consumer, channel, entry, seq, fence` (the fence identifies
/// the lease: it grows with every fresh claim of the channel):
/// - `kind=enter`: `at_us`, written as the handler starts, so an observer can tell who is inside a
///   channel right now (chaos pauses such a worker);
/// - `kind=handle`: `enter_us, exit_us, status` where status is `completed`, `cancelled` (the lease
///   was lost and the handler cancelled) or `failed`;
/// - `kind=commit`: `at_us, outcome` where outcome is the commit script's answer (`applied`,
///   `duplicate`, `lost`, `stale`, `gap`) or `lease_lost` when the lease ended before the commit was sent.
public struct AuditingHandler: MessageHandler {
    public let inner: any MessageHandler
    public let client: RedisClient
    public let stream: String
    public let consumer: String
    /// Extra random time spent inside the critical section, to shake out interleavings.
    public let jitter: Duration
    /// Record one message in this many (1: every message, as exclusion checks need). Benchmarks
    /// sample, so the audit's own XADDs do not dominate what they measure. The choice depends on
    /// the entry id only, so a sampled message has all its records, from every attempt.
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

    private func sampled(_ message: InboundMessage) -> Bool {
        guard sampleEvery > 1 else { return true }
        // FNV-1a: stable across processes, unlike Hasher.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in message.id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash % UInt64(sampleEvery) == 0
    }

    public var needsState: Bool { inner.needsState }

    public func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
        guard sampled(message) else { return try await handleJittered(message, state: state) }
        return try await handleRecorded(message, state: state)
    }

    private func handleJittered(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
        let update = try await inner.handle(message, state: state)
        if jitter > .zero { try await Task.sleep(for: jitter * Double.random(in: 0...1)) }
        return update
    }

    /// Out of line: its locals would otherwise sit in every attempt's async frame, sampled or not.
    @inline(never)
    private func handleRecorded(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
        let enter = Self.nowMicros()
        try await record(message, ["at_us", String(enter)], kind: "enter")
        let result: Result<StateUpdate, any Error>
        do {
            result = .success(try await handleJittered(message, state: state))
        } catch {
            result = .failure(error)
        }
        let exit = Self.nowMicros()
        let status: String
        switch result {
        case .success: status = "completed"
        case .failure: status = Task.isCancelled ? "cancelled" : "failed"
        }
        // A cancelled attempt is recorded too (pool connections ignore cancellation): it is the
        // half of an overlap that a paused or robbed holder leaves behind.
        var recordError: (any Error)?
        do {
            try await record(message, ["enter_us", String(enter), "exit_us", String(exit), "status", status], kind: "handle")
        } catch {
            recordError = error
        }
        let update = try result.get()
        if let recordError { throw recordError }
        return update
    }

    public func finished(_ message: InboundMessage, fence: Int64, outcome: AttemptOutcome) async {
        await inner.finished(message, fence: fence, outcome: outcome)
        guard sampled(message) else { return }
        // Best effort: a missing commit entry only leaves that attempt's outcome unknown to the checker.
        _ = try? await record(message, ["at_us", String(Self.nowMicros()), "outcome", Self.label(outcome)], kind: "commit", fence: fence)
    }

    private func record(_ message: InboundMessage, _ extra: [String], kind: String, fence: Int64? = nil) async throws {
        let fence = fence ?? LeaseContext.fence ?? 0
        let fields = ["kind", kind, "consumer", consumer, "channel", message.channel, "entry", message.id,
                      "seq", message.seq.map(String.init) ?? "", "fence", String(fence)] + extra
        let command = RedisCommand("XADD", [stream, "*"] + fields)
        do {
            try await client.send(command)
        } catch let error as RedisError where error.isConnectionError {
            // A process resumed after a pause finds its connections dropped; the checker needs the
            // record (a repeated one is harmless: records join by channel, fence and entry).
            try await client.send(command)
        }
    }

    static func label(_ outcome: AttemptOutcome) -> String {
        guard case .committed(let outcome) = outcome else { return "lease_lost" }
        switch outcome {
        case .applied: return "applied"
        case .duplicate: return "duplicate"
        case .skipped: return "skipped"
        case .lost: return "lost"
        case .stale: return "stale"
        case .gap: return "gap"
        }
    }

    /// Wall-clock microseconds: comparable across the worker processes of one machine.
    static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}
