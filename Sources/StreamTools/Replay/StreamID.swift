import Foundation

/// A stream entry id, `<milliseconds>-<sequence>`.
public struct StreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: UInt64
    public var sequence: UInt64

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Accepts `ms-seq`, or a bare `ms` (sequence 0).
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let ms = UInt64(parts[0]) else { return nil }
        let seq: UInt64
        if parts.count == 2 {
            guard let s = UInt64(parts[1]) else { return nil }
            seq = s
        } else {
            seq = 0
        }
        self.init(milliseconds: ms, sequence: seq)
    }

    public static let zero = StreamID(milliseconds: 0, sequence: 0)

    public var description: String { "\(milliseconds)-\(sequence)" }

    public static func < (a: StreamID, b: StreamID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }
}

/// Which entries an export or copy reads: XRANGE bounds plus an optional limit.
public struct EntryRange: Sendable, Equatable {
    /// An XRANGE start: `-`, an id, or `(id` for exclusive.
    public var start: String
    /// An XRANGE end: `+`, an id, or `(id` for exclusive.
    public var end: String
    public var limit: Int?

    public static let all = EntryRange(start: "-", end: "+", limit: nil)

    public init(start: String, end: String, limit: Int?) {
        self.start = start
        self.end = end
        self.limit = limit
    }

    /// Validates `--from`, `--to` and `--count` as the user typed them. Bare milliseconds are
    /// allowed (`--from 1700000000000`); an end of bare milliseconds includes every entry of that millisecond.
    public static func parse(from: String?, to: String?, count: Int?) throws(RangeError) -> EntryRange {
        let start = try bound(from, open: "-", option: "--from", isEnd: false)
        let end = try bound(to, open: "+", option: "--to", isEnd: true)
        if let count, count <= 0 { throw RangeError("--count must be positive, got \(count)") }
        if let a = comparable(start), let b = comparable(end), b.id < a.id || (b.id == a.id && (a.exclusive || b.exclusive)) {
            throw RangeError("--from \(from ?? "-") is after --to \(to ?? "+"): the range is empty")
        }
        return EntryRange(start: start, end: end, limit: count)
    }

    private static func bound(_ text: String?, open: String, option: String, isEnd: Bool) throws(RangeError) -> String {
        guard let text, !text.isEmpty, text != open else { return open }
        let exclusive = text.hasPrefix("(")
        let body = exclusive ? String(text.dropFirst()) : text
        if let time = time(body) {
            // A time is a bare millisecond: an end includes every entry of that millisecond.
            return (exclusive ? "(" : "") + (isEnd && !exclusive ? "\(time)-\(UInt64.max)" : "\(time)-0")
        }
        guard let id = StreamID(body) else {
            throw RangeError("\(option) '\(text)' is not a stream id or time: expected '\(open)', 'ms', 'ms-seq', "
                + "an ISO 8601 time such as 2026-12-01T22:00:00Z, or '(' before any of them for exclusive")
        }
        if !body.contains("-") && isEnd && !exclusive { return "\(id.milliseconds)-\(UInt64.max)" }
        return (exclusive ? "(" : "") + id.description
    }

    /// Milliseconds of an ISO 8601 time (`2026-12-01T22:00:00Z`, fractional seconds allowed), or nil.
    static func time(_ text: String) -> UInt64? {
        guard text.contains("T") else { return nil }
        let formatter = ISO8601DateFormatter()
        var date = formatter.date(from: text)
        if date == nil {
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            date = formatter.date(from: text)
        }
        guard let date, date.timeIntervalSince1970 >= 0 else { return nil }
        return UInt64((date.timeIntervalSince1970 * 1000).rounded())
    }

    private static func comparable(_ bound: String) -> (id: StreamID, exclusive: Bool)? {
        let exclusive = bound.hasPrefix("(")
        guard let id = StreamID(exclusive ? String(bound.dropFirst()) : bound) else { return nil }
        return (id, exclusive)
    }
}

/// Where `replay reset` moves a group.
public enum ResetTarget: Sendable, Equatable {
    /// `0`: the beginning, so every entry is delivered again.
    case beginning
    /// `$`: the current end, so nothing is delivered again.
    case end
    case id(StreamID)

    public init(_ text: String) throws(RangeError) {
        switch text {
        case "0", "0-0": self = .beginning
        case "$": self = .end
        default:
            guard let id = StreamID(text) else { throw RangeError("--to '\(text)' is not a stream id: expected 'ms-seq', '0' or '$'") }
            self = .id(id)
        }
    }
}

/// A range or id option the user typed that cannot be used.
public struct RangeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
