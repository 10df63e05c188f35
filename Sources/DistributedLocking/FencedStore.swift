/// Where a fenced write goes: a state hash and, for appends, its list.
public struct FencedTarget: Sendable, Hashable {
    public var stateKey: String
    public var listKey: String?

    public init(stateKey: String, listKey: String? = nil) {
        self.stateKey = stateKey
        self.listKey = listKey
    }
}

public enum FencedWriteOutcome: Sendable, Equatable {
    case applied
    /// The target already carries a higher fence: a newer holder wrote; nothing was applied.
    case staleFence(recorded: Int64)
}

/// A store that enforces fencing itself: it applies a write only if the writer's fence is at
/// least the one recorded on the target, and records the fence with the write.
///
/// Enforcement must be atomic with the write. In SQL that is one statement, for example
/// `UPDATE channel_state SET …, fence = $1 WHERE id = $2 AND fence <= $1` (0 rows = stale).
public protocol FencedStore: Sendable {
    func apply(_ update: StateUpdate, to target: FencedTarget, fence: Int64) async throws -> FencedWriteOutcome
}
