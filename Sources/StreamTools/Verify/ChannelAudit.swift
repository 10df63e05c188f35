/// What one channel's keys and streams say, read by ``Verifier`` and judged by ``ChannelAudit``.
public struct ChannelRecord: Sendable, Equatable {
    /// One entry of the history list.
    public enum HistoryItem: Sendable, Equatable {
        case seq(Int64)
        /// Applied without a seq.
        case unsequenced
        /// Not a JSON object with a readable `seq`.
        case unreadable
    }

    public var channel: String
    /// The producer's seq counter: seqs 1…counter were stamped.
    public var counter: Int64?
    /// Without a counter: the seqs of the channel's entries still in the stream.
    public var streamSeqs: [Int64] = []
    public var lastSeq: Int64?
    public var count: Int64?
    public var history: [HistoryItem] = []
    /// Seqs found in the dead-letter stream.
    public var deadLettered: Set<Int64> = []
    /// Dead letters of this channel without a seq (counted, never compared).
    public var deadUnsequenced = 0
    /// Original seqs of dead letters that were requeued (and so restamped).
    public var requeued: Set<Int64> = []

    public init(channel: String) {
        self.channel = channel
    }
}

/// The verdict on one channel: every produced seq must be applied exactly once, in order, or be
/// dead-lettered (or requeued under a new seq).
///
/// A history trimmed at `history-max` is not a gap: the newest entries are checked seq by seq, and
/// what was trimmed is checked through `count`. Only a full list (`history-max` entries) counts as
/// trimmed; a shorter list that holds fewer entries than `count` lost some.
public struct ChannelAudit: Sendable, Equatable {
    public var channel: String
    /// Seqs the producer stamped (or the stream holds), as far as verify can tell.
    public var produced: Int64 = 0
    public var applied = 0
    /// Produced seqs that are not applied, dead-lettered or requeued, at or below `last_seq`
    /// (or counted missing through `count`): the state has moved past them without them.
    public var lost: Int64 = 0
    /// Produced seqs above `last_seq`: not applied yet (a worker may still be behind) or never will be.
    public var notApplied: Int64 = 0
    /// Extra applications of one seq.
    public var duplicated: Int64 = 0
    /// Entries applied after an entry with a higher seq.
    public var outOfOrder = 0
    public var deadLettered = 0
    /// Applied seqs that no producer stamped (above the counter), or a `last_seq` above it.
    public var unexpected = 0
    /// History entries verify could not read.
    public var unreadable = 0
    public var historyTrimmed = false
    /// The first few lost seqs, for the report.
    public var lostExamples: [Int64] = []
    /// One human line per problem.
    public var problems: [String] = []

    public var ok: Bool { lost == 0 && notApplied == 0 && duplicated == 0 && outOfOrder == 0 && unexpected == 0 && unreadable == 0 }

    /// Seq values are bounded well below this (2^53 − 1); anything outside is treated as unreadable
    /// so the arithmetic below can never overflow.
    static let maxSeq: Int64 = 1 << 53

