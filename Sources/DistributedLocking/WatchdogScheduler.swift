import Synchronization

/// Starts a lock's watchdog only when its first decision is due. Most holds end long before
/// their first renewal (a third of the TTL), and a sleeping task per hold cost a task, a timer
/// and a cancellation per message; here a hold costs a heap insert, and one shared sleeper
/// wakes for the earliest due lock.
final class WatchdogScheduler: Sendable {
    static let shared = WatchdogScheduler()

    private struct Entry: Sendable {
        let due: ContinuousClock.Instant
        /// Weak: a lock dropped without release() must not be kept alive, let alone renewed.
        weak let lock: DistributedLock?
        let generation: Int
    }

    private struct State: Sendable {
        var heap = BinaryHeap<Entry> { $0.due < $1.due }
        var wakeAt: ContinuousClock.Instant?
        var sleeper: Task<Void, Never>?
        var sleeperID = 0
    }

    private let state = Mutex(State())

    /// Asks `lock` to start its watchdog for `generation` at `due` (unless it moved on by then).
    func schedule(_ lock: DistributedLock, generation: Int, at due: ContinuousClock.Instant) {
        state.withLock { state in
            state.heap.push(Entry(due: due, lock: lock, generation: generation))
            if let wakeAt = state.wakeAt, wakeAt <= due { return }
            arm(&state, at: due)
        }
    }

    private func arm(_ state: inout State, at due: ContinuousClock.Instant) {
        state.sleeper?.cancel()
        state.sleeperID += 1
        state.wakeAt = due
        let id = state.sleeperID
        state.sleeper = Task { [self] in
            do { try await Task.sleep(until: due, clock: .continuous) } catch { return }
            fire(sleeperID: id)
        }
    }

    private func fire(sleeperID: Int) {
        let now = ContinuousClock.now
        let due: [Entry] = state.withLock { state in
            guard state.sleeperID == sleeperID else { return [] }
            var due: [Entry] = []
            while let first = state.heap.first, first.due <= now { due.append(state.heap.pop()!) }
            state.sleeper = nil
            state.wakeAt = nil
            if let next = state.heap.first { arm(&state, at: next.due) }
            return due
        }
        for entry in due {
            guard let lock = entry.lock else { continue }
            Task { await lock.watchdogDue(generation: entry.generation) }
        }
    }
}

/// A binary min-heap under a caller-given order.
struct BinaryHeap<Element: Sendable>: Sendable {
    private var items: [Element] = []
    private let less: @Sendable (Element, Element) -> Bool

    init(by less: @escaping @Sendable (Element, Element) -> Bool) {
        self.less = less
    }

    var first: Element? { items.first }
    var count: Int { items.count }

    mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count, less(items[left], items[smallest]) { smallest = left }
            if right < items.count, less(items[right], items[smallest]) { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
