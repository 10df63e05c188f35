/// Where and how to connect. Built from a URL with ``init(url:)`` or field by field.
public struct RedisConfiguration: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    /// ACL user name; `nil` authenticates as `default` (password only).
    public var username: String?
    public var password: String?
    public var database: Int
    /// Sent as `CLIENT SETNAME` on every connection, so operators can see who is connected.
    public var clientName: String?
    public var connectTimeout: Duration
    /// How long an ordinary command may wait for its reply before the connection is dropped.
    public var commandTimeout: Duration
    /// Connections for ordinary, pipelined commands.
    public var poolSize: Int
    public var backoff: ReconnectBackoff
    /// TLS settings for a TCP endpoint; `nil` is plaintext. A `rediss://` URL sets the defaults (verify against the system's CAs).
    public var tls: RedisTLSConfiguration?
    /// Set for a Redis Cluster: the nodes to discover the cluster from (`endpoint` is the first).
    /// The client then routes each command to the primary that serves its keys' slot.
    public var clusterSeeds: [ClusterNodeAddress]?

    /// True for a Redis Cluster configuration (``clusterSeeds`` set).
    public var isCluster: Bool { clusterSeeds != nil }

    public init(
        endpoint: Endpoint = .tcp(host: "127.0.0.1", port: 6379),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        clientName: String? = nil,
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(5),
        poolSize: Int = 2,
        backoff: ReconnectBackoff = ReconnectBackoff(),
        tls: RedisTLSConfiguration? = nil
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.clientName = clientName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.poolSize = poolSize
        self.backoff = backoff
        self.tls = tls
    }

    /// Parses `redis://[user[:password]@]host[:port][/db]`, the same with `rediss://` (TLS, verified
    /// against the system's CAs until ``tls`` says otherwise), or `unix:///path/redis.sock?db=N`.
    ///
    /// User and password may be percent-encoded.
    ///
    /// `redis+cluster://[user[:password]@]host:port[,host:port…]` (or `rediss+cluster://`) names a
    /// Redis Cluster by one or more of its nodes; the client discovers the rest.
    public init(url: String) throws(RedisError) {
        if let schemeEnd = url.range(of: "://"), url[..<schemeEnd.lowerBound].lowercased().hasSuffix("+cluster") {
            try self.init(clusterURL: url, schemeEnd: schemeEnd)
            return
        }
        try self.init(singleNodeURL: url)
    }

    private init(clusterURL url: String, schemeEnd: Range<String.Index>) throws(RedisError) {
        let scheme = url[..<schemeEnd.lowerBound].lowercased().dropLast("+cluster".count)
        guard scheme == "redis" || scheme == "rediss" else {
            throw .invalidConfiguration("unsupported URL scheme '\(scheme)+cluster'; expected redis+cluster:// or rediss+cluster://")
        }
        var rest = String(url[schemeEnd.upperBound...])
        var userInfo = ""
        if let at = rest.lastIndex(of: "@") {
            userInfo = String(rest[...at])
            rest = String(rest[rest.index(after: at)...])
        }
        var query = ""
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[q...])
            rest = String(rest[..<q])
        }
        if rest.hasSuffix("/") || rest.hasSuffix("/0") { rest = String(rest[..<rest.lastIndex(of: "/")!]) }
        guard !rest.contains("/") else {
            throw .invalidConfiguration("a Redis Cluster has only database 0; drop the /db from '\(Self.redacted(url))'")
        }
        var seeds: [ClusterNodeAddress] = []
        var first: RedisConfiguration?
        for node in rest.split(separator: ",", omittingEmptySubsequences: false) {
            guard !node.isEmpty else { throw .invalidConfiguration("empty node in '\(Self.redacted(url))'") }
            let single = try RedisConfiguration(singleNodeURL: "\(scheme)://\(userInfo)\(node)\(query)")
            guard case .tcp(let host, let port) = single.endpoint else { throw .invalidConfiguration("cluster nodes are host:port") }
            seeds.append(ClusterNodeAddress(host: host, port: port))
            if first == nil { first = single }
        }
        guard var configuration = first else { throw .invalidConfiguration("URL '\(Self.redacted(url))' names no node") }
        configuration.clusterSeeds = seeds
        self = configuration
    }

    private init(singleNodeURL url: String) throws(RedisError) {
        self.init()
        guard let schemeEnd = url.range(of: "://") else {
            throw .invalidConfiguration("URL '\(Self.redacted(url))' has no scheme; expected redis://host:port or unix:///path")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = String(url[schemeEnd.upperBound...])
        var query: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                query[String(kv[0])] = kv.count > 1 ? Self.percentDecoded(String(kv[1])) : ""
            }
            rest = String(rest[..<q])
        }
        switch scheme {
        case "redis", "rediss":
            if scheme == "rediss" { tls = RedisTLSConfiguration() }
            if let at = rest.lastIndex(of: "@") {
                let userInfo = rest[..<at]
                rest = String(rest[rest.index(after: at)...])
                if let colon = userInfo.firstIndex(of: ":") {
                    let user = Self.percentDecoded(String(userInfo[..<colon]))
                    username = user.isEmpty ? nil : user
                    password = Self.percentDecoded(String(userInfo[userInfo.index(after: colon)...]))
                } else if !userInfo.isEmpty {
                    // `redis://secret@host` is the common form of a password without a user.
                    password = Self.percentDecoded(String(userInfo))
                }
            }
            var hostPort = rest
            if let slash = rest.firstIndex(of: "/") {
                hostPort = String(rest[..<slash])
                let db = rest[rest.index(after: slash)...]
                if !db.isEmpty {
                    guard let n = Int(db), n >= 0 else {
                        throw .invalidConfiguration("database '\(db)' in URL is not a non-negative integer")
                    }
                    database = n
                }
            }
            var host = hostPort
            var port = 6379
            if hostPort.hasPrefix("[") {
                guard let close = hostPort.firstIndex(of: "]") else {
                    throw .invalidConfiguration("unterminated IPv6 address in '\(hostPort)'")
                }
                host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
                let after = hostPort[hostPort.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                        throw .invalidConfiguration("port '\(after.dropFirst())' is not in 1...65535")
                    }
                    port = p
                }
            } else if let colon = hostPort.lastIndex(of: ":") {
                host = String(hostPort[..<colon])
                let p = hostPort[hostPort.index(after: colon)...]
                guard let n = Int(p), (1...65535).contains(n) else {
                    throw .invalidConfiguration("port '\(p)' is not in 1...65535")
                }
                port = n
            }
            guard !host.isEmpty else { throw .invalidConfiguration("URL '\(Self.redacted(url))' has no host") }
            endpoint = .tcp(host: host, port: port)
        case "unix":
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw .invalidConfiguration("unix URL needs an absolute socket path, e.g. unix:///run/redis.sock")
            }
            endpoint = .unix(path: rest)
            if let user = query["user"] ?? query["username"] { username = user }
            if let pass = query["password"] { password = pass }
        default:
            throw .invalidConfiguration("unsupported URL scheme '\(scheme)'; expected redis://, rediss://, unix:// or redis+cluster://")
        }
        if let db = query["db"] {
            guard let n = Int(db), n >= 0 else {
                throw .invalidConfiguration("db=\(db) in URL is not a non-negative integer")
            }
            database = n
        }
    }

    /// The URL with any password replaced by `***`, safe for logs.
    public static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://"),
              let at = url[schemeEnd.upperBound...].lastIndex(of: "@") else {
            return url.replacingPasswordQuery()
        }
        let userInfo = url[schemeEnd.upperBound..<at]
        let user = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let masked = userInfo.contains(":") ? "\(user):***" : "***"
        return String(url[..<schemeEnd.upperBound]) + masked + String(url[at...])
    }

    static func percentDecoded(_ s: String) -> String {
        guard s.contains("%") else { return s }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2,
               let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension RedisConfiguration: CustomStringConvertible {
    /// Never prints the password.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? "default"):***@"
        if let clusterSeeds {
            return "\(tls == nil ? "redis" : "rediss")+cluster://\(auth)\(clusterSeeds.map(\.description).joined(separator: ","))"
        }
        switch endpoint {
        case .tcp(let host, let port): return "\(tls == nil ? "redis" : "rediss")://\(auth)\(host):\(port)/\(database)"
        case .unix(let path): return "unix://\(path)?db=\(database)\(password == nil ? "" : " (auth)")"
        }
    }
}

extension String {
    fileprivate func replacingPasswordQuery() -> String {
        guard let range = range(of: "password=") else { return self }
        let end = self[range.upperBound...].firstIndex(of: "&") ?? endIndex
        return String(self[..<range.upperBound]) + "***" + String(self[end...])
    }
}

/// Exponential backoff with full jitter for reconnects: attempt n waits a random time in `0...min(cap, base·2ⁿ)`.
public struct ReconnectBackoff: Sendable, Equatable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .milliseconds(50), cap: Duration = .seconds(2)) {
        self.base = base
        self.cap = cap
    }

    /// The delay before reconnect attempt `attempt` (0 is the first retry after a failure).
    public func delay(attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let exponent = min(attempt, 30)
        let ceiling = min(cap, base * (1 << exponent))
        return ceiling * random
    }
}
