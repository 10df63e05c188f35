import Logging
import Synchronization

/// Pub/sub over one connection shared by every subscription of a client (or, sharded, of one
/// cluster node).
///
/// Subscribing returns only after the server confirmed the SUBSCRIBE, so a caller that
/// subscribes and then checks state cannot miss a message published after the check.
public final class RedisSubscriber: Sendable {
    private let connection: RedisConnection
    private let registry: SubscriptionRegistry
    /// Sharded pub/sub (`SSUBSCRIBE`, Redis 7): messages sent with `SPUBLISH` to the node that
    /// serves the channel's slot, rather than broadcast to every node of a cluster.
    public let sharded: Bool
    private let subscribeCommand: String
    private let unsubscribeCommand: String
    /// Our SUNSUBSCRIBEs still unanswered, by channel (see `Options.claimsUnsubscribe`).
    private let unsubscribing: UnsubscribeLedger

    init(
        configuration: RedisConfiguration, sharded: Bool = false, events: RedisConnectionEvents = RedisConnectionEvents(),
        currentEndpoint: (@Sendable () -> RedisConfiguration.Endpoint)? = nil, logger: Logger
    ) {
        let registry = SubscriptionRegistry()
        let unsubscribing = UnsubscribeLedger()
        let subscribeCommand = sharded ? "SSUBSCRIBE" : "SUBSCRIBE"
        self.registry = registry
        self.sharded = sharded
        self.subscribeCommand = subscribeCommand
        self.unsubscribeCommand = sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE"
        self.unsubscribing = unsubscribing
        let onConnect: @Sendable () -> [RedisCommand] = {
            registry.channels().map { RedisCommand(subscribeCommand, $0) }
        }
        let claimsUnsubscribe: (@Sendable ([UInt8]) -> Bool)? = sharded ? { @Sendable channel in unsubscribing.claim(channel) } : nil
        var options = RedisConnection.Options(name: sharded ? "shard-subscriber" : "subscriber", events: events)
        options.push = { push in registry.deliver(push) }
        options.onConnect = onConnect
        options.claimsUnsubscribe = claimsUnsubscribe
        options.currentEndpoint = currentEndpoint
        self.connection = RedisConnection(configuration: configuration, options: options, logger: logger)
    }

    /// Subscribes to `channel`; returns once the server has confirmed.
    public func subscribe(_ channel: String) async throws -> RedisSubscription {
        try await subscribe(Array(channel.utf8))
    }

    public func subscribe(_ channel: [UInt8]) async throws -> RedisSubscription {
        let subscription = RedisSubscription(channel: channel, subscriber: self)
        do {
            _ = try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<RESPValue, any Error>) in
                registry.add(subscription) {
                    do {
                        try connection.submit(RedisCommand(subscribeCommand, channel), waiter: .single(continuation))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        } catch {
            registry.remove(subscription) { _ in }
            throw error
        }
        return subscription
    }

    func unsubscribe(_ subscription: RedisSubscription) {
        registry.remove(subscription) { lastForChannel in
            if lastForChannel {
                if sharded { unsubscribing.expect(subscription.channel) }
                // Its answer is counted off the ledger when it comes; a SUNSUBSCRIBE dropped
                // unanswered (a disconnect, a close, an error reply) is counted off here. One still
                // queued across a reconnect goes out on the new connection and is answered there.
                let waiter: ReplyWaiter = sharded ? .callback { [unsubscribing, channel = subscription.channel] result in
                    if case .failure = result { _ = unsubscribing.claim(channel) }
                } : .discard
                do {
                    try connection.submit(RedisCommand(unsubscribeCommand, subscription.channel), waiter: waiter)
                } catch {
                    if sharded { _ = unsubscribing.claim(subscription.channel) }
                }
            }
        }
    }

    func close() {
        connection.close()
    }

    /// Closes the connection after telling every subscription to re-check, as a reconnect would:
    /// for a node that no longer serves their slots.
    func retire() {
        registry.deliver(.connected)
        connection.close()
    }
}

/// Our SUNSUBSCRIBEs not yet answered, by channel, so an unasked `sunsubscribe` can be told apart.
final class UnsubscribeLedger: Sendable {
    private let pending = Mutex<[[UInt8]: Int]>([:])

    func expect(_ channel: [UInt8]) { pending.withLock { $0[channel, default: 0] += 1 } }

