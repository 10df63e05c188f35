import Synchronization

final class Flag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var value: Bool { state.withLock { $0 } }
}

final class Box<T: Sendable>: Sendable {
    private let state = Mutex<T?>(nil)
    func set(_ value: T) { state.withLock { $0 = value } }
    var value: T? { state.withLock { $0 } }
}

/// Counts tasks inside a critical section and remembers the most seen at once.
final class Counter: Sendable {
    private let state = Mutex((current: 0, maximum: 0))
    @discardableResult
    func increment() -> Int {
        state.withLock { s in
            s.current += 1
            s.maximum = max(s.maximum, s.current)
            return s.current
        }
    }
    func decrement() { state.withLock { $0.current -= 1 } }
    var maximum: Int { state.withLock { $0.maximum } }
}
