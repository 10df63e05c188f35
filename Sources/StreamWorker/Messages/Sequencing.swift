/// The per-channel ordering rule, which the commit script applies atomically: a message with a
/// `seq` is applied only when it is exactly the next one.
public enum SequenceDecision: Sendable, Equatable {
    case apply
    /// Already applied (or skipped): acknowledge without applying.
    case duplicate(lastSeq: Int64)
    /// An earlier message has not been applied yet (it may be in flight on another worker).
    case gap(lastSeq: Int64)

    public static func decide(seq: Int64, lastSeq: Int64) -> SequenceDecision {
        if seq <= lastSeq { return .duplicate(lastSeq: lastSeq) }
        // `seq - 1` cannot overflow (seq > lastSeq); `lastSeq + 1` could, for a corrupt state.
        if seq - 1 == lastSeq { return .apply }
        return .gap(lastSeq: lastSeq)
    }
}
