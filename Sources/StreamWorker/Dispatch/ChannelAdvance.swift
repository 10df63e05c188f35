import RedisClient

/// Wakes a message parked behind a gap when its channel may have advanced: the holder that
/// applies an earlier seq releases the channel's lock, and the release is published. The
/// subscription is made before the parked message lets go of the lock, so that release cannot
/// be missed; the dispatcher's retry pause remains the fallback bound.
final class ChannelAdvance: Sendable {
    private let subscription: RedisSubscription
    /// Our own release is published on the same channel and says nothing about progress.
    private let ownToken: [UInt8]

    init(subscription: RedisSubscription, ownToken: String) {
        self.subscription = subscription
        self.ownToken = Array(ownToken.utf8)
    }

    /// Returns at the first release by another holder (or a reconnect, after which a message may
    /// have been missed), or when `timeout` passes; then unsubscribes.
    func wait(timeout: Duration) async {
        defer { subscription.cancel() }
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero, let event = await subscription.next(timeout: left) else { return }
            if case .message(let payload) = event, payload == ownToken { continue }
            return
        }
    }

    /// Unsubscribes without waiting.
    func cancel() {
        subscription.cancel()
    }
}
