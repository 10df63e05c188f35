import CHiredis

/// hiredis's reply parser over an in-memory buffer: feed bytes, take complete replies.
/// Each connection feeds one with what its socket (or TLS session) read; tests feed it bytes directly.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    func feed(_ bytes: [UInt8]) throws(RedisError) {
        try feed(bytes, count: bytes.count)
    }

    /// Feeds the first `count` bytes of `bytes` (a connection's read buffer).
    func feed(_ bytes: [UInt8], count: Int) throws(RedisError) {
        guard count > 0 else { return }
        let status = bytes.withUnsafeBytes { raw in
            redisReaderFeed(reader, raw.baseAddress?.assumingMemoryBound(to: CChar.self), count)
        }
        if status != REDIS_OK { throw .protocolError(errorString) }
    }

    /// The next complete reply, or `nil` if more bytes are needed.
    func next() throws(RedisError) -> RESPValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw .protocolError(errorString) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RESPValue(hiredis: raw.assumingMemoryBound(to: redisReply.self))
    }

    private var errorString: String {
        withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }
}

extension EncodedCommand {
    /// The RESP bytes hiredis produced (for tests).
    var bytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }
}
