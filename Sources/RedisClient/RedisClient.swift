import Logging
import Synchronization

/// The entry point: a small pool of pipelined connections, dedicated connections for
/// blocking commands, and one shared subscriber connection for pub/sub.
///
/// For a Redis Cluster (``RedisConfiguration/clusterSeeds``, `redis+cluster://` URLs) it keeps
/// those per primary and sends each command to the primary that serves its keys' slot; a
/// command whose keys span slots is refused before it is sent (``RedisError/crossSlot(command:keys:)``).
///
/// ```swift
/// let redis = try RedisClient(url: "redis://127.0.0.1:6379")
/// try await redis.send("SET", "greeting", "hello")
/// let value = try await redis.send("GET", "greeting").string
/// ```
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    private let backend: Backend

    private enum Backend: Sendable {
        case single(NodeConnections)
        case cluster(ClusterRouter)
    }

    /// - Parameter events: hooks told of every connection's reconnects and failed attempts (for metrics).
    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "redis"), events: RedisConnectionEvents = RedisConnectionEvents()) {
        self.configuration = configuration
        self.logger = logger
        if let tls = configuration.tls, !tls.verifiesPeer {
            logger.warning("TLS certificate verification is off (tls-insecure-skip-verify): anyone on the network path can read and change Redis traffic",
                           metadata: ["endpoint": "\(configuration.endpointDescription)"])
        }
        if configuration.isCluster {
            let router = ClusterRouter(configuration: configuration, logger: logger, events: events)
            backend = .cluster(router)
            // The seed's connections serve the executor and keyless commands until discovery says otherwise.
            if let seed = configuration.clusterSeeds?.first { _ = router.node(seed) }
        } else {
            backend = .single(NodeConnections(configuration: configuration, logger: logger, events: events))
        }
    }

    public convenience init(url: String, logger: Logger = Logger(label: "redis")) throws(RedisError) {
        self.init(configuration: try RedisConfiguration(url: url), logger: logger)
    }

    deinit {
        close()
    }

    /// True when this client talks to a Redis Cluster.
    public var isCluster: Bool { configuration.isCluster }

    /// Sends one command on a pooled connection; concurrent callers are pipelined together.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        switch backend {
        case .single(let node):
            return try await node.next().send(command)
        case .cluster(let router):
            return try await router.perform(slot: try CommandKeys.slot(of: command)) { node, asking in
                try await node.next().send(command, asking: asking)
            }
        }
    }

    @discardableResult
    public func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments))
    }

    /// Sends several commands in one round trip; one result per command, in order.
    ///
    /// On a cluster the commands are split by node (one round trip each, concurrently); the order
    /// is kept among the commands of one node. A command that meets a redirect is sent again on its
    /// own, after the rest of its node's batch.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [Result<RESPValue, RedisError>] {
        switch backend {
        case .single(let node):
            return try await node.next().pipeline(commands)
        case .cluster(let router):
            var byNode: [ClusterNodeAddress: [Int]] = [:]
            var order: [ClusterNodeAddress] = []
            var results = [Result<RESPValue, RedisError>](repeating: .failure(.closed), count: commands.count)
            for (index, command) in commands.enumerated() {
                let slot: Int?
                do { slot = try CommandKeys.slot(of: command) } catch {
                    results[index] = .failure(error)
                    continue
                }
                let address = try await router.primary(forSlot: slot)
                if byNode[address] == nil { order.append(address) }
                byNode[address, default: []].append(index)
            }
            let batches = try await withThrowingTaskGroup(of: ([Int], [Result<RESPValue, RedisError>]).self) { group in
                for address in order {
                    let indices = byNode[address]!
                    let batch = indices.map { commands[$0] }
                    group.addTask { (indices, try await router.node(address).next().pipeline(batch)) }
                }
                var collected: [([Int], [Result<RESPValue, RedisError>])] = []
                for try await batch in group { collected.append(batch) }
                return collected
            }
            for (indices, batchResults) in batches {
                for (index, result) in zip(indices, batchResults) { results[index] = result }
            }
            for index in results.indices {
                guard case .failure(let error) = results[index], ClusterRedirect(error) != nil else { continue }
                do { results[index] = .success(try await send(commands[index])) } catch let error as RedisError {
                    results[index] = .failure(error)
                }
            }
            return results
        }
    }

    /// Runs a script as a Redis function (`FCALL`), loading its library once if the server does
    /// not have it (see ``RedisScript``).
    @discardableResult
    public func evaluate(
        _ script: RedisScript,
        keys: [any RedisArgumentConvertible] = [],
        arguments: [any RedisArgumentConvertible] = []
    ) async throws -> RESPValue {
        let command = script.call(keys: keys, arguments: arguments)
        return try await onNode(for: [command]) { connection, asking in
            do {
                return try await connection.send(command, asking: asking)
            } catch let error as RedisError where error.isFunctionNotFound {
                try await Self.load(script, on: connection)
                return try await connection.send(command, asking: asking)
            }
        }
    }

    /// Runs a script and, in the same round trip, `commands` right after it on the same connection.
    /// When the library is missing it is loaded and the whole batch sent again, so `commands`
    /// should be reads or otherwise safe to repeat. On a cluster every key of the batch must share a slot.
    public func evaluate(
        _ script: RedisScript,
        keys: [any RedisArgumentConvertible] = [],
        arguments: [any RedisArgumentConvertible] = [],
        followedBy commands: [RedisCommand]
    ) async throws -> (RESPValue, [Result<RESPValue, RedisError>]) {
        if commands.isEmpty { return (try await evaluate(script, keys: keys, arguments: arguments), []) }
        let batch = [script.call(keys: keys, arguments: arguments)] + commands
        return try await onNode(for: batch) { connection, asking in
            var results = try await connection.pipeline(batch, asking: asking)
            if case .failure(let error) = results[0], error.isFunctionNotFound {
                try await Self.load(script, on: connection)
                results = try await connection.pipeline(batch, asking: asking)
            }
            // A redirect of the script is thrown, so the router resends the whole batch where it belongs.
            return (try results[0].get(), Array(results.dropFirst()))
        }
    }

    /// Runs `body` on a pooled connection of the node that serves every key of `commands`.
    private func onNode<T: Sendable>(
        for commands: [RedisCommand],
        _ body: (RedisConnection, _ asking: Bool) async throws -> T
    ) async throws -> T {
        switch backend {
        case .single(let node):
            return try await body(node.next(), false)
        case .cluster(let router):
            var slot: Int?
            for command in commands {
                guard let commandSlot = try CommandKeys.slot(of: command) else { continue }
                if let slot, slot != commandSlot {
                    let keys = commands.flatMap { c in CommandKeys.keyPositions(of: c).map { p in c.withArgument(at: p) { String(decoding: $0, as: UTF8.self) } } }
                    throw RedisError.crossSlot(command: commands.map(\.name).joined(separator: "+"), keys: keys)
                }
                slot = commandSlot
            }
            return try await router.perform(slot: slot) { node, asking in try await body(node.next(), asking) }
        }
    }

    /// Loads the libraries of `scripts` that the server does not have yet (the deploy step;
    /// needs `FUNCTION LOAD`). Returns how many were loaded; the rest were there already.
    /// On a cluster they are loaded on every primary (replicas get them from theirs); the count is per library.
    @discardableResult
    public func loadFunctions(_ scripts: [RedisScript]) async throws -> Int {
        var loaded = 0
        for connection in try await primaryConnections() {
            var here = 0
            for script in Set(scripts) {
                if try await Self.load(script, on: connection) { here += 1 }
            }
            loaded = max(loaded, here)
        }
        return loaded
    }

    /// A pooled connection to every primary: the one server, or each primary of a cluster. For
    /// commands that concern the whole data set (`SCAN`, `FUNCTION LOAD`, `DBSIZE`).
    public func primaryConnections() async throws -> [RedisConnection] {
        switch backend {
        case .single(let node): return [node.next()]
        case .cluster(let router): return try await router.primaries().map { $0.next() }
        }
    }

    /// Every key matching `pattern`, by `SCAN` (which never blocks the server) on every primary,
    /// each listed once, in no particular order.
    public func scanKeys(matching pattern: String, count: Int = 1000) async throws -> [String] {
        var found = Set<String>()
        for connection in try await primaryConnections() {
            var cursor = "0"
            repeat {
                let reply = try await connection.send("SCAN", cursor, "MATCH", pattern, "COUNT", count)
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                    throw RedisError.unexpectedReply("SCAN returned \(reply)")
                }
                cursor = next
                for key in parts[1].array ?? [] { if let key = key.string { found.insert(key) } }
            } while cursor != "0"
        }
        return Array(found)
    }

    /// `FUNCTION LOAD`; false when another client loaded the library first. A user without the
    /// grant is told what to run instead.
    @discardableResult
    static func load(_ script: RedisScript, on connection: RedisConnection) async throws -> Bool {
        do {
            try await connection.send("FUNCTION", "LOAD", script.library)
            return true
        } catch let error as RedisError where error.isLibraryAlreadyLoaded {
            return false
        } catch let error as RedisError where error.serverCode == "NOPERM" {
            throw RedisError.server(RedisServerError(
                code: "NOPERM",
                message: "Redis function \(script.name) is not loaded and this user may not load it; "
                    + "run `sgctl functions load` as an admin user (docs/operations.md)"))
        }
    }

    /// Lends a connection of its own, for blocking commands (`XREADGROUP … BLOCK`, `BLPOP`)
    /// that must not hold up pipelined traffic. Cancelling the caller aborts a blocked command.
    /// On a cluster it is a connection to the primary serving `key` (any primary without one); a
    /// redirect thrown by `body` updates the map, so calling again reaches the new owner.
    public func withDedicatedConnection<T: Sendable>(
        forKey key: String? = nil,
        _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        switch backend {
        case .single(let node):
            return try await node.withDedicatedConnection(body)
        case .cluster(let router):
            let address = try await router.primary(forSlot: key.map { HashSlot.of($0) })
            do {
                return try await router.node(address).withDedicatedConnection(body)
            } catch {
                if let redirect = ClusterRedirect(error) {
                    if case .moved = redirect { router.refreshSoon() }
                    if case .clusterDown = redirect { router.refreshSoon() }
                } else if let error = error as? RedisError, error.isConnectionError {
                    router.refreshSoon()
                }
                throw error
            }
        }
    }

    /// The shared pub/sub connection (`SUBSCRIBE`), opened on first use. On a cluster it connects to
    /// any live primary (Redis broadcasts `PUBLISH` to every node), another after a failure.
    public var subscriber: RedisSubscriber {
        switch backend {
        case .single(let node): return node.subscriber(sharded: false)
        case .cluster(let router): return router.subscriber
        }
    }

    /// The sharded pub/sub connection (`SSUBSCRIBE`) of the node that serves `channel`'s slot, for
    /// messages sent with `SPUBLISH`. Call it for each subscription: after a failover or a slot
    /// move it returns the new owner's.
    public func shardSubscriber(forChannel channel: String) async throws -> RedisSubscriber {
        switch backend {
        case .single(let node): return node.subscriber(sharded: true)
        case .cluster(let router):
            return router.node(try await router.primary(forSlot: HashSlot.of(channel))).subscriber(sharded: true)
        }
    }

    /// Subscribes to a shard channel on the node that serves it (see ``shardSubscriber(forChannel:)``).
    public func subscribe(shardChannel channel: String) async throws -> RedisSubscription {
        do {
            return try await shardSubscriber(forChannel: channel).subscribe(channel)
        } catch {
            if case .cluster(let router) = backend, ClusterRedirect(error) != nil { router.refreshSoon() }
            throw error
        }
    }

    /// A pooled connection's I/O thread as a task executor (the first primary's, on a cluster). Work
    /// that mostly talks to Redis runs fastest there (`withTaskExecutorPreference(client.executor) { … }`):
    /// replies resume it without a thread hop, and its commands go to that connection.
    public var executor: any TaskExecutor {
        switch backend {
        case .single(let node): return node.executor
        case .cluster(let router):
            return router.node(router.topology?.primaries.first ?? configuration.clusterSeeds![0]).executor
        }
    }

    /// The cluster's slot map as last discovered; nil for a single server or before discovery.
    public var clusterTopology: ClusterTopology? {
        if case .cluster(let router) = backend { return router.topology }
        return nil
    }

    /// The redirects this cluster client followed (zero for a single server).
    public var clusterRedirects: ClusterRedirectCounts {
        if case .cluster(let router) = backend { return router.redirects.withLock { $0 } }
        return ClusterRedirectCounts()
    }

    /// Re-reads a cluster's slot map now (no-op for a single server).
    public func refreshClusterTopology() async {
        if case .cluster(let router) = backend { await router.refresh() }
    }

    /// Closes every connection; waiting callers fail with ``RedisError/closed``.
    public func close() {
        switch backend {
        case .single(let node): node.close()
        case .cluster(let router): router.close()
        }
    }
}
