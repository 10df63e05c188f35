import CHiredis

/// A command on its way to the socket: encoded as RESP straight into the connection's output
/// buffer on its I/O thread, with no buffer of its own (hiredis's `redisFormatCommandArgv`
/// allocated one per command and formatted each length with `sprintf`).
struct EncodedCommand: Sendable {
    private let command: RedisCommand

    init(_ command: RedisCommand) throws(RedisError) {
        guard command.argumentCount > 0 else { throw .protocolError("a command needs at least its name") }
        self.command = command
    }

    /// Appends `*<n>\r\n` and `$<length>\r\n<bytes>\r\n` for each argument.
    func append(to output: inout [UInt8]) {
        output.reserveCapacity(output.count + command.storage.count + 16 * (command.lengths.count + 1))
        Self.appendLine(UInt8(ascii: "*"), command.lengths.count, to: &output)
        command.storage.withUnsafeBufferPointer { storage in
            var offset = 0
            for length in command.lengths {
                Self.appendLine(UInt8(ascii: "$"), length, to: &output)
                output.append(contentsOf: UnsafeBufferPointer(rebasing: storage[offset..<offset + length]))
                output.append(13)
                output.append(10)
                offset += length
            }
        }
    }

    /// The RESP bytes on their own (the handshake, and tests).
    var bytes: [UInt8] {
        var bytes: [UInt8] = []
        append(to: &bytes)
        return bytes
    }

    private static func appendLine(_ kind: UInt8, _ value: Int, to output: inout [UInt8]) {
        output.append(kind)
        if value < 10 {
            output.append(UInt8(ascii: "0") + UInt8(value))
        } else {
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                         UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var count = 0
            var rest = value
            withUnsafeMutableBytes(of: &digits) { buffer in
                while rest > 0 {
                    buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                    count += 1
                }
                for i in stride(from: count - 1, through: 0, by: -1) { output.append(buffer[i]) }
            }
        }
        output.append(13)
        output.append(10)
    }
}

extension RESPValue {
    /// Copies a hiredis reply tree into a Swift value. The caller still owns and frees `reply`.
    init(hiredis reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            self = .bulk(Self.bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: Self.bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(RedisServerError(line: String(decoding: Self.bytes(r.str, r.len), as: UTF8.self)))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let child = r.element[i] { elements.append(RESPValue(hiredis: child)) } else { elements.append(.null) }
            }
            self = .array(elements)
        default:
            self = .null
        }
    }

    private static func bytes(_ str: UnsafeMutablePointer<CChar>?, _ len: Int) -> [UInt8] {
        guard let str, len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: str, count: len))
    }
}
