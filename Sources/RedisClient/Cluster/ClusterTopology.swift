/// A cluster node's address as clients reach it.
public struct ClusterNodeAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which primary serves each of the 16,384 slots, as `CLUSTER SHARDS` (or `CLUSTER SLOTS`) told it.
public struct ClusterTopology: Sendable, Equatable {
    public struct Shard: Sendable, Equatable {
        public var slots: [ClosedRange<Int>]
        public var primary: ClusterNodeAddress
        public var replicas: [ClusterNodeAddress]
    }

    public private(set) var shards: [Shard]
    /// Slot → index into `shards`; -1 where no shard serves the slot.
    private var owner: [Int16]

    public init(shards: [Shard]) {
        self.shards = shards
        owner = Array(repeating: -1, count: HashSlot.count)
        for (index, shard) in shards.enumerated() {
            for range in shard.slots where range.lowerBound >= 0 && range.upperBound < HashSlot.count {
                for slot in range { owner[slot] = Int16(index) }
            }
        }
    }

    public func primary(forSlot slot: Int) -> ClusterNodeAddress? {
        let index = owner[slot]
        return index < 0 ? nil : shards[Int(index)].primary
    }

    /// Every primary that serves at least one slot.
    public var primaries: [ClusterNodeAddress] { shards.filter { !$0.slots.isEmpty }.map(\.primary) }

    /// How many slots no primary serves (0 in a healthy cluster).
    public var uncoveredSlots: Int { owner.lazy.filter { $0 < 0 }.count }

    /// Parses `CLUSTER SHARDS` (Redis 7). A shard's primary is its node with role `master` that is
    /// not marked failed; a shard without one is left out, so its slots count as uncovered.
    /// - Parameter tls: take each node's `tls-port` rather than its `port`.
    public static func parse(shards reply: RESPValue, tls: Bool = false) throws(RedisError) -> ClusterTopology {
        guard let list = reply.array else { throw .unexpectedReply("CLUSTER SHARDS returned \(reply)") }
        var shards: [Shard] = []
        do {
            for item in list {
                let shard = try item.hash(from: "CLUSTER SHARDS")
                guard let bounds = shard["slots"]?.array?.compactMap({ Int($0.int ?? -1) }), bounds.count % 2 == 0,
                      let nodes = shard["nodes"]?.array else {
                    throw RedisError.unexpectedReply("CLUSTER SHARDS returned the shard \(item)")
                }
                let slots = stride(from: 0, to: bounds.count, by: 2).compactMap { i in
                    bounds[i] >= 0 && bounds[i] <= bounds[i + 1] ? bounds[i]...bounds[i + 1] : nil
                }
                var primary: ClusterNodeAddress?
                var replicas: [ClusterNodeAddress] = []
                for node in nodes {
                    let fields = try node.hash(from: "CLUSTER SHARDS")
                    let portField = tls ? fields["tls-port"] : fields["port"]
                    guard let port = portField?.int, port > 0 else { continue }
                    var host = fields["endpoint"]?.string ?? ""
                    if host.isEmpty || host == "?" { host = fields["ip"]?.string ?? "" }
                    guard !host.isEmpty else { continue }
                    let address = ClusterNodeAddress(host: host, port: Int(port))
                    if fields["role"]?.string == "master", fields["health"]?.string != "fail", primary == nil {
                        primary = address
                    } else {
                        replicas.append(address)
                    }
                }
                if let primary { shards.append(Shard(slots: slots, primary: primary, replicas: replicas)) }
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw .unexpectedReply("CLUSTER SHARDS: \(error)")
        }
        return ClusterTopology(shards: shards)
    }

    /// Parses `CLUSTER SLOTS`, the fallback before Redis 7: `[[start, end, [host, port, id…], replicas…], …]`.
    public static func parse(slots reply: RESPValue) throws(RedisError) -> ClusterTopology {
        guard let list = reply.array else { throw .unexpectedReply("CLUSTER SLOTS returned \(reply)") }
        var byPrimary: [ClusterNodeAddress: Shard] = [:]
        var order: [ClusterNodeAddress] = []
        for item in list {
            guard let fields = item.array, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                  start <= end else {
                throw .unexpectedReply("CLUSTER SLOTS returned the range \(item)")
            }
            let nodes = fields[2...].compactMap { node -> ClusterNodeAddress? in
                guard let parts = node.array, parts.count >= 2, let host = parts[0].string, let port = parts[1].int,
                      !host.isEmpty, port > 0 else { return nil }
                return ClusterNodeAddress(host: host, port: Int(port))
            }
            guard let primary = nodes.first else { throw .unexpectedReply("CLUSTER SLOTS returned the range \(item)") }
            if byPrimary[primary] == nil {
                order.append(primary)
                byPrimary[primary] = Shard(slots: [], primary: primary, replicas: Array(nodes.dropFirst()))
            }
            byPrimary[primary]!.slots.append(Int(start)...Int(end))
        }
        return ClusterTopology(shards: order.map { byPrimary[$0]! })
    }
}

/// A reply that tells a cluster client to ask elsewhere: it means the command was not run.
public enum ClusterRedirect: Sendable, Equatable {
    /// The slot lives on `node` now; update the map and resend there.
    case moved(slot: Int, node: ClusterNodeAddress)
    /// The slot is migrating and this key is already on `node`: send `ASKING` and the command there, once.
    case ask(slot: Int, node: ClusterNodeAddress)
    /// A multi-key command during a migration, or a cluster without a quorum: retry after a pause.
    case tryAgain
    case clusterDown

    /// The redirect an error reply carries, or nil for any other error.
    public init?(_ error: RedisServerError) {
        switch error.code {
        case "MOVED", "ASK":
            let parts = error.message.split(separator: " ")
            guard parts.count == 2, let slot = Int(parts[0]), (0..<HashSlot.count).contains(slot),
                  let colon = parts[1].lastIndex(of: ":"), let port = Int(parts[1][parts[1].index(after: colon)...]) else {
                return nil
            }
            var host = String(parts[1][..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            let node = ClusterNodeAddress(host: host, port: port)
            self = error.code == "MOVED" ? .moved(slot: slot, node: node) : .ask(slot: slot, node: node)
        case "TRYAGAIN": self = .tryAgain
        case "CLUSTERDOWN": self = .clusterDown
        default: return nil
        }
    }

    public init?(_ error: any Error) {
        guard case .server(let server) = error as? RedisError else { return nil }
        self.init(server)
    }
}
