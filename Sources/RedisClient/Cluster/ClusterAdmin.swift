import Logging

/// Cluster operations for tests and `sgctl chaos`: a coordinated failover and a slot moved key by
/// key, the way `redis-cli --cluster` does them. They need the admin commands (`CLUSTER`, `MIGRATE`).
extension RedisClient {
    /// A single-node client of `address`, with this client's credentials and TLS.
    public func nodeClient(_ address: ClusterNodeAddress) -> RedisClient {
        var configuration = configuration
        configuration.endpoint = .tcp(host: address.host, port: address.port)
        configuration.clusterSeeds = nil
        configuration.poolSize = 1
        return RedisClient(configuration: configuration, logger: logger)
    }

    /// `CLUSTER FAILOVER` on a replica of the primary serving `slot`; returns the old and the new
    /// primary once the replica reports itself primary (`ROLE`), or nil when the shard has no replica.
    public func failOver(slot: Int, timeout: Duration = .seconds(30)) async throws
        -> (from: ClusterNodeAddress, to: ClusterNodeAddress)? {
        await refreshClusterTopology()
        guard let topology = clusterTopology,
              let shard = topology.shards.first(where: { $0.slots.contains { $0.contains(slot) } }),
              let replica = shard.replicas.first else { return nil }
        let node = nodeClient(replica)
        defer { node.close() }
        try await node.send("CLUSTER", "FAILOVER")
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await node.send("ROLE").array?.first?.string == "master" {
                await refreshClusterTopology()
                return (shard.primary, replica)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisError.unexpectedReply("\(replica) did not become primary within \(timeout) of CLUSTER FAILOVER")
    }

    /// Moves `slot` to the primary `target`: IMPORTING and MIGRATING, then `MIGRATE` of its keys
    /// `batch` at a time with `pause` between batches (clients meet ASK meanwhile), then the slot
    /// assigned to `target` on every primary. Returns how many keys moved.
    @discardableResult
    public func moveSlot(_ slot: Int, to target: ClusterNodeAddress, batch: Int = 20, pause: Duration = .milliseconds(10)) async throws -> Int {
        await refreshClusterTopology()
        guard let topology = clusterTopology, let source = topology.primary(forSlot: slot) else {
            throw RedisError.unexpectedReply("no primary serves slot \(slot)")
        }
        guard source != target else { return 0 }
        let sourceNode = nodeClient(source), targetNode = nodeClient(target)
        defer { sourceNode.close(); targetNode.close() }
        guard let sourceID = try await sourceNode.send("CLUSTER", "MYID").string,
              let targetID = try await targetNode.send("CLUSTER", "MYID").string else {
            throw RedisError.unexpectedReply("CLUSTER MYID returned no id")
        }
        try await targetNode.send("CLUSTER", "SETSLOT", slot, "IMPORTING", sourceID)
        try await sourceNode.send("CLUSTER", "SETSLOT", slot, "MIGRATING", targetID)
        var moved = 0
        while true {
            let keys = try await sourceNode.send("CLUSTER", "GETKEYSINSLOT", slot, batch).array?.compactMap(\.bytes) ?? []
            if keys.isEmpty { break }
            var migrate = RedisCommand("MIGRATE", target.host, target.port, "", 0, 10_000)
            if let password = configuration.password {
                if let user = configuration.username {
                    migrate.append("AUTH2"); migrate.append(user); migrate.append(password)
                } else {
                    migrate.append("AUTH"); migrate.append(password)
                }
            }
            migrate.append("KEYS")
            for key in keys { migrate.append(bytes: key) }
            try await sourceNode.send(migrate)
            moved += keys.count
            try await Task.sleep(for: pause)
        }
        // The target first, then the source: the owner learns first. The other primaries would learn
        // by gossip; telling them saves a round of MOVED, and a node that is no primary (a map that
        // lagged a failover) may refuse without harm.
        try await targetNode.send("CLUSTER", "SETSLOT", slot, "NODE", targetID)
        try await sourceNode.send("CLUSTER", "SETSLOT", slot, "NODE", targetID)
        for address in topology.primaries where address != source && address != target {
            let node = nodeClient(address)
            defer { node.close() }
            _ = try? await node.send("CLUSTER", "SETSLOT", slot, "NODE", targetID)
        }
        await refreshClusterTopology()
        return moved
    }
}