    /// True (and counted off) when `channel` has a SUNSUBSCRIBE of ours outstanding.
    func claim(_ channel: [UInt8]) -> Bool {
        pending.withLock { pending in
            guard let count = pending[channel] else { return false }
            pending[channel] = count > 1 ? count - 1 : nil
            return true
        }
    }

}

/// Channel → local subscriptions. Mutations and the matching (UN)SUBSCRIBE are queued under one
/// lock, so the wire order always matches the registry.
final class SubscriptionRegistry: Sendable {
    private let table = Mutex<[[UInt8]: [ObjectIdentifier: RedisSubscription]]>([:])

    func add(_ subscription: RedisSubscription, then send: () -> Void) {
        table.withLock { table in
            table[subscription.channel, default: [:]][ObjectIdentifier(subscription)] = subscription
            send()
        }
    }

    func remove(_ subscription: RedisSubscription, then send: (_ lastForChannel: Bool) -> Void) {
        table.withLock { table in
            guard table[subscription.channel]?.removeValue(forKey: ObjectIdentifier(subscription)) != nil else { return }
            let last = table[subscription.channel]?.isEmpty ?? true
            if last { table[subscription.channel] = nil }
            send(last)
        }
    }

    func channels() -> [[UInt8]] {
        table.withLock { Array($0.keys) }
    }

    func deliver(_ push: RedisConnection.Push) {
        switch push {
        case .message(let channel, let payload):
            let targets = table.withLock { $0[channel].map { Array($0.values) } ?? [] }
            for target in targets { target.deliver(.message(payload)) }
        case .connected:
            let all = table.withLock { $0.values.flatMap { $0.values } }
            for target in all { target.deliver(.reconnected) }
        case .dropped(let channel):
            // The slot moved: tell its subscribers to re-check (and to subscribe anew where it lives now).
            let targets = table.withLock { $0.removeValue(forKey: channel).map { Array($0.values) } ?? [] }
            for target in targets { target.deliver(.reconnected) }
        }
    }
}

/// One subscription to one channel. Read it with ``next(timeout:)``; ``cancel()`` unsubscribes.
public final class RedisSubscription: Sendable {
    public enum Event: Sendable, Equatable {
        case message([UInt8])
        /// The subscriber connection was re-established; messages may have been missed meanwhile.
        case reconnected
    }

    private struct State {
        var buffer: [Event] = []
        var waiter: (id: UInt64, continuation: CheckedContinuation<Event?, Never>)?
        var nextWaiterID: UInt64 = 0
        /// Highest waiter id whose timeout or cancellation already fired, possibly before it was installed.
        var firedID: UInt64 = 0
        var cancelled = false
    }

    public let channel: [UInt8]
    private let subscriber: RedisSubscriber
    private let state = Mutex(State())
    private static let bufferLimit = 1024

    init(channel: [UInt8], subscriber: RedisSubscriber) {
        self.channel = channel
        self.subscriber = subscriber
    }

    func deliver(_ event: Event) {
        let waiter: CheckedContinuation<Event?, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter.continuation
            }
            if state.buffer.count >= Self.bufferLimit { state.buffer.removeFirst() }
            state.buffer.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// The next event, or `nil` when `timeout` passes, the task is cancelled, or the subscription ends.
    public func next(timeout: Duration) async -> Event? {
        let id: UInt64 = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.fire(id)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                var displaced: CheckedContinuation<Event?, Never>?
                defer { displaced?.resume(returning: nil) }
                let immediate: Event?? = state.withLock { state in
                    // One reader at a time: a second concurrent call ends the first with nil.
                    displaced = state.waiter?.continuation
                    state.waiter = nil
                    if state.cancelled || state.firedID >= id || Task.isCancelled { return .some(nil) }
                    if !state.buffer.isEmpty { return .some(state.buffer.removeFirst()) }
                    state.waiter = (id, continuation)
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            fire(id)
        }
    }

    /// Drops any buffered events (e.g. before re-checking state).
    public func drain() {
        state.withLock { $0.buffer.removeAll() }
    }

    /// Unsubscribes; a pending ``next(timeout:)`` returns `nil`.
    public func cancel() {
        let waiter = state.withLock { state -> CheckedContinuation<Event?, Never>? in
            guard !state.cancelled else { return nil }
            state.cancelled = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }
        waiter?.resume(returning: nil)
        subscriber.unsubscribe(self)
    }

    private func fire(_ id: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Event?, Never>? in
            state.firedID = max(state.firedID, id)
            guard let waiter = state.waiter, waiter.id == id else { return nil }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(returning: nil)
    }
}
