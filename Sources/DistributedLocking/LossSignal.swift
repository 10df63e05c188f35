import Synchronization

/// Fires once when a lease is lost; any number of tasks can wait for it.
final class LossSignal: Sendable {
    private struct State {
        var cause: LeaseLossCause?
        var waiters: [UInt64: CheckedContinuation<LeaseLossCause?, Never>] = [:]
        var nextID: UInt64 = 0
        var abandoned: Set<UInt64> = []
        var handlers: [UInt64: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    var cause: LeaseLossCause? { state.withLock { $0.cause } }

    func fire(_ cause: LeaseLossCause) {
        let (waiters, handlers) = state.withLock { state -> ([CheckedContinuation<LeaseLossCause?, Never>], [@Sendable () -> Void]) in
            guard state.cause == nil else { return ([], []) }
            state.cause = cause
            defer { state.waiters.removeAll(); state.handlers.removeAll() }
            return (Array(state.waiters.values), Array(state.handlers.values))
        }
        waiters.forEach { $0.resume(returning: cause) }
        handlers.forEach { $0() }
    }

    /// Runs `action` once when the lease is lost, or at once (returning nil) if it already is.
    /// The returned id removes it with ``removeHandler(_:)``.
    func onLoss(_ action: @escaping @Sendable () -> Void) -> UInt64? {
        let id: UInt64? = state.withLock { state in
            guard state.cause == nil else { return nil }
            state.nextID += 1
            state.handlers[state.nextID] = action
            return state.nextID
        }
        if id == nil { action() }
        return id
    }

    func removeHandler(_ id: UInt64) {
        _ = state.withLock { $0.handlers.removeValue(forKey: id) }
    }

    /// The loss cause once the lease is lost; `nil` if the waiting task is cancelled first.
    func wait() async -> LeaseLossCause? {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: LeaseLossCause?? = state.withLock { state in
                    if let cause = state.cause { return .some(cause) }
                    if state.abandoned.remove(id) != nil || Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                let waiter = state.waiters.removeValue(forKey: id)
                if waiter == nil { state.abandoned.insert(id) }
                return waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}
