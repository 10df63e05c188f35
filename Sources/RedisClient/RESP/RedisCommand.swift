/// A value that can be written as one binary-safe command argument.
public protocol RedisArgumentConvertible: Sendable {
    func appendRedisArgument(to command: inout RedisCommand)
}

/// One command: its arguments, stored contiguously so formatting needs one pass.
public struct RedisCommand: Sendable {
    @usableFromInline var storage: [UInt8] = []
    @usableFromInline var lengths: [Int] = []
    /// Blocking commands (`BLPOP`, `XREADGROUP … BLOCK`) belong on a dedicated connection;
    /// their timeout is extended by `blockTime`.
    public var blockTime: Duration?

    public init(_ name: String, _ arguments: any RedisArgumentConvertible...) {
        self.init(name, arguments)
    }

    public init(_ name: String, _ arguments: [any RedisArgumentConvertible]) {
        storage.reserveCapacity(32)
        lengths.reserveCapacity(arguments.count + 1)
        append(name)
        for argument in arguments { argument.appendRedisArgument(to: &self) }
    }

    /// Appends raw bytes as one argument.
    @inlinable
    public mutating func append<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        storage.append(contentsOf: bytes)
        lengths.append(bytes.count)
    }

    public mutating func append(_ argument: some RedisArgumentConvertible) {
        argument.appendRedisArgument(to: &self)
    }

    public var argumentCount: Int { lengths.count }

    /// The arguments, copied out; for logs and tests.
    public var arguments: [[UInt8]] {
        var result: [[UInt8]] = []
        var offset = 0
        for length in lengths {
            result.append(Array(storage[offset..<offset + length]))
            offset += length
        }
        return result
    }

    /// The command name, upper-cased.
    public var name: String {
        guard let first = lengths.first else { return "" }
        return String(decoding: storage[0..<first], as: UTF8.self).uppercased()
    }
}

extension String: RedisArgumentConvertible {
    public func appendRedisArgument(to command: inout RedisCommand) {
        var copy = self
        copy.withUTF8 { command.append(bytes: $0) }
    }
}

extension Substring: RedisArgumentConvertible {
    public func appendRedisArgument(to command: inout RedisCommand) {
        String(self).appendRedisArgument(to: &command)
    }
}

extension Array: RedisArgumentConvertible where Element == UInt8 {
    public func appendRedisArgument(to command: inout RedisCommand) {
        command.append(bytes: self)
    }
}

extension ArraySlice: RedisArgumentConvertible where Element == UInt8 {
    public func appendRedisArgument(to command: inout RedisCommand) {
        command.append(bytes: self)
    }
}

extension Int: RedisArgumentConvertible {
    public func appendRedisArgument(to command: inout RedisCommand) {
        String(self).appendRedisArgument(to: &command)
    }
}

extension Int64: RedisArgumentConvertible {
    public func appendRedisArgument(to command: inout RedisCommand) {
        String(self).appendRedisArgument(to: &command)
    }
}

extension UInt64: RedisArgumentConvertible {
    public func appendRedisArgument(to command: inout RedisCommand) {
        String(self).appendRedisArgument(to: &command)
    }
}

extension Double: RedisArgumentConvertible {
    public func appendRedisArgument(to command: inout RedisCommand) {
        String(self).appendRedisArgument(to: &command)
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so that a positive duration never becomes 0 (which means "forever" to Redis).
    public var redisMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        let remainder = attoseconds % 1_000_000_000_000_000
        return remainder > 0 ? ms + 1 : ms
    }
}
