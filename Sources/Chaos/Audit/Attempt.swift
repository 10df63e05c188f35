/// One message's turn under a lease on a channel: the handler record joined with the commit record
/// of the same `(channel, fence, entry)`. A fence is unique per channel (every fresh claim
/// increments it), so `(channel, fence)` identifies the lease even across worker restarts; one
/// lease may carry a run of several messages, one after another.
public struct Attempt: Sendable, Equatable {
    public var consumer: String
    public var channel: String
    public var entry: String
    public var seq: Int64?
    public var fence: Int64
    public var enterMicros: Int64
    /// Handler exit, or the refused commit when the commit came late: a late write keeps the holder
    /// inside the channel until the store turned it away.
    public var endMicros: Int64
    public var status: HandledRecord.Status
    /// nil when no commit entry was recorded (the worker died, or the commit's reply was lost).
    public var outcome: CommitRecord.Outcome?

    public init(consumer: String, channel: String, entry: String, seq: Int64?, fence: Int64, enterMicros: Int64,
                endMicros: Int64, status: HandledRecord.Status, outcome: CommitRecord.Outcome?) {
        self.consumer = consumer
        self.channel = channel
        self.entry = entry
        self.seq = seq
        self.fence = fence
        self.enterMicros = enterMicros
        self.endMicros = endMicros
        self.status = status
        self.outcome = outcome
    }

    /// The attempt certainly changed nothing: the store refused its write, or it never wrote.
    public var certainlyNotApplied: Bool {
        if let outcome { return outcome != .applied }
        return status != .completed
    }

    /// Joins handler and commit records. Commits without a handler record (duplicates found at
    /// claim time) are not attempts.
    public static func join(_ events: [AuditEvent]) -> [Attempt] {
        var commits: [FenceKey: [String: CommitRecord]] = [:]
        for case .committed(let commit) in events {
            commits[FenceKey(channel: commit.channel, fence: commit.fence), default: [:]][commit.entry] = commit
        }
        return events.compactMap { event -> Attempt? in
            guard case .handled(let h) = event else { return nil }
            let commit = commits[FenceKey(channel: h.channel, fence: h.fence)]?[h.entry]
            let end = commit.map { $0.outcome.isRejection ? max(h.exitMicros, $0.atMicros) : h.exitMicros } ?? h.exitMicros
            return Attempt(consumer: h.consumer, channel: h.channel, entry: h.entry, seq: h.seq, fence: h.fence,
                           enterMicros: h.enterMicros, endMicros: end, status: h.status, outcome: commit?.outcome)
        }
    }
}

/// A lease of one channel.
public struct FenceKey: Sendable, Hashable, Codable {
    public var channel: String
    public var fence: Int64

    public init(channel: String, fence: Int64) {
        self.channel = channel
        self.fence = fence
    }
}
