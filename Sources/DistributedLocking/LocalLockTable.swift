import Synchronization

/// The no-Redis fallback: a process-wide table of held keys, so two lock instances with the
/// same key in one process really exclude each other. Release wakes the waiters.
final class LocalLockTable: Sendable {
    static let shared = LocalLockTable()

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var holders: [String: String] = [:]
        var fences: [String: Int64] = [:]
        var waiters: [String: [Waiter]] = [:]
        var nextWaiterID: UInt64 = 0
        /// Waiters whose timeout or cancellation fired before they were registered.
        var fired: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// Claims `key` for `token`; returns a fence that grows per key, or nil when held by another token.
    func tryAcquire(_ key: String, token: String) -> Int64? {
        state.withLock { state in
            guard state.holders[key] == nil else { return nil }
            state.holders[key] = token
            let fence = (state.fences[key] ?? 0) + 1
            state.fences[key] = fence
            return fence
        }
    }

    /// Frees `key` if `token` holds it and wakes everyone waiting for it. Returns whether it was held.
    @discardableResult
    func release(_ key: String, token: String) -> Bool {
        let woken: [Waiter]? = state.withLock { state in
            guard state.holders[key] == token else { return nil }
            state.holders[key] = nil
            return state.waiters.removeValue(forKey: key) ?? []
        }
        woken?.forEach { $0.continuation.resume() }
        return woken != nil
    }

    /// Suspends until `key` is released, `timeout` passes or the task is cancelled.
    func waitForRelease(_ key: String, timeout: Duration) async {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            self.wake(key, id: id)
        }
        defer {
            timer.cancel()
            _ = state.withLock { $0.fired.remove(id) }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let heldNow = state.withLock { state -> Bool in
                    if state.fired.remove(id) != nil { return false }
                    guard state.holders[key] != nil, !Task.isCancelled else { return false }
                    state.waiters[key, default: []].append(Waiter(id: id, continuation: continuation))
                    return true
                }
                if !heldNow { continuation.resume() }
            }
        } onCancel: {
            wake(key, id: id)
        }
    }

    private func wake(_ key: String, id: UInt64) {
        let waiter: Waiter? = state.withLock { state in
            guard let index = state.waiters[key]?.firstIndex(where: { $0.id == id }) else {
                state.fired.insert(id)
                return nil
            }
            return state.waiters[key]?.remove(at: index)
        }
        waiter?.continuation.resume()
    }
}
