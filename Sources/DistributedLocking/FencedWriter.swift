/// Writes state only under a held lock, with the lock's fence, through a store that enforces it.
///
/// The local check is a fast path only: a holder that was paused past its TTL may still believe
/// it holds the lock, so the store's fence comparison is what actually protects a newer holder.
public struct FencedWriter: Sendable {
    public let store: any FencedStore
    public let lock: DistributedLock

    public init(store: any FencedStore, lock: DistributedLock) {
        self.store = store
        self.lock = lock
    }

    /// The bound lock's owner token.
    public var token: String { lock.token }

    /// Applies `update` to `target` with the lock's fence.
    /// - Throws: ``LockError/notHeld(key:)`` without contacting the store when the lock is not
    ///   held, and ``LockError/staleFence(key:fence:recorded:)`` when the store rejects the fence.
    public func write(_ update: StateUpdate, to target: FencedTarget) async throws {
        guard await lock.isHeld, let fence = await lock.fence else {
            throw LockError.notHeld(key: lock.key)
        }
        switch try await store.apply(update, to: target, fence: fence) {
        case .applied:
            return
        case .staleFence(let recorded):
            LockMetrics.forPrefix(LockKeys.metricPrefix(forLock: lock.key)).fenceRejections.increment()
            throw LockError.staleFence(key: lock.key, fence: fence, recorded: recorded)
        }
    }
}
