/// A consumer of a group, as XINFO CONSUMERS reports it.
public struct ConsumerInfo: Sendable, Equatable {
    public var name: String
    public var pending: Int64
    public var idleMilliseconds: Int64

    public init(name: String, pending: Int64, idleMilliseconds: Int64) {
        self.name = name
        self.pending = pending
        self.idleMilliseconds = idleMilliseconds
    }
}

/// A channel lock that was held when it was looked at.
public struct HeldLock: Sendable, Equatable {
    public var channel: String
    public var key: String
    /// The holder's token (the holder's identity; it is not a secret).
    public var token: String
    /// Remaining lease in milliseconds; nil when the key has no expiry (someone SET it by hand).
    public var ttlMilliseconds: Int64?
    /// The holder's fence: the fence counter, which the holder's claim was the last to increment.
    public var fence: Int64?
    /// The fence of the last accepted commit on the channel.
    public var committedFence: Int64?

    public init(channel: String, key: String, token: String, ttlMilliseconds: Int64?, fence: Int64?, committedFence: Int64?) {
        self.channel = channel
        self.key = key
        self.token = token
        self.ttlMilliseconds = ttlMilliseconds
        self.fence = fence
        self.committedFence = committedFence
    }

    public var json: JSONValue {
        .object([
            ("channel", .string(channel)), ("key", .string(key)), ("token", .string(token)),
            ("ttl_ms", JSONValue(ttlMilliseconds)), ("fence", JSONValue(fence)), ("committed_fence", JSONValue(committedFence)),
        ])
    }
}

/// One partition stream of a partitioned group.
public struct PartitionRow: Sendable, Equatable {
    public var partition: Int
    public var stream: String
    /// The consumer that acquired the partition last; the lease, not this record, decides who reads.
    public var owner: String?
    public var pending: Int64
    public var lag: Int64?
    public var lastDeliveredID: String

    public init(partition: Int, stream: String, owner: String?, pending: Int64, lag: Int64?, lastDeliveredID: String) {
        self.partition = partition
        self.stream = stream
        self.owner = owner
        self.pending = pending
        self.lag = lag
        self.lastDeliveredID = lastDeliveredID
    }

    var json: JSONValue {
        .object([("partition", JSONValue(partition)), ("stream", .string(stream)), ("owner", owner.map(JSONValue.string) ?? .null),
                 ("pending", JSONValue(pending)), ("lag", JSONValue(lag)), ("last_delivered_id", .string(lastDeliveredID))])
    }
}

/// What `sgctl inspect --stream S --group G` shows.
public struct GroupReport: Sendable, Equatable {
    public var stream: String
    public var group: String
    public var length: Int64
    public var lastDeliveredID: String
    public var pending: Int64
    /// Entries not yet delivered to the group.
    public var lag: Int64?
    public var consumers: [ConsumerInfo]
    public var locks: [HeldLock]
    public var deadLetters: Int
    public var topReasons: [(reason: String, count: Int)]
    /// How many dead letters the reason counts looked at (the newest ones).
    public var reasonSample: Int
    public var requeued: Int
    /// One row per partition stream; empty for the single-stream layout.
    public var partitions: [PartitionRow] = []

    public init(stream: String, group: String, length: Int64, lastDeliveredID: String, pending: Int64, lag: Int64?,
                consumers: [ConsumerInfo], locks: [HeldLock], deadLetters: Int, topReasons: [(reason: String, count: Int)],
                reasonSample: Int, requeued: Int) {
        self.stream = stream
        self.group = group
        self.length = length
        self.lastDeliveredID = lastDeliveredID
        self.pending = pending
        self.lag = lag
        self.consumers = consumers
        self.locks = locks
        self.deadLetters = deadLetters
        self.topReasons = topReasons
        self.reasonSample = reasonSample
        self.requeued = requeued
    }

    public static func == (a: GroupReport, b: GroupReport) -> Bool {
        a.json == b.json
    }

