import RedisClient

/// Wakes a message parked behind a gap when its channel has reached it: the commit that applies
/// an earlier seq releases the channel's lock and publishes `<token> <last_seq>`. The
/// subscription is made before the parked message lets go of the lock, so that release cannot
/// be missed; the dispatcher's retry pause remains the fallback bound (for example when a
/// dead-lettered seq advanced the channel without a release).
final class ChannelAdvance: Sendable {
    private let subscription: RedisSubscription
    /// The parked message's seq: releases that leave the channel short of `seq - 1` are no news.
    private let seq: Int64

    init(subscription: RedisSubscription, seq: Int64) {
        self.subscription = subscription
        self.seq = seq
    }

    /// Whether a release announcement means the channel reached `seq`. Plain lock releases (a
    /// token alone, from a holder that applied nothing, our own included) do not.
    static func announcesProgress(_ payload: [UInt8], for seq: Int64) -> Bool {
        guard let space = payload.firstIndex(of: UInt8(ascii: " ")),
              let last = Int64(String(decoding: payload[(space + 1)...], as: UTF8.self)) else { return false }
        return last >= seq - 1
    }

    /// Returns when the channel reached the parked seq (or after a reconnect, when an announcement
    /// may have been missed), or when `timeout` passes; then unsubscribes.
    func wait(timeout: Duration) async {
        defer { subscription.cancel() }
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero, let event = await subscription.next(timeout: left) else { return }
            if case .message(let payload) = event, !Self.announcesProgress(payload, for: seq) { continue }
            return
        }
    }

    /// Unsubscribes without waiting.
    func cancel() {
        subscription.cancel()
    }
}
