import CHiredis
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One Redis connection, served by its own I/O thread so that callers only ever `await`.
///
/// Commands from any number of tasks are queued, written together, and matched to their
/// replies in order (automatic pipelining). If the connection breaks, every queued and
/// in-flight caller fails at once; the next command reconnects, with backoff after failures.
public final class RedisConnection: Sendable {
    /// What a subscriber connection reports besides command replies.
    enum Push: Sendable {
        case message(channel: [UInt8], payload: [UInt8])
        /// (Re)connected: subscriptions were restored; messages during the gap may be lost.
        case connected
        /// The server dropped a shard channel's subscription on its own (its slot moved away).
        case dropped(channel: [UInt8])
    }

    struct Options: Sendable {
        var name: String
        /// Cancelling a waiting caller drops the connection (for blocking commands that would otherwise hold it).
        var cancelDropsConnection = false
        /// Reconnect eagerly and route pub/sub messages to `push`.
        var push: (@Sendable (Push) -> Void)?
        /// Commands replayed after every (re)connect, e.g. SUBSCRIBE for each channel.
        var onConnect: (@Sendable () -> [RedisCommand])?
        /// For a sharded subscriber: whether a `sunsubscribe` for this channel answers a SUNSUBSCRIBE
        /// of ours (true, consuming it) rather than the server dropping the channel on its own.
        var claimsUnsubscribe: (@Sendable ([UInt8]) -> Bool)?
        /// Asked before every connect, for a connection that follows a cluster's live nodes rather
        /// than one address; nil keeps `configuration.endpoint`.
        var currentEndpoint: (@Sendable () -> RedisConfiguration.Endpoint)?
        var events = RedisConnectionEvents()
    }

    let shared: ConnectionShared
    let configuration: RedisConfiguration
    private let options: Options
    private let loop: ConnectionLoop

    /// Runs tasks on this connection's I/O thread. Callers that run there
    /// (`withTaskExecutorPreference(connection.executor) { … }`) get replies without a thread hop;
    /// keep CPU-heavy work off it, since it also drives the socket.
    public var executor: any TaskExecutor { loop }

    init(configuration: RedisConfiguration, options: Options, logger: Logger) {
        self.configuration = configuration
        self.options = options
        self.shared = ConnectionShared()
        let loop = ConnectionLoop(configuration: configuration, options: options, shared: shared, logger: logger)
        self.loop = loop
        let thread = Thread { loop.run() }
        thread.name = "redis-\(options.name)"
        thread.start()
    }

    /// Opens a standalone connection (for example for a blocking read loop). Close it when done.
    public convenience init(configuration: RedisConfiguration, name: String = "dedicated", logger: Logger = Logger(label: "redis")) {
        self.init(configuration: configuration, options: Options(name: name, cancelDropsConnection: true), logger: logger)
    }

    deinit {
        shared.close()
    }

    func runs(on loop: ConnectionLoop) -> Bool {
        self.loop === loop
    }

