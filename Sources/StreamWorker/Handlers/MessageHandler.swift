import DistributedLocking
import Foundation

/// User code that turns one message and its channel's state into a declarative state update.
///
/// Runs while the channel's lock is held; it is cancelled if the lease is lost, and its update
/// is applied only through the atomic commit. It may run more than once for one message (after
/// a crash or a lost lease), so it should not have side effects outside the update.
public protocol MessageHandler: Sendable {
    /// Whether ``handle(_:state:)`` reads the state; if not, the worker skips loading it.
    var needsState: Bool { get }
    func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate
    /// Told how an attempt at a message under the lease with `fence` ended: what the commit script
    /// answered, or that the lease was lost before the commit was sent. Audit trails use it to count
    /// late writes that were refused; the default does nothing.
    func finished(_ message: InboundMessage, fence: Int64, outcome: AttemptOutcome) async
}

/// How one attempt at a message ended, as the worker saw it.
public enum AttemptOutcome: Sendable, Equatable {
    /// The commit script answered.
    case committed(CommitOutcome)
    /// The lease ended (expired, stolen) before the commit was sent: nothing was written.
    case leaseLost
}

extension MessageHandler {
    public var needsState: Bool { true }
    public func finished(_ message: InboundMessage, fence: Int64, outcome: AttemptOutcome) async {}
}

/// A channel's state hash as the handler sees it.
public struct ChannelState: Sendable, Equatable {
    public var fields: [String: String]

    public init(fields: [String: String] = [:]) {
        self.fields = fields
    }

    public var count: Int64 { Int64(fields["count"] ?? "") ?? 0 }
    public var lastSeq: Int64 { Int64(fields["last_seq"] ?? "") ?? 0 }
    public var lastID: String? { fields["last_id"] }
    public var fence: Int64 { Int64(fields["fence"] ?? "") ?? 0 }

    /// The state after `update` was committed for the message `id` with `seq`: what the next
    /// message of the same run sees, before anything is written.
    mutating func apply(_ update: StateUpdate, seq: Int64?, id: String) {
        for (field, value) in update.setFields { fields[field] = value }
        for (field, delta) in update.increment { fields[field] = String((Int64(fields[field] ?? "") ?? 0) &+ delta) }
        if let seq { fields["last_seq"] = String(seq) }
        fields["last_id"] = id
    }
}

/// The built-in handler: appends `{"id", "seq", "fields"}` to the channel's history (capped)
/// and counts messages. `workMs` simulates a long turn such as an inference call.
public struct HistoryHandler: MessageHandler {
    public var historyMax: Int
    public var work: Duration

    public init(historyMax: Int = 100, work: Duration = .zero) {
        self.historyMax = historyMax
        self.work = work
    }

    public var needsState: Bool { false }

    public func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
        if work > .zero { try await Task.sleep(for: work) }
        return StateUpdate(increment: ["count": 1], append: [Self.historyEntry(message)], listCap: historyMax)
    }

    /// One JSON object per message, keys sorted: `{"fence":…,"fields":{…},"id":…,"seq":…}`. Field
    /// values that are not UTF-8 are base64 with a `b64:` prefix; a repeated field name keeps its
    /// last value. `fence` is the lease the entry was applied under (from ``LeaseContext``), so the
    /// history itself shows which holder wrote each entry.
    public static func historyEntry(_ message: InboundMessage) -> String {
        var latest: [[UInt8]: [UInt8]] = [:]
        for field in message.fields { latest[field.name] = field.value }
        let names = latest.keys.sorted { $0.lexicographicallyPrecedes($1) }
        var json = JSONText(capacity: 64 + message.fields.reduce(0) { $0 + $1.name.count + $1.value.count + 8 })
        json.raw("{")
        if let fence = LeaseContext.fence {
            json.raw("\"fence\":")
            json.number(fence)
            json.raw(",")
        }
        json.raw("\"fields\":{")
        for (index, name) in names.enumerated() {
            if index > 0 { json.raw(",") }
            json.string(name)
            json.raw(":")
            let value = latest[name] ?? []
            if String(validating: value, as: UTF8.self) != nil {
                json.string(value)
            } else {
                json.string(Array("b64:".utf8) + Array(Data(value).base64EncodedString().utf8))
            }
        }
        json.raw("},\"id\":")
        json.string(message.id.utf8)
        json.raw(",\"seq\":")
        if let seq = message.seq { json.number(seq) } else { json.raw("null") }
        json.raw("}")
        return json.string
    }
}

/// What a handler may know about the lease it runs under.
public enum LeaseContext {
    /// The fence of the lock held for the current message (so a handler can pass it downstream).
    @TaskLocal public static var fence: Int64?
}
