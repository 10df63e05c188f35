/// Errors from ``DistributedLock`` and ``FencedWriter``, each naming the lock key.
public enum LockError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `withLock` could not acquire within its timeout.
    case acquireTimedOut(key: String)
    /// The lease was lost while the body ran; the body was cancelled (abort on loss).
    case leaseLost(key: String, cause: LeaseLossCause)
    /// A fenced write was attempted without holding the lock (refused locally, nothing sent).
    case notHeld(key: String)
    /// The store refused the write: a newer holder already wrote with a higher fence.
    case staleFence(key: String, fence: Int64, recorded: Int64)

    public var description: String {
        switch self {
        case .acquireTimedOut(let key): return "timed out acquiring lock \(key)"
        case .leaseLost(let key, let cause): return "lease on \(key) lost (\(cause))"
        case .notHeld(let key): return "lock \(key) is not held; write refused"
        case .staleFence(let key, let fence, let recorded):
            return "write under \(key) with fence \(fence) rejected: store already at fence \(recorded)"
        }
    }
}
