import Logging
import Synchronization

/// The entry point: a small pool of pipelined connections, dedicated connections for
/// blocking commands, and one shared subscriber connection for pub/sub.
///
/// ```swift
/// let redis = try RedisClient(url: "redis://127.0.0.1:6379")
/// try await redis.send("SET", "greeting", "hello")
/// let value = try await redis.send("GET", "greeting").string
/// ```
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    /// Passed to every connection this client opens.
    private let events: RedisConnectionEvents
    private let pool: [RedisConnection]
    private let cursor = Atomic<Int>(0)
    private let idleDedicated = Mutex<[RedisConnection]>([])
    private let subscriberSlot = Mutex<RedisSubscriber?>(nil)

    /// - Parameter events: hooks told of every connection's reconnects and failed attempts (for metrics).
    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "redis"), events: RedisConnectionEvents = RedisConnectionEvents()) {
        self.configuration = configuration
        self.logger = logger
        self.events = events
        if let tls = configuration.tls, !tls.verifiesPeer {
            logger.warning("TLS certificate verification is off (tls-insecure-skip-verify): anyone on the network path can read and change Redis traffic",
                           metadata: ["endpoint": "\(configuration.endpointDescription)"])
        }
        self.pool = (0..<max(1, configuration.poolSize)).map { i in
            RedisConnection(configuration: configuration, options: .init(name: "pool-\(i)", events: events), logger: logger)
        }
    }

    public convenience init(url: String, logger: Logger = Logger(label: "redis")) throws(RedisError) {
        self.init(configuration: try RedisConfiguration(url: url), logger: logger)
    }

    deinit {
        close()
    }

    /// Sends one command on a pooled connection; concurrent callers are pipelined together.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        try await nextConnection().send(command)
    }

    @discardableResult
    public func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RESPValue {
        try await nextConnection().send(RedisCommand(name, arguments))
    }

    /// Sends several commands in one round trip; one result per command, in order.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [Result<RESPValue, RedisError>] {
        try await nextConnection().pipeline(commands)
    }

    /// Runs a script as a Redis function (`FCALL`), loading its library once if the server does
    /// not have it (see ``RedisScript``).
    @discardableResult
    public func evaluate(
        _ script: RedisScript,
        keys: [any RedisArgumentConvertible] = [],
        arguments: [any RedisArgumentConvertible] = []
    ) async throws -> RESPValue {
        let connection = nextConnection()
        let command = script.call(keys: keys, arguments: arguments)
        do {
            return try await connection.send(command)
        } catch let error as RedisError where error.isFunctionNotFound {
            try await Self.load(script, on: connection)
            return try await connection.send(command)
        }
    }

    /// Runs a script and, in the same round trip, `commands` right after it on the same connection.
    /// When the library is missing it is loaded and the whole batch sent again, so `commands`
    /// should be reads or otherwise safe to repeat.
    public func evaluate(
        _ script: RedisScript,
        keys: [any RedisArgumentConvertible] = [],
        arguments: [any RedisArgumentConvertible] = [],
        followedBy commands: [RedisCommand]
    ) async throws -> (RESPValue, [Result<RESPValue, RedisError>]) {
        if commands.isEmpty { return (try await evaluate(script, keys: keys, arguments: arguments), []) }
        let connection = nextConnection()
        let batch = [script.call(keys: keys, arguments: arguments)] + commands
        var results = try await connection.pipeline(batch)
        if case .failure(let error) = results[0], error.isFunctionNotFound {
            try await Self.load(script, on: connection)
            results = try await connection.pipeline(batch)
        }
        return (try results[0].get(), Array(results.dropFirst()))
    }

    /// Loads the libraries of `scripts` that the server does not have yet (the deploy step;
    /// needs `FUNCTION LOAD`). Returns how many were loaded; the rest were there already.
    @discardableResult
    public func loadFunctions(_ scripts: [RedisScript]) async throws -> Int {
        let connection = nextConnection()
        var loaded = 0
        for script in Set(scripts) {
            if try await Self.load(script, on: connection) { loaded += 1 }
        }
        return loaded
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
    public func withDedicatedConnection<T: Sendable>(
        _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        let connection = idleDedicated.withLock { $0.popLast() }
            ?? RedisConnection(configuration: configuration, options: .init(name: "dedicated", cancelDropsConnection: true, events: events), logger: logger)
        do {
            let result = try await body(connection)
            // A cancellation that arrived after the reply leaves an interrupt pending: don't lend that on.
            if Task.isCancelled {
                connection.close()
                return result
            }
            idleDedicated.withLock { idle in
                if idle.count < 8 { idle.append(connection) } else { connection.close() }
            }
            return result
        } catch {
            // Its state is unknown (it may still be blocked); don't hand it to someone else.
            connection.close()
            throw error
        }
    }

    /// The shared pub/sub connection, opened on first use.
    public var subscriber: RedisSubscriber {
        subscriberSlot.withLock { slot in
            if let existing = slot { return existing }
            let created = RedisSubscriber(configuration: configuration, events: events, logger: logger)
            slot = created
            return created
        }
    }

    /// The first pooled connection's I/O thread as a task executor. Work that mostly talks to
    /// Redis runs fastest there (`withTaskExecutorPreference(client.executor) { … }`): replies
    /// resume it without a thread hop, and its commands go to that connection.
    public var executor: any TaskExecutor { pool[0].executor }

    /// Closes every connection; waiting callers fail with ``RedisError/closed``.
    public func close() {
        for connection in pool { connection.close() }
        idleDedicated.withLock { idle in
            idle.forEach { $0.close() }
            idle.removeAll()
        }
        subscriberSlot.withLock { $0?.close() }
    }

    private func nextConnection() -> RedisConnection {
        if pool.count == 1 { return pool[0] }
        // A task running on a pooled connection's thread stays on that connection.
        if let current = ConnectionLoop.current {
            for connection in pool where connection.runs(on: current) { return connection }
        }
        let i = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        return pool[i % pool.count]
    }
}
