import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that writes one JSON object per line, for log collectors.
///
/// Each line has `timestamp` (UTC, ISO 8601 with milliseconds), `level`, `label` and `message`,
/// and every metadata entry as a field of its own: the handler's, then the metadata provider's,
/// then the call's, later ones winning. A metadata key that collides with one of the four
/// fixed fields is written as `metadata.<key>` so that it can never overwrite them.
///
/// ```swift
/// LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: .info) }
/// ```
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: JSONLogOutput

    /// - Parameters:
    ///   - output: Where finished lines go; standard error unless given.
    public init(label: String, level: Logger.Level = .info, metadataProvider: Logger.MetadataProvider? = nil,
                output: JSONLogOutput = .standardError) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
        source: String, file: String, function: String, line: UInt
    ) {
        var merged = self.metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit { merged.merge(explicit) { _, new in new } }
        let text = JSONLogLine.format(
            timestamp: JSONLogLine.now(), level: level, label: label, message: message.description, metadata: merged)
        output.write(text)
    }
}

/// Where a ``JSONLogHandler`` writes its lines.
public struct JSONLogOutput: Sendable {
    let write: @Sendable (String) -> Void

    /// Receives each finished line, newline included.
    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    func write(_ line: String) { write(line) }

    /// Standard error, one `write(2)` per line under a process-wide lock, so that lines from
    /// concurrent loggers never interleave.
    public static let standardError = JSONLogOutput { line in
        standardErrorLock.withLock { _ in writeAll(fileDescriptor: 2, Array(line.utf8)) }
    }
}

private let standardErrorLock = Mutex(())

private func writeAll(fileDescriptor: Int32, _ bytes: [UInt8]) {
    var rest = bytes[...]
    while !rest.isEmpty {
        let written = rest.withUnsafeBytes { write(fileDescriptor, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR { continue }
            return  // nowhere left to report a failing stderr
        }
        rest = rest.dropFirst(written)
    }
}

/// The pure part: turning one record into one line of JSON.
public enum JSONLogLine {
    static let fixedKeys: Set<String> = ["timestamp", "level", "label", "message"]

    /// One JSON object and a newline. Metadata keys are sorted, so equal records give equal lines.
    public static func format(
        timestamp: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata
    ) -> String {
        var out = "{\"timestamp\":"
        appendString(timestamp, to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"label\":"
        appendString(label, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        for key in metadata.keys.sorted() {
            out += ","
            appendString(fixedKeys.contains(key) ? "metadata." + key : key, to: &out)
            out += ":"
            appendValue(metadata[key]!, to: &out)
        }
        out += "}\n"
        return out
    }

    static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let s):
            appendString(s, to: &out)
        case .stringConvertible(let c):
            // Numbers and booleans stay typed, so collectors can compare and sum them; a value
            // JSON has no literal for (NaN, infinity) is written as its text.
            switch c {
            case let b as Bool: out += b ? "true" : "false"
            case let i as any BinaryInteger: out += "\(i)"
            case let d as Double where d.isFinite: out += "\(d)"
            case let f as Float where f.isFinite: out += "\(f)"
            default: appendString(c.description, to: &out)
            }
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                appendValue(item, to: &out)
            }
            out += "]"
        case .dictionary(let dictionary):
            out += "{"
            for (i, key) in dictionary.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(dictionary[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string literal (RFC 8259): quotes, backslashes and every control character escaped,
    /// so a message with newlines stays on its one line.
    public static func appendString(_ s: String, to out: inout String) {
        out += "\""
        var plainStart = s.unicodeScalars.startIndex
        var index = plainStart
        let scalars = s.unicodeScalars
        while index != scalars.endIndex {
            let c = scalars[index]
            let escape: String?
            switch c {
            case "\"": escape = "\\\""
            case "\\": escape = "\\\\"
            case "\n": escape = "\\n"
            case "\r": escape = "\\r"
            case "\t": escape = "\\t"
            case "\u{08}": escape = "\\b"
            case "\u{0C}": escape = "\\f"
            // U+2028 and U+2029 are valid JSON but end lines in JavaScript and some log viewers.
            case _ where c.value < 0x20 || c.value == 0x7F || c.value == 0x2028 || c.value == 0x2029:
                let hex = String(c.value, radix: 16, uppercase: false)
                escape = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: escape = nil
            }
            if let escape {
                out.unicodeScalars.append(contentsOf: scalars[plainStart..<index])
                out += escape
                plainStart = scalars.index(after: index)
            }
            index = scalars.index(after: index)
        }
        out.unicodeScalars.append(contentsOf: scalars[plainStart..<scalars.endIndex])
        out += "\""
    }

    /// Now, as `2026-01-31T23:59:59.123Z`.
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return timestamp(seconds: Int(ts.tv_sec), milliseconds: Int(ts.tv_nsec / 1_000_000))
    }

    /// A Unix time as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
    public static func timestamp(seconds: Int, milliseconds: Int) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }
}
