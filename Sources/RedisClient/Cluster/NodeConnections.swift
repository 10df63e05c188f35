import Logging
import Synchronization

/// The connections a client keeps to one Redis server (or one cluster node): a pipelined pool,
/// idle dedicated connections for blocking commands, and the pub/sub subscribers.
final class NodeConnections: Sendable {
    let configuration: RedisConfiguration
    private let logger: Logger
    private let events: RedisConnectionEvents
    private let pool: [RedisConnection]
    private let cursor = Atomic<Int>(0)
    private let idleDedicated = Mutex<[RedisConnection]>([])
    private let subscriberSlot = Mutex<RedisSubscriber?>(nil)
    private let shardSubscriberSlot = Mutex<RedisSubscriber?>(nil)

    init(configuration: RedisConfiguration, logger: Logger, events: RedisConnectionEvents) {
        self.configuration = configuration
        self.logger = logger
        self.events = events
        self.pool = (0..<max(1, configuration.poolSize)).map { i in
            RedisConnection(configuration: configuration, options: .init(name: "pool-\(i)", events: events), logger: logger)
        }
    }

    var executor: any TaskExecutor { pool[0].executor }

    func next() -> RedisConnection {
        if pool.count == 1 { return pool[0] }
        // A task running on a pooled connection's thread stays on that connection.
        if let current = ConnectionLoop.current {
            for connection in pool where connection.runs(on: current) { return connection }
        }
        let i = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        return pool[i % pool.count]
    }

    func withDedicatedConnection<T: Sendable>(_ body: (RedisConnection) async throws -> T) async throws -> T {
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

    func subscriber(sharded: Bool) -> RedisSubscriber {
        if sharded {
            return shardSubscriberSlot.withLock { slot in
                if let existing = slot { return existing }
                let created = RedisSubscriber(configuration: configuration, sharded: true, events: events, logger: logger)
                slot = created
                return created
            }
        }
        return subscriberSlot.withLock { slot in
            if let existing = slot { return existing }
            let created = RedisSubscriber(configuration: configuration, sharded: false, events: events, logger: logger)
            slot = created
            return created
        }
    }

    /// Retires the sharded subscriber, if any (the node serves no slot now); the next
    /// ``subscriber(sharded:)`` opens a fresh one.
    func retireShardSubscriber() {
        let retired = shardSubscriberSlot.withLock { slot in
            defer { slot = nil }
            return slot
        }
        retired?.retire()
    }

    func close() {
        for connection in pool { connection.close() }
        idleDedicated.withLock { idle in
            idle.forEach { $0.close() }
            idle.removeAll()
        }
        subscriberSlot.withLock { $0?.close() }
        shardSubscriberSlot.withLock { $0?.close() }
    }
}
