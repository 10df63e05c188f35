import Crypto

/// A Lua script run as a Redis function (`FCALL`), in a library of its own named after a digest
/// of its code, `sg_<sha1>`.
///
/// Functions rather than EVALSHA: they persist in RDB and AOF (the script cache does not, so
/// after a Redis restart every client would need SCRIPT LOAD), and the least-privileged worker
/// user needs neither EVAL nor SCRIPT LOAD (either would let it run any code it likes). A new
/// version of a script is a new library, so a rolling upgrade never replaces what older workers
/// still call; old libraries stay until an admin deletes them.
///
/// The libraries are loaded at deploy time by an admin (`sgctl functions load`). A client that
/// finds one missing and may `FUNCTION LOAD` (the default user) loads it itself and retries.
public struct RedisScript: Sendable, Hashable {
    /// The body, with `KEYS` and `ARGV` as in an EVAL script.
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Self.hex(Insecure.SHA1.hash(data: Array(source.utf8)))
    }

    /// SHA-1 names the library after the code (as Redis's own script cache does), not for security.
    static func hex(_ digest: Insecure.SHA1Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(40)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The library's and the function's name.
    public var name: String { "sg_" + sha1 }

    /// What `FUNCTION LOAD` takes: the body becomes a function of `KEYS` and `ARGV`, so it reads
    /// exactly as the EVAL script it used to be.
    public var library: String {
        "#!lua name=\(name)\nredis.register_function('\(name)', function(KEYS, ARGV)\n\(source)\nend)\n"
    }

    func call(keys: [any RedisArgumentConvertible], arguments: [any RedisArgumentConvertible]) -> RedisCommand {
        var command = RedisCommand("FCALL", name, keys.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }
}

extension RedisError {
    /// `FCALL` of a library that is not loaded (a fresh or flushed server).
    var isFunctionNotFound: Bool {
        if case .server(let e) = self { return e.code == "ERR" && e.message.hasPrefix("Function not found") }
        return false
    }

    /// `FUNCTION LOAD` of a library someone else loaded first.
    var isLibraryAlreadyLoaded: Bool {
        if case .server(let e) = self { return e.code == "ERR" && e.message.hasPrefix("Library") && e.message.hasSuffix("already exists") }
        return false
    }
}