    public init(_ record: ChannelRecord, historyMax: Int) {
        channel = record.channel
        let seqs = record.history.compactMap { item -> Int64? in if case .seq(let s) = item { return s } else { return nil } }
        unreadable = record.history.filter { $0 == .unreadable }.count + seqs.filter { $0 < 1 || $0 > Self.maxSeq }.count
        let valid = seqs.filter { $0 >= 1 && $0 <= Self.maxSeq }
        if unreadable > 0 { problems.append("\(unreadable) history entries are not readable") }

        // Duplicates and order, over what the history holds.
        var seen = Set<Int64>()
        var highest: Int64 = 0
        for seq in valid {
            if !seen.insert(seq).inserted {
                duplicated += 1
            } else if seq < highest {
                outOfOrder += 1
            }
            highest = max(highest, seq)
        }
        if duplicated > 0 { problems.append("\(duplicated) seqs applied more than once") }
        if outOfOrder > 0 { problems.append("\(outOfOrder) entries applied after a higher seq") }
        applied = seen.count

        let accounted = record.deadLettered.union(record.requeued)
        deadLettered = record.deadLettered.count + record.deadUnsequenced
        let historyLength = record.history.count
        let count = max(0, record.count ?? Int64(historyLength))
        let last = min(max(0, record.lastSeq ?? valid.max() ?? 0), Self.maxSeq)
        historyTrimmed = historyMax > 0 && historyLength >= historyMax && count > Int64(historyLength)
        // The oldest seq the history can vouch for; below it only `count` can tell.
        let windowStart: Int64 = historyTrimmed ? (valid.min() ?? last + 1) : 1
        let done = seen.union(accounted)

        if let counter = record.counter.map({ min(max(0, $0), Self.maxSeq) }) {
            produced = counter
            unexpected = seen.filter { $0 > counter }.count + (last > counter ? 1 : 0)
            if unexpected > 0 { problems.append("applied seqs above the producer's counter \(counter) (last_seq \(last))") }
            let top = min(last, counter)
            if top >= windowStart {
                let present = done.filter { $0 >= windowStart && $0 <= top }.sorted()
                lost = (top - windowStart + 1) - Int64(present.count)
                lostExamples = Self.holes(from: windowStart, to: top, present: present, limit: 5)
            }
            if counter > last {
                notApplied = (counter - last) - Int64(accounted.filter { $0 > last && $0 <= counter }.count)
            }
            if historyTrimmed {
                let hidden = count - Int64(historyLength)
                let expectedHidden = (windowStart - 1) - Int64(accounted.filter { $0 < windowStart }.count)
                if hidden > expectedHidden {
                    duplicated += hidden - expectedHidden
                    problems.append("count says \(hidden - expectedHidden) more messages were applied than the seqs below the history's oldest entry")
                } else if hidden < expectedHidden {
                    lost += expectedHidden - hidden
                    problems.append("count says \(expectedHidden - hidden) of the seqs below the history's oldest entry were never applied")
                }
            }
        } else {
            let stamped = Set(record.streamSeqs.filter { $0 >= 1 && $0 <= Self.maxSeq })
            produced = Int64(stamped.count)
            let missing = stamped.filter { $0 >= windowStart && $0 <= last && !done.contains($0) }.sorted()
            lost = Int64(missing.count)
            lostExamples = Array(missing.prefix(5))
            notApplied = Int64(stamped.filter { $0 > last && !accounted.contains($0) }.count)
            if stamped.isEmpty, last >= windowStart {
                // Nothing to compare with but the state itself: seqs 1…last_seq must all be there.
                let present = done.filter { $0 >= windowStart && $0 <= last }.sorted()
                lost = (last - windowStart + 1) - Int64(present.count)
                lostExamples = Self.holes(from: windowStart, to: last, present: present, limit: 5)
            }
        }
        if !historyTrimmed, count > Int64(historyLength), historyLength < historyMax {
            problems.append("count is \(count) but the history holds \(historyLength) entries and is not full (history-max \(historyMax))")
            if lost == 0 { lost = count - Int64(historyLength) }
        }
        if lost > 0 {
            let examples = lostExamples.map(String.init).joined(separator: ", ")
            problems.append("\(lost) seqs lost" + (examples.isEmpty ? "" : " (e.g. \(examples))"))
        }
        if notApplied > 0 { problems.append("\(notApplied) seqs above last_seq \(last) not applied (yet?)") }
    }

    /// The first `limit` numbers of `from…to` that are not in `present` (sorted, within the range).
    static func holes(from: Int64, to: Int64, present: [Int64], limit: Int) -> [Int64] {
        var holes: [Int64] = []
        var next = from
        for seq in present where holes.count < limit {
            while next < seq, holes.count < limit {
                holes.append(next)
                next += 1
            }
            next = seq + 1
        }
        while next <= to, holes.count < limit {
            holes.append(next)
            next += 1
        }
        return holes
    }
}
