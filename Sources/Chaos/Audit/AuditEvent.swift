/// One entry of the audit stream that `AuditingHandler` writes (see its documentation for the fields).
public enum AuditEvent: Sendable, Equatable {
    /// A worker started the handler under the lease `(channel, fence)` at `atMicros`.
    case entered(consumer: String, lease: FenceKey, atMicros: Int64)
    case handled(HandledRecord)
    case committed(CommitRecord)

    /// Decodes an entry's fields; nil for entries that are not audit records. Entries without a
    /// `kind` are handler records from before commit outcomes were audited.
    public init?(fields: [String: String]) {
        guard let consumer = fields["consumer"], let channel = fields["channel"], let entry = fields["entry"],
              let fence = fields["fence"].flatMap({ Int64($0) }) else { return nil }
        let seq = fields["seq"].flatMap { Int64($0) }
        switch fields["kind"] ?? "handle" {
        case "enter":
            guard let at = fields["at_us"].flatMap({ Int64($0) }) else { return nil }
            self = .entered(consumer: consumer, lease: FenceKey(channel: channel, fence: fence), atMicros: at)
        case "handle":
            guard let enter = fields["enter_us"].flatMap({ Int64($0) }), let exit = fields["exit_us"].flatMap({ Int64($0) }) else { return nil }
            let status = fields["status"].flatMap(HandledRecord.Status.init(rawValue:)) ?? .completed
            self = .handled(HandledRecord(consumer: consumer, channel: channel, entry: entry, seq: seq, fence: fence,
                                          enterMicros: enter, exitMicros: exit, status: status))
        case "commit":
            guard let at = fields["at_us"].flatMap({ Int64($0) }),
                  let outcome = fields["outcome"].flatMap(CommitRecord.Outcome.init(rawValue:)) else { return nil }
            self = .committed(CommitRecord(consumer: consumer, channel: channel, entry: entry, seq: seq, fence: fence,
                                           atMicros: at, outcome: outcome))
        default:
            return nil
        }
    }
}

extension AuditEvent {
    /// Workers inside a channel at the end of `events` (a recent stretch of the trail, oldest first):
    /// they wrote an enter record and no handler record for the same lease yet.
    public static func workersInside(_ events: [AuditEvent]) -> Set<String> {
        var inside: [FenceKey: String] = [:]
        for event in events {
            switch event {
            case .entered(let consumer, let lease, _): inside[lease] = consumer
            case .handled(let h): inside[FenceKey(channel: h.channel, fence: h.fence)] = nil
            case .committed: break
            }
        }
        return Set(inside.values)
    }
}

/// A worker ran the handler for one message under the lease with `fence`.
public struct HandledRecord: Sendable, Equatable {
    public enum Status: String, Sendable {
        case completed
        /// The lease was lost (stolen, expired, paused past its TTL) and the handler cancelled.
        case cancelled
        case failed
    }

    public var consumer: String
    public var channel: String
    public var entry: String
    public var seq: Int64?
    public var fence: Int64
    public var enterMicros: Int64
    public var exitMicros: Int64
    public var status: Status

    public init(consumer: String, channel: String, entry: String, seq: Int64?, fence: Int64,
                enterMicros: Int64, exitMicros: Int64, status: Status = .completed) {
        self.consumer = consumer
        self.channel = channel
        self.entry = entry
        self.seq = seq
        self.fence = fence
        self.enterMicros = enterMicros
        self.exitMicros = exitMicros
        self.status = status
    }
}

/// How an attempt under the lease with `fence` ended: the commit script's answer, or lease loss before it.
public struct CommitRecord: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case applied, duplicate, gap
        /// Its seq was skipped after gap-timeout before it arrived: not applied, dead-lettered.
        case skipped
        /// The lock no longer held the writer's token: refused.
        case lost
        /// A newer holder had already committed with a higher fence: refused.
        case stale
        /// The holder saw its lease end before sending the commit: nothing written.
        case leaseLost = "lease_lost"

        /// Refused because the writer's lease had ended: the late writes the store must catch.
        public var isRejection: Bool { self == .lost || self == .stale }
    }

    public var consumer: String
    public var channel: String
    public var entry: String
    public var seq: Int64?
    public var fence: Int64
    public var atMicros: Int64
    public var outcome: Outcome

    public init(consumer: String, channel: String, entry: String, seq: Int64?, fence: Int64, atMicros: Int64, outcome: Outcome) {
        self.consumer = consumer
        self.channel = channel
        self.entry = entry
        self.seq = seq
        self.fence = fence
        self.atMicros = atMicros
        self.outcome = outcome
    }
}
