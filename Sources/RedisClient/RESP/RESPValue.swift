/// A decoded Redis reply.
///
/// Bulk strings stay raw bytes so that binary keys, values and stream fields survive
/// untouched; `string` decodes them as UTF-8 on request.
public enum RESPValue: Sendable, Hashable {
    case status(String)
    case error(RedisServerError)
    case integer(Int64)
    case bulk([UInt8])
    case array([RESPValue])
    case null

    /// The reply as text: a status, or a bulk string decoded as UTF-8 (lossy).
    public var string: String? {
        switch self {
        case .status(let s): return s
        case .bulk(let b): return String(decoding: b, as: UTF8.self)
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    /// The raw bytes of a bulk or status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let b): return b
        case .status(let s): return Array(s.utf8)
        default: return nil
        }
    }

    /// An integer reply, or a bulk string that holds a decimal integer (as Lua and HGET return).
    public var int: Int64? {
        switch self {
        case .integer(let i): return i
        case .bulk(let b): return Int64(String(decoding: b, as: UTF8.self))
        case .status(let s): return Int64(s)
        default: return nil
        }
    }

    public var array: [RESPValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// True for the `+OK` status.
    public var isOK: Bool {
        if case .status("OK") = self { return true }
        return false
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .status(let s): return s
        case .error(let e): return "(error) \(e.code) \(e.message)"
        case .integer(let i): return "(integer) \(i)"
        case .bulk(let b):
            if let s = String(validating: b, as: UTF8.self) { return "\"\(s)\"" }
            return "<\(b.count) bytes>"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .null: return "(nil)"
        }
    }
}
