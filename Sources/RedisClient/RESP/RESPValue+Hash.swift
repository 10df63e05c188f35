extension RESPValue {
    /// A reply that RESP2 sends as a flat array of alternating names and values (HGETALL, XINFO,
    /// a stream entry's fields), as pairs in reply order.
    /// - Throws: ``RedisError/unexpectedReply(_:)`` naming `command` when the reply is not such an
    ///   array: not an array, an odd number of elements, or a name that is not a string.
    public func pairs(from command: @autoclosure () -> String) throws -> [(name: [UInt8], value: RESPValue)] {
        guard case .array(let flat) = self, flat.count % 2 == 0 else {
            throw RedisError.unexpectedReply("\(command()) returned \(self) where name, value pairs belong")
        }
        var pairs: [(name: [UInt8], value: RESPValue)] = []
        pairs.reserveCapacity(flat.count / 2)
        var index = 0
        while index < flat.count {
            guard let name = flat[index].bytes else {
                throw RedisError.unexpectedReply("\(command()) returned the field name \(flat[index])")
            }
            pairs.append((name, flat[index + 1]))
            index += 2
        }
        return pairs
    }

    /// ``pairs(from:)`` as a dictionary keyed by UTF-8 names; a repeated name keeps its last value.
    public func hash(from command: @autoclosure () -> String) throws -> [String: RESPValue] {
        var hash: [String: RESPValue] = [:]
        for (name, value) in try pairs(from: command()) { hash[String(decoding: name, as: UTF8.self)] = value }
        return hash
    }

    /// ``hash(from:)`` of a reply whose values are all strings (HGETALL).
    /// - Throws: also when a value is not a string.
    public func stringHash(from command: @autoclosure () -> String) throws -> [String: String] {
        try hash(from: command()).mapValues { value in
            guard let string = value.string else { throw RedisError.unexpectedReply("\(command()) returned the value \(value)") }
            return string
        }
    }
}
