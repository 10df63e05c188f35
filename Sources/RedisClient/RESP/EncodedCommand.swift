import CHiredis

/// A command already encoded as RESP by hiredis's `redisFormatSdsCommandArgv`: the same bytes as
/// `redisFormatCommandArgv`, built with hiredis's own `sdscatfmt` rather than `sprintf` for every
/// length, which was 5 % of a worker's profile.
///
/// `@unchecked Sendable`: the buffer is written once at creation and then owned by exactly one
/// queue entry, which hands it to the connection's I/O thread; that thread frees it exactly once.
struct EncodedCommand: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<CChar>
    let length: Int

    init(_ command: RedisCommand) throws(RedisError) {
        var target: UnsafeMutablePointer<CChar>?
        let count = command.lengths.count
        let length: Int32 = command.storage.withUnsafeBufferPointer { buffer in
            command.lengths.withUnsafeBufferPointer { lengths in
                withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { argv in
                    // An all-empty command has no storage; any valid address works for zero-length arguments.
                    let base = UnsafeRawPointer(buffer.baseAddress) ?? UnsafeRawPointer(lengths.baseAddress!)
                    var offset = 0
                    for i in 0..<count {
                        argv[i] = (base + offset).assumingMemoryBound(to: CChar.self)
                        offset += lengths[i]
                    }
                    return redisFormatSdsCommandArgv(&target, Int32(count), argv.baseAddress, lengths.baseAddress)
                }
            }
        }
        guard length > 0, let target else {
            throw .protocolError("hiredis could not format \(command.name) (\(count) arguments)")
        }
        self.pointer = target
        self.length = Int(length)
    }

    func free() {
        redisFreeSdsCommand(pointer)
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
