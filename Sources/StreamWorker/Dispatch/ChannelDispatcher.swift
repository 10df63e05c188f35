/// Per-channel serial queues: one channel's messages run one at a time in stream order,
/// different channels run in parallel up to `concurrency`, and readers wait while too much is queued.
actor ChannelDispatcher {
    private let concurrency: Int
    private let maxQueued: Int
    private let process: @Sendable (InboundMessage) async -> Void

    private var queues: [String: [InboundMessage]] = [:]
    private var running: [String: Task<Void, Never>] = [:]
    /// Channels with queued messages that wait for a free slot, in arrival order.
    private var ready: [String] = []
    private var queued = 0
    private var capacityWaiters: [CheckedContinuation<Void, Never>] = []
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []

    init(concurrency: Int, maxQueued: Int, process: @escaping @Sendable (InboundMessage) async -> Void) {
        self.concurrency = max(1, concurrency)
        self.maxQueued = max(1, maxQueued)
        self.process = process
    }

    /// Messages accepted and not yet finished.
    var inFlight: Int { queued }
    /// Channels being worked on right now.
    var activeChannels: Int { running.count }

    func submit(_ message: InboundMessage) {
        queued += 1
        queues[message.channel, default: []].append(message)
        if running[message.channel] == nil, !ready.contains(message.channel) {
            ready.append(message.channel)
        }
        startReadyChannels()
    }

    /// Suspends while the number of queued messages is at the limit (backpressure on the reader).
    func waitForCapacity() async {
        while queued >= maxQueued {
            await withCheckedContinuation { capacityWaiters.append($0) }
        }
    }

    /// Suspends until every accepted message has finished.
    func waitUntilDrained() async {
        while queued > 0 {
            await withCheckedContinuation { drainWaiters.append($0) }
        }
    }

    /// Cancels the messages being processed (their locks are released; their entries stay pending).
    func cancelAll() {
        for task in running.values { task.cancel() }
    }

    private func startReadyChannels() {
        while running.count < concurrency, !ready.isEmpty {
            let channel = ready.removeFirst()
            running[channel] = Task { await self.drain(channel) }
        }
    }

    private func drain(_ channel: String) async {
        while let message = next(for: channel) {
            if Task.isCancelled {
                // Left pending in the group; redelivered after a restart or by a reclaimer.
                finished()
                continue
            }
            await process(message)
            finished()
        }
    }

    private func next(for channel: String) -> InboundMessage? {
        guard var queue = queues[channel], !queue.isEmpty else {
            queues[channel] = nil
            running[channel] = nil
            startReadyChannels()
            return nil
        }
        let message = queue.removeFirst()
        queues[channel] = queue.isEmpty ? nil : queue
        return message
    }

    private func finished() {
        queued -= 1
        if queued < maxQueued {
            let waiters = capacityWaiters
            capacityWaiters.removeAll()
            waiters.forEach { $0.resume() }
        }
        if queued == 0 {
            let waiters = drainWaiters
            drainWaiters.removeAll()
            waiters.forEach { $0.resume() }
        }
    }
}