    /// Sends one command and waits for its reply. A server error reply is thrown as ``RedisError/server(_:)``.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        let encoded = try EncodedCommand(command)
        let deadline = deadline(for: command)
        if options.cancelDropsConnection {
            return try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { continuation in
                    shared.submit(Outgoing(command: encoded, waiter: .single(continuation), deadline: deadline, blocks: command.blockTime != nil))
                    // Cancelled before the submit: the handler's interrupt may already have been consumed.
                    if Task.isCancelled { shared.interrupt() }
                }
            } onCancel: {
                shared.interrupt()
            }
        }
        return try await withUnsafeThrowingContinuation { continuation in
            shared.submit(Outgoing(command: encoded, waiter: .single(continuation), deadline: deadline, blocks: command.blockTime != nil))
        }
    }

    /// Sends `name args…` and waits for the reply.
    @discardableResult
    public func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments))
    }

    /// Writes all commands back to back and returns one result per command, in order.
    ///
    /// The batch is queued atomically, so `MULTI … EXEC` inside it is not interleaved with other callers.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [Result<RESPValue, RedisError>] {
        guard !commands.isEmpty else { return [] }
        var encoded: [EncodedCommand] = []
        encoded.reserveCapacity(commands.count)
        do {
            for command in commands { encoded.append(try EncodedCommand(command)) }
        } catch {
            encoded.forEach { $0.free() }
            throw error
        }
        // One deadline for the whole batch, so a disconnected batch expires all or nothing.
        let deadlines = commands.map { deadline(for: $0) }
        let batchDeadline = deadlines.contains(where: { $0 == nil }) ? nil : deadlines.compactMap { $0 }.max()
        return await withUnsafeContinuation { continuation in
            let collector = BatchCollector(count: commands.count, continuation: continuation)
            var batch: [Outgoing] = []
            batch.reserveCapacity(commands.count)
            for (i, command) in commands.enumerated() {
                batch.append(Outgoing(command: encoded[i], waiter: .batch(collector, index: i), deadline: batchDeadline, blocks: command.blockTime != nil))
            }
            shared.submit(batch)
        }
    }

    /// Fails everything queued or in flight with ``RedisError/closed`` and stops the I/O thread.
    public func close() {
        shared.close()
    }

    /// Queues a command without waiting (subscriber bookkeeping).
    func submit(_ command: RedisCommand, waiter: ReplyWaiter) throws(RedisError) {
        let encoded = try EncodedCommand(command)
        shared.submit(Outgoing(command: encoded, waiter: waiter, deadline: deadline(for: command), blocks: command.blockTime != nil))
    }

    private func deadline(for command: RedisCommand) -> ContinuousClock.Instant? {
        if let block = command.blockTime {
            // BLOCK 0 waits forever by design; anything else gets the block time plus the usual allowance.
            if block == .zero { return nil }
            return .now + block + configuration.commandTimeout
        }
        return .now + configuration.commandTimeout
    }
}

/// A queued command and whoever waits for its reply.
struct Outgoing: Sendable {
    var command: EncodedCommand
    var waiter: ReplyWaiter
    var deadline: ContinuousClock.Instant?
    var blocks = false
}

/// State shared between callers and the I/O thread: the submit queue and the wake-up eventfd.
final class ConnectionShared: Sendable {
    struct State {
        var queue: [Outgoing] = []
        var closed = false
        var interrupt = false
        /// The I/O thread sleeps until woken; otherwise it will look at the queue on its own soon
        /// (it is waiting for replies), so submitters skip the eventfd write.
        var idle = true
        /// Tasks that prefer this connection's thread as their executor.
        var jobs: [UnownedJob] = []
    }

    let state = Mutex(State())
    /// Written by submitters, read by the I/O thread's poll; closed only in deinit, when no one can write to it.
    let wakeFD: Int32 = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))

    deinit {
        if wakeFD >= 0 { Glibc.close(wakeFD) }
    }

    func submit(_ batch: [Outgoing]) {
        let (accepted, mustWake) = state.withLock { state in
            Self.accept(&state) { $0.append(contentsOf: batch) }
        }
        if mustWake {
            wake()
        } else if !accepted {
            for item in batch { Self.refuse(item) }
        }
    }

    /// One command: the common case, without an array to carry it.
    func submit(_ item: Outgoing) {
        let (accepted, mustWake) = state.withLock { state in
            Self.accept(&state) { $0.append(item) }
        }
        if mustWake {
            wake()
        } else if !accepted {
            Self.refuse(item)
        }
    }

    /// Queues unless closed; says whether the I/O thread sleeps and must be woken.
    private static func accept(_ state: inout State, _ append: (inout [Outgoing]) -> Void) -> (accepted: Bool, mustWake: Bool) {
        if state.closed { return (false, false) }
        append(&state.queue)
        let mustWake = state.idle
        state.idle = false
        return (true, mustWake)
    }

    private static func refuse(_ item: Outgoing) {
        item.command.free()
        item.waiter.complete(.failure(.closed))
    }

    func close() {
        state.withLock { $0.closed = true }
        wake()
    }

    /// Queues a job for the I/O thread; once the connection is closed, jobs go to the global pool.
    func enqueueJob(_ job: UnownedJob) {
        let (accepted, mustWake): (Bool, Bool) = state.withLock { state in
            if state.closed { return (false, false) }
            state.jobs.append(job)
            let mustWake = state.idle
            state.idle = false
            return (true, mustWake)
        }
        if mustWake { wake() }
        if !accepted { globalConcurrentExecutor.enqueue(job) }
    }

    func interrupt() {
        state.withLock { $0.interrupt = true }
        wake()
    }

    func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }
}
