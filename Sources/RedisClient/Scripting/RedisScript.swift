/// A Lua script run with EVALSHA, loaded on demand.
///
/// The SHA-1 is computed locally, so the first call already uses EVALSHA; on `NOSCRIPT`
/// (a restarted or flushed server) the client loads the script and retries once.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hex(Array(source.utf8))
    }

    func evalSHA(keys: [any RedisArgumentConvertible], arguments: [any RedisArgumentConvertible]) -> RedisCommand {
        var command = RedisCommand("EVALSHA", sha1, keys.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }
}