    public var json: JSONValue {
        .object([
            ("stream", .string(stream)), ("group", .string(group)), ("length", JSONValue(length)),
            ("last_delivered_id", .string(lastDeliveredID)), ("pending", JSONValue(pending)), ("lag", JSONValue(lag)),
            ("consumers", .array(consumers.map {
                .object([("name", .string($0.name)), ("pending", JSONValue($0.pending)), ("idle_ms", JSONValue($0.idleMilliseconds))])
            })),
            ("partitions", .array(partitions.map(\.json))),
            ("locks", .array(locks.map(\.json))),
            ("dead_letters", .object([
                ("count", JSONValue(deadLetters)),
                ("reasons", .object(topReasons.map { ($0.reason, JSONValue($0.count)) })),
                ("reason_sample", JSONValue(reasonSample)),
                ("requeued", JSONValue(requeued)),
            ])),
        ])
    }

    public var text: String {
        var lines: [String] = []
        let e = TerminalText.escape
        if partitions.isEmpty {
            lines.append("stream \(e(stream)): \(length) entries")
            lines.append("group \(e(group)): pending \(pending), lag \(lag.map(String.init) ?? "unknown"), last delivered \(e(lastDeliveredID))")
        } else {
            lines.append("stream \(e(stream)): \(length) entries in \(partitions.count) partitions")
            lines.append("group \(e(group)): pending \(pending), lag \(lag.map(String.init) ?? "unknown")")
            lines.append("")
            lines.append("partitions (\(partitions.count)):")
            lines += Table.render(
                header: ["partition", "owner", "pending", "lag", "last delivered"],
                rows: partitions.map { [String($0.partition), $0.owner ?? "-", String($0.pending), $0.lag.map(String.init) ?? "unknown", $0.lastDeliveredID] },
                rightAligned: [0, 2, 3]
            ).map { "  " + $0 }
        }
        lines.append("")
        lines.append("consumers (\(consumers.count)):")
        if consumers.isEmpty { lines.append("  none") }
        lines += Table.render(
            header: ["name", "pending", "idle"],
            rows: consumers.map { [$0.name, String($0.pending), Self.formatMilliseconds($0.idleMilliseconds)] },
            rightAligned: [1, 2]
        ).map { "  " + $0 }
        lines.append("")
        lines.append("locks held (\(locks.count)):")
        if locks.isEmpty { lines.append("  none") }
        lines += Table.render(
            header: ["channel", "ttl", "fence", "committed", "holder"],
            rows: locks.map {
                [$0.channel, $0.ttlMilliseconds.map(Self.formatMilliseconds) ?? "no expiry",
                 $0.fence.map(String.init) ?? "-", $0.committedFence.map(String.init) ?? "-", String($0.token.prefix(16))]
            },
            rightAligned: [1, 2, 3]
        ).map { "  " + $0 }
        lines.append("")
        lines.append("dead letters: \(deadLetters)" + (requeued > 0 ? " (\(requeued) requeued so far)" : ""))
        if !topReasons.isEmpty {
            let of = reasonSample < deadLetters ? " (newest \(reasonSample))" : ""
            lines.append("  most common reasons\(of):")
            lines += topReasons.map { "    \(e($0.reason)): \($0.count)" }
        }
        return lines.joined(separator: "\n")
    }

    /// `850 ms`, `12.3 s`, `4m05s`, `2h07m`, `3d4h`.
    public static func formatMilliseconds(_ ms: Int64) -> String {
        if ms < 1000 { return "\(ms) ms" }
        if ms < 60_000 { return String(format1: Double(ms) / 1000) + " s" }
        let s = ms / 1000
        if s < 3600 { return "\(s / 60)m\(s % 60 < 10 ? "0" : "")\(s % 60)s" }
        if s < 48 * 3600 {
            let m = (s % 3600) / 60
            return "\(s / 3600)h\(m < 10 ? "0" : "")\(m)m"
        }
        return "\(s / 86400)d\(s % 86400 / 3600)h"
    }
}

/// Plain aligned columns. Cells are escaped for the terminal (`TerminalText`).
public enum Table {
    public static func render(header: [String], rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
        guard !rows.isEmpty else { return [] }
        let header = header.map(TerminalText.escape)
        let rows = rows.map { $0.map(TerminalText.escape) }
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            let joined = cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ")
            return String(joined.reversed().drop(while: { $0 == " " }).reversed())
        }
        return [line(header)] + rows.map(line)
    }
}
