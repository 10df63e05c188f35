import StreamWorker

/// What a replay does with each entry's `seq`.
public enum SeqMode: String, Sendable, CaseIterable {
    /// Keep the seqs as the producer stamped them. The target's state must not have reached them
    /// yet, or the worker would acknowledge them as duplicates without applying anything; a
    /// replay that would do so is refused (see ``SeqPlan``).
    case keep
    /// Give each entry its channel's next seq in the target (its seq counter, raised above the
    /// state's `last_seq` when behind), atomically with the XADD, so the entries apply after
    /// whatever the target has already applied, in their original order.
    case restamp
}

extension ExportedEntry {
    /// The channel and seq the worker will read from this entry, by the worker's own rules; nil
    /// for an entry the worker would dead-letter (no channel, an invalid seq).
    public func channelAndSeq(channelField: String) -> (channel: String, seq: Int64?)? {
        let entry = StreamEntry(stream: "", id: id ?? "", fields: fields)
        guard case .success(let message) = InboundMessage.parse(entry, channelField: channelField, maxEntryBytes: .max) else { return nil }
        return (message.channel, message.seq)
    }

    /// Whether the entry belongs to `channel` (`--channel`).
    public func belongs(to channel: String, channelField: String) -> Bool {
        let name = Array(channelField.utf8)
        return fields.first { $0.name == name }?.value == Array(channel.utf8)
    }
}

/// The seqs a replay with kept seqs would add, per channel, checked against the target's state
/// before anything is written: a replay that the worker would drop as duplicates, or that would
/// leave it waiting at a gap, is refused with the reason.
public struct SeqPlan: Sendable, Equatable {
    public struct Span: Sendable, Equatable {
        public var first: Int64
        public var last: Int64
        public var entries: Int
    }

    public private(set) var channels: [String: Span] = [:]

    public init() {}

    /// Counts an entry the replay will add.
    public mutating func note(channel: String, seq: Int64) {
        if var span = channels[channel] {
            span.first = min(span.first, seq)
            span.last = max(span.last, seq)
            span.entries += 1
            channels[channel] = span
        } else {
            channels[channel] = Span(first: seq, last: seq, entries: 1)
        }
    }

    /// Problems against `reached`: per channel the highest seq the target has applied or
    /// stamped (`max(last_seq, seq counter)`; missing means 0). Sorted by channel.
    public func conflicts(reached: [String: Int64]) -> [SeqConflict] {
        channels.keys.sorted().compactMap { channel in
            let span = channels[channel]!
            let target = reached[channel] ?? 0
            if span.first <= target {
                return SeqConflict(channel: channel, replayFirst: span.first, replayLast: span.last, target: target, kind: .duplicates)
            }
            if span.first > target + 1 {
                return SeqConflict(channel: channel, replayFirst: span.first, replayLast: span.last, target: target, kind: .gap)
            }
            return nil
        }
    }
}

/// Why a channel's entries cannot be replayed with their seqs kept.
public struct SeqConflict: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The target already reached the replay's first seq: those entries would be acknowledged as duplicates.
        case duplicates
        /// The target is below the replay's first seq: the worker would wait `gap-timeout`, then skip the missing seqs.
        case gap
    }

    public var channel: String
    public var replayFirst: Int64
    public var replayLast: Int64
    public var target: Int64
    public var kind: Kind

    public var description: String {
        switch kind {
        case .duplicates:
            let dropped = min(replayLast, target) - replayFirst + 1
            return "channel \(channel): the target is at seq \(target) and the replay holds seqs \(replayFirst)…\(replayLast); "
                + "\(dropped) of them would be acknowledged as duplicates without being applied"
        case .gap:
            return "channel \(channel): the target is at seq \(target) and the replay starts at seq \(replayFirst); "
                + "the worker would wait gap-timeout and then skip \(replayFirst - target - 1) seqs"
        }
    }

    /// The refusal printed for a whole plan (at most `limit` channels listed).
    public static func refusal(_ conflicts: [SeqConflict], keyPrefix: String, limit: Int = 10) -> String {
        var lines = ["refusing to replay with kept seqs into key prefix '\(keyPrefix)': \(conflicts.count) "
            + "\(conflicts.count == 1 ? "channel does" : "channels do") not continue where the target's state is"]
        lines += conflicts.prefix(limit).map { "  " + $0.description }
        if conflicts.count > limit { lines.append("  … and \(conflicts.count - limit) more") }
        lines.append("Nothing was written. Use --seq restamp to apply the entries after the target's state, "
            + "or replay into a fresh --namespace (docs/staging.md).")
        return lines.joined(separator: "\n")
    }
}

extension StreamImporter {
    /// Notes in `plan` the seqs this importer would add from `entries` (with kept ids, entries
    /// already present are not added again). Reads only.
    public func notePlan(_ entries: [ExportedEntry], into plan: inout SeqPlan, predictedLastIDs: inout [String: StreamID]) async throws {
        guard let target, !entries.isEmpty else { return }
        let probe = StreamImporter(client: client, stream: stream, mode: mode, dryRun: true, target: target)
        let outcomes = try await probe.add(entries, predictedLastIDs: &predictedLastIDs)
        for (entry, outcome) in zip(entries, outcomes) {
            guard case .wouldAdd = outcome, case let (channel, seq?)? = entry.channelAndSeq(channelField: target.channelField) else { continue }
            plan.note(channel: channel, seq: seq)
        }
    }

    /// The channels of `plan` that do not continue where the target's state is.
    public func conflicts(_ plan: SeqPlan) async throws -> [SeqConflict] {
        plan.conflicts(reached: try await reachedSeqs(channels: plan.channels.keys.sorted()))
    }
}
