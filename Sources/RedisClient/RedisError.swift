/// An error reply from the server, split into its code (`WRONGTYPE`, `NOSCRIPT`, …) and message.
public struct RedisServerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first word of the reply, e.g. `NOSCRIPT`, `BUSYGROUP`, `ERR`.
    public var code: String
    /// The rest of the reply.
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// Splits a raw error line the way Redis writes them: `CODE message`.
    public init(line: String) {
        if let space = line.firstIndex(of: " ") {
            let code = line[..<space]
            if !code.isEmpty, code.allSatisfy({ $0.isUppercase || $0 == "_" || $0.isNumber }) {
                self.init(code: String(code), message: String(line[line.index(after: space)...]))
                return
            }
        }
        self.init(code: "ERR", message: line)
    }

    public var description: String { "\(code) \(message)" }
}

/// Everything the client can fail with. Connection loss, timeouts and protocol errors
/// are separate cases so callers can decide what is safe to retry.
public enum RedisError: Error, Sendable, CustomStringConvertible {
    /// The server answered with an error reply.
    case server(RedisServerError)
    /// Connecting (or the AUTH/SELECT handshake) failed.
    case connectFailed(String)
    /// A `rediss://` connection failed its TLS handshake or certificate check; the reason says which.
    case tls(RedisTLSError)
    /// The connection broke while the command was queued or in flight; it may or may not have run.
    case connectionLost(String)
    /// No reply within the command timeout; the connection was dropped because replies can no longer be matched.
    case timeout(Duration)
    /// The reply stream could not be parsed.
    case protocolError(String)
    /// The client or connection was closed by its owner.
    case closed
    /// The caller's task was cancelled while it waited on a blocking command.
    case cancelled
    /// A URL or option the client cannot use.
    case invalidConfiguration(String)
    /// The reply had a shape the caller did not expect.
    case unexpectedReply(String)
    /// A command for a Redis Cluster names keys in different hash slots; it was not sent.
    case crossSlot(command: String, keys: [String])

    public var description: String {
        switch self {
        case .server(let e): return "Redis error: \(e)"
        case .connectFailed(let m): return "cannot connect to Redis: \(m)"
        case .tls(let e): return "cannot connect to Redis: \(e)"
        case .connectionLost(let m): return "connection to Redis lost: \(m)"
        case .timeout(let d): return "Redis command timed out after \(d)"
        case .protocolError(let m): return "Redis protocol error: \(m)"
        case .closed: return "Redis client closed"
        case .cancelled: return "Redis command cancelled"
        case .invalidConfiguration(let m): return "invalid Redis configuration: \(m)"
        case .unexpectedReply(let m): return "unexpected Redis reply: \(m)"
        case .crossSlot(let command, let keys):
            return "\(command) names keys in different cluster slots (\(keys.joined(separator: ", "))); give them one {hash tag}"
        }
    }

    /// The server error code, when this is a server error.
    public var serverCode: String? {
        if case .server(let e) = self { return e.code }
        return nil
    }

    /// True when the failure came from the transport rather than from the server's answer.
    public var isConnectionError: Bool {
        switch self {
        case .connectFailed, .tls, .connectionLost, .timeout, .protocolError: return true
        default: return false
        }
    }
}
