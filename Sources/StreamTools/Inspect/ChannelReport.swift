/// What `sgctl inspect channel ID` shows.
public struct ChannelReport: Sendable, Equatable {
    public var channel: String
    /// The state hash, in the order Redis returned it.
    public var state: [(String, String)]
    /// The fence counter: the number of fresh claims so far.
    public var fenceCounter: Int64?
    public var lock: HeldLock?
    /// The producer's seq counter (the last seq handed out).
    public var producedSeq: Int64?
    /// Seqs dead-lettered ahead of their turn.
    public var deadSeqs: [Int64]
    public var historyLength: Int64
    /// The newest history entries, oldest first, as stored (one JSON object each).
    public var history: [String]

    public init(channel: String, state: [(String, String)], fenceCounter: Int64?, lock: HeldLock?, producedSeq: Int64?,
                deadSeqs: [Int64], historyLength: Int64, history: [String]) {
        self.channel = channel
        self.state = state
        self.fenceCounter = fenceCounter
        self.lock = lock
        self.producedSeq = producedSeq
        self.deadSeqs = deadSeqs
        self.historyLength = historyLength
        self.history = history
    }

    public static func == (a: ChannelReport, b: ChannelReport) -> Bool { a.json == b.json }

    public func stateValue(_ name: String) -> String? { state.first { $0.0 == name }?.1 }

    public var lastSeq: Int64? { stateValue("last_seq").flatMap { Int64($0) } }
    public var committedFence: Int64? { stateValue("fence").flatMap { Int64($0) } }

    public var json: JSONValue {
        .object([
            ("channel", .string(channel)),
            ("state", .object(state.map { ($0.0, .string($0.1)) })),
            ("last_seq", JSONValue(lastSeq)),
            ("committed_fence", JSONValue(committedFence)),
            ("fence_counter", JSONValue(fenceCounter)),
            ("produced_seq", JSONValue(producedSeq)),
            ("lock", lock?.json ?? .null),
            ("dead_seqs", .array(deadSeqs.map { JSONValue($0) })),
            ("history_length", JSONValue(historyLength)),
            // History items are stored JSON: embed them as values, or as text if one is not.
            ("history", .array(history.map { (try? JSONParser.parse($0)) ?? .string($0) })),
        ])
    }

    public var text: String {
        let e = TerminalText.escape
        var lines = ["channel \(e(channel))"]
        lines.append("  last seq \(lastSeq.map(String.init) ?? "-"), produced seq \(producedSeq.map(String.init) ?? "-")"
                     + (deadSeqs.isEmpty ? "" : ", dead-lettered ahead: \(deadSeqs.map(String.init).joined(separator: ","))"))
        lines.append("  fence: committed \(committedFence.map(String.init) ?? "-"), counter \(fenceCounter.map(String.init) ?? "-")")
        if let lock {
            lines.append("  lock held by \(e(lock.token)), ttl \(lock.ttlMilliseconds.map(GroupReport.formatMilliseconds) ?? "no expiry"), fence \(lock.fence.map(String.init) ?? "-")")
        } else {
            lines.append("  lock free")
        }
        if state.isEmpty {
            lines.append("  state: none")
        } else {
            lines.append("  state:")
            lines += state.map { "    \(e($0.0)) = \(e($0.1))" }
        }
        lines.append("  history: \(historyLength) entries" + (history.isEmpty ? "" : ", newest \(history.count):"))
        lines += history.map { "    " + e($0) }
        return lines.joined(separator: "\n")
    }
}
