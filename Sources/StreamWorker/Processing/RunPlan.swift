/// What one claim of a channel does with the consecutive messages queued for it: which are
/// already applied (acknowledged without the handler), which the handler runs for, and where the
/// run stops because a seq is missing.
///
/// Pure: made from the seqs alone and the `last_seq` the claim read (dead-lettered seqs just above
/// it already counted as done). The commit script re-checks every decision atomically.
struct RunPlan: Sendable, Equatable {
    enum Step: Sendable, Equatable {
        /// At or below `last_seq`: acknowledged, not applied.
        case duplicate
        /// The handler runs; `acceptingGap` when the missing seqs before it are skipped.
        case handle(acceptingGap: Bool)
    }

    /// One step per leading message of the run; the messages after them are not part of this claim.
    var steps: [Step]
    /// Set when the first message itself is behind a gap that has not timed out: nothing runs,
    /// and the channel waits for its predecessors.
    var headGap: Int64?

    /// - Parameters:
    ///   - seqs: the run's seqs in order (nil for a message without one).
    ///   - lastSeq: the channel's last applied seq, when the messages carry seqs.
    ///   - headGapTimedOut: the first message has waited out gap-timeout, so a gap before it is skipped.
    init(seqs: [Int64?], lastSeq: Int64?, headGapTimedOut: Bool) {
        var steps: [Step] = []
        var last = lastSeq ?? 0
        headGap = nil
        for (index, seq) in seqs.enumerated() {
            guard let seq else {
                steps.append(.handle(acceptingGap: false))
                continue
            }
            switch SequenceDecision.decide(seq: seq, lastSeq: last) {
            case .duplicate:
                steps.append(.duplicate)
            case .apply:
                steps.append(.handle(acceptingGap: false))
                last = seq
            case .gap where index == 0 && headGapTimedOut:
                steps.append(.handle(acceptingGap: true))
                last = seq
            case .gap(let known):
                // Later messages wait for a claim of their own; the head waits for its predecessors.
                if index == 0 { headGap = known }
                self.steps = steps
                return
            }
        }
        self.steps = steps
    }

    /// Whether the handler runs for anything in this claim.
    var handlesAny: Bool { steps.contains { $0 != .duplicate } }
}
