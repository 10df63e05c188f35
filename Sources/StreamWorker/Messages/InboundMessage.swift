/// One field of a stream entry, kept as raw bytes.
public struct StreamField: Sendable, Hashable {
    public var name: [UInt8]
    public var value: [UInt8]

    public init(name: [UInt8], value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public init(_ name: String, _ value: String) {
        self.init(name: Array(name.utf8), value: Array(value.utf8))
    }
}

/// A stream entry as read by XREADGROUP, before validation.
public struct StreamEntry: Sendable, Hashable {
    public var stream: String
    public var id: String
    public var fields: [StreamField]

    public init(stream: String, id: String, fields: [StreamField]) {
        self.stream = stream
        self.id = id
        self.fields = fields
    }

    /// Total bytes of field names and values.
    public var size: Int { fields.reduce(0) { $0 + $1.name.count + $1.value.count } }
}

/// A valid message: its channel, optional per-channel sequence number, and the other fields untouched.
public struct InboundMessage: Sendable, Hashable {
    public var stream: String
    public var id: String
    public var channel: String
    public var seq: Int64?
    /// Every field except the channel and `seq`.
    public var fields: [StreamField]
}

/// Why an entry cannot be processed; `reason` is what the dead-letter entry records.
public enum BadInput: Error, Sendable, Equatable, CustomStringConvertible {
    case missingChannel(field: String)
    case emptyChannel
    case channelTooLong(bytes: Int)
    case channelNotUTF8
    case channelHasControlCharacters
    case invalidSeq(String)
    /// The entry names the channel field more than once; which one is meant is anyone's guess.
    case repeatedChannel(field: String)
    /// The entry has more than one `seq` field.
    case repeatedSeq
    case oversized(bytes: Int, limit: Int)

    /// A stable, low-cardinality code (used as the metric label and the dead-letter reason).
    public var reason: String {
        switch self {
        case .missingChannel: return "missing_channel"
        case .emptyChannel: return "empty_channel"
        case .channelTooLong: return "channel_too_long"
        case .channelNotUTF8: return "channel_not_utf8"
        case .channelHasControlCharacters: return "channel_control_characters"
        case .invalidSeq: return "invalid_seq"
        case .repeatedChannel: return "repeated_channel"
        case .repeatedSeq: return "repeated_seq"
        case .oversized: return "oversized"
        }
    }

    public var description: String {
        switch self {
        case .missingChannel(let field): return "entry has no '\(field)' field"
        case .emptyChannel: return "channel id is empty"
        case .channelTooLong(let n): return "channel id is \(n) bytes (limit \(InboundMessage.maxChannelBytes))"
        case .channelNotUTF8: return "channel id is not valid UTF-8"
        case .channelHasControlCharacters: return "channel id contains control characters"
        case .invalidSeq(let raw): return "seq '\(raw)' is not an integer from 1 to 2^53-1 (\(InboundMessage.maxSeq))"
        case .repeatedChannel(let field): return "entry has more than one '\(field)' field"
        case .repeatedSeq: return "entry has more than one 'seq' field"
        case .oversized(let n, let limit): return "entry is \(n) bytes (limit \(limit))"
        }
    }
}

extension InboundMessage {
    public static let maxChannelBytes = 256
    /// The largest seq: 2^53-1, the largest integer Lua (which holds numbers as doubles) and
    /// JSON readers represent exactly. Every script checks the same bound.
    public static let maxSeq: Int64 = 9_007_199_254_740_991

    /// A seq in its one accepted spelling: decimal digits, no sign or leading zero, 1…`maxSeq`.
    public static func parseSeq(_ text: String) -> Int64? {
        parseSeq(bytes: Array(text.utf8))
    }

    /// ``parseSeq(_:)`` on the field's bytes, without making a string of them.
    static func parseSeq(bytes: [UInt8]) -> Int64? {
        // 16 digits hold maxSeq; no leading zero means the digits alone decide the value.
        guard let first = bytes.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"), bytes.count <= 16 else { return nil }
        var value: Int64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value <= maxSeq ? value : nil
    }

    /// Validates an entry. Channel ids end up inside key names, so anything that could make a
    /// key ambiguous or unreadable (control characters, invalid UTF-8, huge ids) is refused.
    public static func parse(_ entry: StreamEntry, channelField: String, maxEntryBytes: Int) -> Result<InboundMessage, BadInput> {
        let size = entry.size
        if size > maxEntryBytes { return .failure(.oversized(bytes: size, limit: maxEntryBytes)) }
        let channelName = Array(channelField.utf8)
        let seqName = Array("seq".utf8)
        // One pass: the channel, the seq and the rest (this runs for every message).
        var raw: [UInt8]?, rawSeq: [UInt8]?
        var channels = 0, seqs = 0
        var rest: [StreamField] = []
        rest.reserveCapacity(entry.fields.count)
        for field in entry.fields {
            let isChannel = field.name == channelName, isSeq = field.name == seqName
            if isChannel {
                channels += 1
                if raw == nil { raw = field.value }
            }
            if isSeq {
                seqs += 1
                if rawSeq == nil { rawSeq = field.value }
            }
            if !isChannel && !isSeq { rest.append(field) }
        }
        guard let raw else { return .failure(.missingChannel(field: channelField)) }
        if channels > 1 { return .failure(.repeatedChannel(field: channelField)) }
        if seqs > 1 { return .failure(.repeatedSeq) }
        if raw.isEmpty { return .failure(.emptyChannel) }
        if raw.count > maxChannelBytes { return .failure(.channelTooLong(bytes: raw.count)) }
        guard let channel = String(validating: raw, as: UTF8.self) else { return .failure(.channelNotUTF8) }
        // Unicode's control characters (Cc) are exactly U+0000–U+001F and U+007F–U+009F.
        if channel.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            return .failure(.channelHasControlCharacters)
        }
        var seq: Int64?
        if let rawSeq {
            guard let value = parseSeq(bytes: rawSeq) else { return .failure(.invalidSeq(String(decoding: rawSeq, as: UTF8.self))) }
            seq = value
        }
        return .success(InboundMessage(stream: entry.stream, id: entry.id, channel: channel, seq: seq, fields: rest))
    }
}
