import Logging
import Synchronization

/// Routes commands to the primary that serves their slot, follows `MOVED` and `ASK`, and keeps the
/// slot map fresh: on every redirect, after a failed connect, and every `refreshInterval`.
///
/// A redirect or a failed connect means the command did not run, so it is sent again (boundedly).
/// A connection lost mid-command is not retried here: it may have run, and only the caller knows
/// whether repeating it is safe. The map is refreshed so that the caller's retry goes to the right node.
final class ClusterRouter: Sendable {
    let configuration: RedisConfiguration
    private let logger: Logger
    private let events: RedisConnectionEvents
    private let state = Mutex(State())
    /// Redirects followed so far, for metrics and tests.
    let redirects = Mutex(ClusterRedirectCounts())
    static let refreshInterval: Duration = .seconds(15)
    /// Attempts per command across redirects, TRYAGAIN, CLUSTERDOWN and failed connects.
    static let maxAttempts = 12

    private struct State {
        var topology: ClusterTopology?
        /// Slots a `MOVED` re-pointed since the last refresh.
        var moved: [Int: ClusterNodeAddress] = [:]
        var nodes: [ClusterNodeAddress: NodeConnections] = [:]
        var refreshing: Task<Void, Never>?
        var refreshedAt: ContinuousClock.Instant?
        var lastRefreshError: String?
        var closed = false
        var subscriber: RedisSubscriber?
    }

    init(configuration: RedisConfiguration, logger: Logger, events: RedisConnectionEvents) {
        self.configuration = configuration
        self.logger = logger
        self.events = events
    }

    /// The connections to `address`, opened on first use.
    func node(_ address: ClusterNodeAddress) -> NodeConnections {
        state.withLock { state in
            if let existing = state.nodes[address] { return existing }
            var nodeConfiguration = configuration
            nodeConfiguration.endpoint = .tcp(host: address.host, port: address.port)
            nodeConfiguration.clusterSeeds = nil
            let created = NodeConnections(configuration: nodeConfiguration, logger: logger, events: events)
            if state.closed { created.close() } else { state.nodes[address] = created }
            return created
        }
    }

    var topology: ClusterTopology? { state.withLock { $0.topology } }

    /// The cluster-wide pub/sub connection (`PUBLISH` reaches every node): it connects to a live
    /// primary each time, so it outlives the failure of the node it was on.
    var subscriber: RedisSubscriber {
        state.withLock { state in
            if let existing = state.subscriber { return existing }
            let created = RedisSubscriber(
                configuration: configuration, sharded: false, events: events,
                currentEndpoint: { [weak self, fallback = configuration.endpoint] in
                    guard let self else { return fallback }
                    self.refreshIfStale()
                    let primaries = self.topology?.primaries ?? []
                    let pick = primaries.randomElement() ?? self.configuration.clusterSeeds?.randomElement()
                    return pick.map { .tcp(host: $0.host, port: $0.port) } ?? self.configuration.endpoint
                },
                logger: logger)
            if state.closed { created.close() } else { state.subscriber = created }
            return created
        }
    }

    /// The primary serving `slot` (any primary for nil), refreshing the map first if it has none.
    func primary(forSlot slot: Int?) async throws -> ClusterNodeAddress {
        if let found = lookup(slot) {
            refreshIfStale()
            return found
        }
        await refresh()
        if let found = lookup(slot) { return found }
        let reason = state.withLock { $0.lastRefreshError }
        throw RedisError.server(RedisServerError(
            code: "CLUSTERDOWN",
            message: slot.map { "no primary serves slot \($0) in the client's map" } ?? "no primary known"
                + (reason.map { " (last discovery failed: \($0))" } ?? "")))
    }

    private func lookup(_ slot: Int?) -> ClusterNodeAddress? {
        state.withLock { state in
            guard let topology = state.topology else { return nil }
            guard let slot else { return topology.primaries.first }
            return state.moved[slot] ?? topology.primary(forSlot: slot)
        }
    }

    /// Every primary's connections, after discovery.
    func primaries() async throws -> [NodeConnections] {
        if topology == nil { await refresh() }
        guard let topology, !topology.primaries.isEmpty else {
            _ = try await primary(forSlot: nil)
            return []
        }
        return topology.primaries.map { node($0) }
    }

    /// Runs `operation` on the node serving `slot`, following redirects. `operation` gets the node
    /// and whether an `ASKING` must go right before its command.
    func perform<T: Sendable>(
        slot: Int?,
        _ operation: (NodeConnections, _ asking: Bool) async throws -> T
    ) async throws -> T {
        var address = try await primary(forSlot: slot)
        var asking = false
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await operation(node(address), asking)
            } catch let error as RedisError {
                guard attempt < Self.maxAttempts else { throw error }
                if case .server(let server) = error, let redirect = ClusterRedirect(server) {
                    redirects.withLock { $0.count(redirect) }
                    switch redirect {
                    case .moved(let movedSlot, let target):
                        let target = target.host.isEmpty ? ClusterNodeAddress(host: address.host, port: target.port) : target
                        state.withLock { $0.moved[movedSlot] = target }
                        refreshSoon()
                        address = target
                        asking = false
                    case .ask(_, let target):
                        address = target.host.isEmpty ? ClusterNodeAddress(host: address.host, port: target.port) : target
                        asking = true
                    case .tryAgain, .clusterDown:
                        try await Task.sleep(for: Self.backoff(attempt))
                        await refresh()
                        address = try await primary(forSlot: slot)
                        asking = false
                    }
                    continue
                }
                guard error.isConnectionError else { throw error }
                refreshSoon()
                // A failed connect sent nothing: wait for the map to change (a failover), then resend.
                guard case .connectFailed = error else { throw error }
                try await Task.sleep(for: Self.backoff(attempt))
                await refresh()
                address = try await primary(forSlot: slot)
                asking = false
            }
        }
    }

    static func backoff(_ attempt: Int) -> Duration {
        .milliseconds(min(1000, 25 << min(attempt, 6)))
    }

    private func refreshIfStale() {
        let stale = state.withLock { state in
            state.refreshing == nil && (state.refreshedAt.map { $0.duration(to: .now) > Self.refreshInterval } ?? true)
        }
        if stale { refreshSoon() }
    }

    /// Starts a refresh in the background, unless one is running.
    func refreshSoon() {
        _ = startRefresh()
    }

    /// Re-reads the slot map; concurrent callers share one discovery.
    func refresh() async {
        await startRefresh()?.value
    }

    private func startRefresh() -> Task<Void, Never>? {
        state.withLock { state in
            if state.closed { return nil }
            if let running = state.refreshing { return running }
            let task = Task { await self.discover() }
            state.refreshing = task
            return task
        }
    }

    private func discover() async {
        let (known, tls) = state.withLock { state in
            ((state.topology?.primaries ?? []) + (state.topology?.shards.flatMap(\.replicas) ?? []), configuration.tls != nil)
        }
        var candidates: [ClusterNodeAddress] = []
        for address in known + (configuration.clusterSeeds ?? []) where !candidates.contains(address) {
            candidates.append(address)
        }
        var found: ClusterTopology?
        var lastError: String?
        for address in candidates {
            let connection = node(address).next()
            do {
                let topology: ClusterTopology
                do {
                    topology = try ClusterTopology.parse(shards: try await connection.send("CLUSTER", "SHARDS"), tls: tls)
                } catch let error as RedisError where error.serverCode == "ERR" {
                    topology = try ClusterTopology.parse(slots: try await connection.send("CLUSTER", "SLOTS"))
                }
                // A node that has not yet heard of the failover can report a dead primary; prefer a full map.
                if found == nil || topology.uncoveredSlots < found!.uncoveredSlots { found = topology }
                if topology.uncoveredSlots == 0 { break }
            } catch {
                lastError = "\(address): \(error)"
            }
        }
        let (previous, demoted) = state.withLock { state -> (ClusterTopology?, [NodeConnections]) in
            defer { state.refreshing = nil }
            guard let found else {
                state.lastRefreshError = lastError ?? "no node to ask"
                return (state.topology, [])
            }
            let previous = state.topology
            state.topology = found
            state.moved.removeAll()
            state.refreshedAt = .now
            state.lastRefreshError = nil
            let primaries = Set(found.primaries)
            return (previous, state.nodes.filter { !primaries.contains($0.key) }.map(\.value))
        }
        // Shard channels of a node that serves no slot now are nobody's: their waiters re-check,
        // and subscribe again where the slot lives.
        for node in demoted { node.retireShardSubscriber() }
        if let found, found != previous {
            // The first map is routine; a changed one (failover, slots moved) is worth a line.
            logger.log(level: previous == nil ? .debug : .info, "Redis Cluster map updated", metadata: [
                "primaries": "\(found.primaries.map(\.description).joined(separator: ","))",
                "uncovered_slots": "\(found.uncoveredSlots)",
            ])
        } else if found == nil {
            logger.warning("Redis Cluster discovery failed", metadata: ["error": "\(lastError ?? "no node to ask")"])
        }
    }

    func close() {
        let (nodes, subscriber) = state.withLock { state in
            state.closed = true
            state.refreshing?.cancel()
            defer { state.nodes.removeAll(); state.subscriber = nil }
            return (Array(state.nodes.values), state.subscriber)
        }
        for node in nodes { node.close() }
        subscriber?.close()
    }
}

/// How many redirects of each kind a cluster client followed.
public struct ClusterRedirectCounts: Sendable, Equatable {
    public var moved = 0
    public var ask = 0
    public var tryAgain = 0
    public var clusterDown = 0

    mutating func count(_ redirect: ClusterRedirect) {
        switch redirect {
        case .moved: moved += 1
        case .ask: ask += 1
        case .tryAgain: tryAgain += 1
        case .clusterDown: clusterDown += 1
        }
    }
}

extension RedisConnection {
    /// Sends `command`, preceded by `ASKING` in the same round trip when `asking` (an `ASK` redirect).
    func send(_ command: RedisCommand, asking: Bool) async throws -> RESPValue {
        guard asking else { return try await send(command) }
        return try await pipeline([RedisCommand("ASKING"), command])[1].get()
    }

    func pipeline(_ commands: [RedisCommand], asking: Bool) async throws -> [Result<RESPValue, RedisError>] {
        guard asking else { return try await pipeline(commands) }
        let results = try await pipeline(commands.flatMap { [RedisCommand("ASKING"), $0] })
        return stride(from: 1, to: results.count, by: 2).map { results[$0] }
    }
}
