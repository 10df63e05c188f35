import DequeModule
import Synchronization

/// What processing a run of a channel's messages asks of the dispatcher.
enum DispatchOutcome: Sendable {
    /// Every message of the run is finished.
    case done
    /// The first `finished` messages are finished; the rest go back to the channel's queue, and the
    /// channel goes back in line behind the others that wait for a slot.
    case requeue(finished: Int)
    /// The first `finished` messages are finished; the next is not ready yet (an earlier seq of the
    /// channel is elsewhere): retry after the pause, or when `wake` returns if sooner, without
    /// holding a slot meanwhile, so the workers holding the earlier messages can make progress.
    /// `wake` is given the pause as its timeout.
    case retry(finished: Int = 0, after: Duration, wake: (@Sendable (Duration) async -> Void)? = nil)
    /// The first `finished` messages are finished; the channel's task was cancelled by a lease lost
    /// while it ran the handlers, so the rest goes on in a new task, the next run starting with
    /// `retries` (the bound on lost leases and rejected commits spans both runs).
    case restart(finished: Int, retries: Int)
}

/// A channel's task, for whoever must cancel it from outside: the lock, when the lease is lost
/// while the handlers run in it, and the dispatcher.
final class ChannelTask: Sendable {
    private struct State {
        var task: Task<Void, Never>?
        var stopped = false
    }

    private let state = Mutex(State())

    fileprivate func set(_ task: Task<Void, Never>) { state.withLock { $0.task = task } }

    /// Cancels the task (a lost lease): the channel goes on in a new one.
    func cancel() { state.withLock { $0.task }?.cancel() }

    /// Cancels the task for good (shutdown, a shed): what it leaves is not started again, since
    /// the partition may have been queued anew by then.
    fileprivate func stop() {
        state.withLock { state in
            state.stopped = true
            return state.task
        }?.cancel()
    }

    fileprivate var stopped: Bool { state.withLock { $0.stopped } }
}

/// A queued message and when it first found its channel not ready.
struct DispatchJob: Sendable {
    var message: InboundMessage
    var notReadySince: ContinuousClock.Instant?
    var retries = 0
    /// Lost leases and rejected commits of the run that was restarted with this job at its head.
    var runRetries = 0
}

/// Per-channel serial queues: one channel's messages run in stream order, in runs of up to
/// `runLimit` consecutive messages handed over together (one claim and one commit), different
/// channels run in parallel up to `concurrency`, and readers wait while too much is queued.
actor ChannelDispatcher {
    private let concurrency: Int
    private let maxQueued: Int
    private let runLimit: Int
    private let process: @Sendable ([DispatchJob], ChannelTask) async -> DispatchOutcome

    private var queues: [String: ChannelQueue] = [:]
    /// Channels waiting out a retry pause; they hold no slot.
    private var parked: Set<String> = []
    private var running: [String: ChannelTask] = [:]
    /// The stream of the message each running channel is processing.
    private var runningStream: [String: String] = [:]
    /// Channels with queued messages that wait for a free slot, in arrival order.
    private var ready = ReadyChannels()
    private var queued = 0
    /// Entry ids accepted and not finished, per stream: their pending-list idle time is kept fresh.
    private var entries: [String: Set<String>] = [:]
    private var capacityWaiters: [CheckedContinuation<Void, Never>] = []
    private var drainWaiters: [Int: CheckedContinuation<Bool, Never>] = [:]
    private var nextDrainWaiter = 0
    /// Set by `stopStarting()`: nothing is accepted or started any more, only running turns finish.
    private var stopping = false
    /// Streams of partitions being shed: nothing more of them is accepted until they are read again.
    /// A read or reclaim still under way when the partition was shed would otherwise queue a later
    /// message of a channel whose earlier ones were just dropped, and that message would wait for a
    /// gap no one here fills.
    private var closed: Set<String> = []

    /// - Parameter process: runs a channel's run in the channel's task, whose handle it is given.
    init(concurrency: Int, maxQueued: Int, runLimit: Int = 1, process: @escaping @Sendable ([DispatchJob], ChannelTask) async -> DispatchOutcome) {
        self.concurrency = max(1, concurrency)
        self.maxQueued = max(1, maxQueued)
        self.runLimit = max(1, runLimit)
        self.process = process
    }

    /// Messages accepted and not yet finished.
    var inFlight: Int { queued }
    /// Channels being worked on right now.
    var activeChannels: Int { running.count }

    /// Accepted, unfinished entry ids per stream.
    var inFlightEntries: [String: Set<String>] { entries }

    /// Accepted, unfinished messages per stream.
    var inFlightCounts: [String: Int] { entries.mapValues(\.count) }

    /// Drops the queued, not yet running messages of `streams` (their entries stay pending), and
    /// accepts no more of them until ``reopen(streams:)``.
    func dropQueued(streams: Set<String>) {
        closed.formUnion(streams)
        for channel in Array(queues.keys) {
            let dropped = queues[channel]!.removeAll { streams.contains($0.message.stream) }
            dropped.forEach { finished($0.message) }
            if queues[channel]!.isEmpty {
                queues[channel] = nil
                if running[channel] == nil { ready.remove(channel) }
            }
        }
    }

    /// Accepts messages of `streams` again (their partition is read here again).
    func reopen(streams: Set<String>) { closed.subtract(streams) }

    /// Stops tracking the entries of `streams` (the refresher no longer claims them back); messages
    /// of them still running finish as usual. Nothing of them is queued: their partition was shed.
    func forget(streams: Set<String>) {
        for stream in streams { entries[stream] = nil }
    }

    /// Cancels the channels running a message of `streams`; their queued messages go with them.
    func cancelRunning(streams: Set<String>) {
        for (channel, stream) in runningStream where streams.contains(stream) { running[channel]?.stop() }
    }

    /// Which of `ids` are already queued or running here (a reclaim must not queue them twice).
    func contains(stream: String, ids: [String]) -> Set<String> {
        guard let known = entries[stream] else { return [] }
        return Set(ids.filter { known.contains($0) })
    }

    func submit(_ message: InboundMessage) {
        enqueue(message)
        startReadyChannels()
    }

    /// Queues a read's messages in one turn, so that a channel's run starts with all of them
    /// rather than with the first while the rest are still on their way here.
    func submit(_ messages: [InboundMessage]) {
        for message in messages { enqueue(message) }
        startReadyChannels()
    }

    private func enqueue(_ message: InboundMessage) {
        // Not tracked, so not refreshed: it stays pending and another worker reclaims it.
        if stopping || closed.contains(message.stream) { return }
        guard entries[message.stream, default: []].insert(message.id).inserted else { return }
        queued += 1
        insertInOrder(DispatchJob(message: message))
        if running[message.channel] == nil, !parked.contains(message.channel) {
            ready.append(message.channel)
        }
    }

    /// Suspends while the number of queued messages is at the limit (backpressure on the reader).
    func waitForCapacity() async {
        while queued >= maxQueued, !stopping {
            await withCheckedContinuation { capacityWaiters.append($0) }
        }
    }

    /// Suspends until every accepted message has finished or `timeout` passed; true when drained.
    func waitUntilDrained(timeout: Duration) async -> Bool {
        if queued == 0 { return true }
        let id = nextDrainWaiter
        nextDrainWaiter += 1
        // The continuation is stored before this actor runs anything else, so the timer finds it.
        let timer = Task { try? await Task.sleep(for: timeout); self.resumeDrainWaiter(id, drained: false) }
        defer { timer.cancel() }
        return await withCheckedContinuation { drainWaiters[id] = $0 }
    }

    private func resumeDrainWaiter(_ id: Int, drained: Bool) {
        drainWaiters.removeValue(forKey: id)?.resume(returning: drained)
    }

    /// Shutdown's first step: accept nothing more, start nothing more, and drop every queued
    /// message (each stays pending in the group). Turns already running go on.
    func stopStarting() {
        guard !stopping else { return }
        stopping = true
        for (channel, queue) in queues {
            queue.jobs.forEach { finished($0.message) }
            queues[channel] = nil
        }
        ready.removeAll()
        parked.removeAll()
        let waiters = capacityWaiters
        capacityWaiters.removeAll()
        waiters.forEach { $0.resume() }
    }

    /// Cancels the messages being processed and drops the queued ones (their locks are released;
    /// their entries stay pending and are redelivered).
    func cancelAll() {
        for task in running.values { task.stop() }
        for (channel, queue) in queues where running[channel] == nil {
            queue.jobs.forEach { finished($0.message) }
            queues[channel] = nil
        }
        ready.removeAll()
    }

    private func startReadyChannels() {
        while !stopping, running.count < concurrency, let channel = ready.popFirst() {
            // The task runs nothing before this turn ends (drain is isolated here): the handle is set first.
            let handle = ChannelTask()
            handle.set(Task { await self.drain(channel, handle) })
            running[channel] = handle
        }
    }

    /// A channel's task: its runs one after another. Only `process` is awaited here, and the
    /// frame that stays allocated meanwhile (once per channel in flight) holds little else.
    private func drain(_ channel: String, _ handle: ChannelTask) async {
        while let run = nextRunToProcess(for: channel) {
            let outcome = await process(run, handle)
            guard processed(run, of: channel, outcome) else { return }
        }
    }

    /// The next run of `channel` to process. A cancelled task (a shed, shutdown, a lease lost just
    /// after its run) starts nothing more: what was queued meanwhile goes to a new task, unless its
    /// stream was shed or shutdown began (then it is left pending in the group, redelivered after
    /// a restart or by a reclaimer). A partition read again after a shed queues its new messages
    /// behind the stopped task, and they must not wait for claim-idle.
    private func nextRunToProcess(for channel: String) -> [DispatchJob]? {
        guard let run = nextRun(for: channel) else { return nil }
        guard Task.isCancelled else {
            runningStream[channel] = run[0].message.stream
            return run
        }
        run.forEach { putBack($0) }
        running[channel] = nil
        if queues[channel] != nil { ready.append(channel) }
        startReadyChannels()
        return nil
    }

    /// Applies a run's outcome; false when the channel's task ends here (it requeued or parked).
    private func processed(_ run: [DispatchJob], of channel: String, _ outcome: DispatchOutcome) -> Bool {
        runningStream[channel] = nil
        switch outcome {
        case .done:
            run.forEach { finished($0.message) }
        case .requeue(let count):
            run.prefix(count).forEach { finished($0.message) }
            run.dropFirst(count).forEach { putBack($0) }
            if !ready.isEmpty, queues[channel] != nil {
                // Someone else waits for a slot: take the channel's turn again behind them.
                running[channel] = nil
                ready.append(channel)
                startReadyChannels()
                return false
            }
        case .retry(let count, let pause, let wake):
            run.prefix(count).forEach { finished($0.message) }
            park(channel, Array(run.dropFirst(count)), for: pause, wake: wake)
            return false
        case .restart(let count, let retries):
            run.prefix(count).forEach { finished($0.message) }
            let stopped = running[channel]?.stopped == true
            for (index, job) in run.dropFirst(count).enumerated() {
                if stopped { finished(job.message) } else { putBack(job, runRetries: index == 0 ? retries : 0) }
            }
            // This task stays cancelled: the channel gets a new one.
            running[channel] = nil
            if queues[channel] != nil { ready.append(channel) }
            startReadyChannels()
            return false
        }
        return true
    }

    /// The next run of `channel`: its queue's head and the messages after it of the same stream,
    /// up to `runLimit`; nil (and the slot freed) when the queue is empty.
    private func nextRun(for channel: String) -> [DispatchJob]? {
        guard let first = queues[channel]?.popFirst() else {
            queues[channel] = nil
            running[channel] = nil
            startReadyChannels()
            return nil
        }
        var run = [first]
        while run.count < runLimit, let job = queues[channel]?.popFirst(if: { $0.message.stream == first.message.stream }) {
            run.append(job)
        }
        if queues[channel]?.isEmpty == true { queues[channel] = nil }
        return run
    }

    /// Returns a job that ran (or waited) to its channel's queue; one of a stream shed meanwhile, or
    /// any once stopping, is finished instead and stays pending for whoever reads the stream next.
    /// `runRetries` is kept only by the head of a restarted run: a later run starts its own count.
    private func putBack(_ job: DispatchJob, runRetries: Int = 0) {
        if stopping || closed.contains(job.message.stream) {
            finished(job.message)
        } else {
            var job = job
            job.runRetries = runRetries
            insertInOrder(job)
        }
    }

    /// Keeps a channel's queue in stream order even when entries arrive late (reclaimed from a
    /// dead worker): a later message at the head would otherwise wait forever for one behind it.
    private func insertInOrder(_ job: DispatchJob) {
        queues[job.message.channel, default: ChannelQueue()].insertInOrder(job)
    }

    /// Stream order: by seq when both have one, else by entry id within a stream.
    static func precedes(_ a: InboundMessage, _ b: InboundMessage) -> Bool {
        if let x = a.seq, let y = b.seq { return x < y }
        guard a.stream == b.stream, let x = StreamID(a.id), let y = StreamID(b.id) else { return false }
        return x < y
    }

    /// Puts the jobs back at the head of their channel and frees the slot until the pause is over;
    /// the first of them is the one that waits.
    private func park(_ channel: String, _ jobs: [DispatchJob], for pause: Duration, wake: (@Sendable (Duration) async -> Void)?) {
        if stopping {
            running[channel] = nil
            jobs.forEach { finished($0.message) }
            return
        }
        for (index, job) in jobs.enumerated() {
            var job = job
            if index == 0 {
                job.notReadySince = job.notReadySince ?? .now
                job.retries += 1
            }
            putBack(job)
        }
        running[channel] = nil
        parked.insert(channel)
        startReadyChannels()
        Task {
            if let wake { await wake(pause) } else { try? await Task.sleep(for: pause) }
            self.unpark(channel)
        }
    }

    private func unpark(_ channel: String) {
        parked.remove(channel)
        if running[channel] == nil, queues[channel].map({ !$0.isEmpty }) == true {
            ready.append(channel)
        }
        startReadyChannels()
    }

    private func finished(_ message: InboundMessage) {
        entries[message.stream]?.remove(message.id)
        queued -= 1
        if queued < maxQueued {
            let waiters = capacityWaiters
            capacityWaiters.removeAll()
            waiters.forEach { $0.resume() }
        }
        if queued == 0 {
            let waiters = drainWaiters.values
            drainWaiters.removeAll()
            waiters.forEach { $0.resume(returning: true) }
        }
    }
}

/// One channel's jobs in stream order. Popping advances a head index instead of shifting the
/// array, and jobs are mutated in place in the dispatcher's dictionary (no copy per message).
struct ChannelQueue {
    private var storage: [DispatchJob] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var jobs: ArraySlice<DispatchJob> { storage[head...] }

    /// Pops the head only if it matches.
    mutating func popFirst(if matches: (DispatchJob) -> Bool) -> DispatchJob? {
        guard head < storage.count, matches(storage[head]) else { return nil }
        return popFirst()
    }

    mutating func popFirst() -> DispatchJob? {
        guard head < storage.count else { return nil }
        let job = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64, head * 2 >= storage.count {
            storage.removeSubrange(0..<head)
            head = 0
        }
        return job
    }

    /// Removes and returns the jobs that match.
    mutating func removeAll(where shouldRemove: (DispatchJob) -> Bool) -> [DispatchJob] {
        let removed = storage[head...].filter(shouldRemove)
        guard !removed.isEmpty else { return [] }
        storage = storage[head...].filter { !shouldRemove($0) }
        head = 0
        return removed
    }

    /// Usually an append: entries arrive in order, and only reclaimed or parked ones go earlier.
    mutating func insertInOrder(_ job: DispatchJob) {
        var index = storage.count
        while index > head, ChannelDispatcher.precedes(job.message, storage[index - 1].message) { index -= 1 }
        storage.insert(job, at: index)
    }
}

/// A stream entry id (`<ms>-<seq>`), ordered as Redis orders them.
struct StreamID: Comparable {
    let ms: UInt64
    let seq: UInt64

    /// Parsed from the UTF-8 bytes: it runs for every message (the end-to-end latency), and
    /// `String.split` walked grapheme clusters.
    init?(_ text: String) {
        var text = text
        let parsed: (UInt64, UInt64)? = text.withUTF8 { bytes in
            var ms: UInt64 = 0, seq: UInt64 = 0
            var seenDash = false, digits = 0
            for byte in bytes {
                if byte == UInt8(ascii: "-") {
                    guard !seenDash, digits > 0 else { return nil }
                    seenDash = true
                    digits = 0
                    continue
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                let (times, o1) = (seenDash ? seq : ms).multipliedReportingOverflow(by: 10)
                let (sum, o2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
                guard !o1, !o2 else { return nil }
                if seenDash { seq = sum } else { ms = sum }
                digits += 1
            }
            return seenDash && digits > 0 ? (ms, seq) : nil
        }
        guard let parsed else { return nil }
        (ms, seq) = parsed
    }

    static func < (a: StreamID, b: StreamID) -> Bool { (a.ms, a.seq) < (b.ms, b.seq) }
}

/// The channels waiting for a slot, first come first served, each at most once. A read can make
/// thousands ready in one turn: appending, popping and asking are O(1), and a removal only
/// forgets the channel's ticket, so its old place in line is skipped when it comes up.
struct ReadyChannels {
    private var line = Deque<(channel: String, ticket: Int)>()
    private var tickets: [String: Int] = [:]
    private var lastTicket = 0

    var isEmpty: Bool { tickets.isEmpty }

    func contains(_ channel: String) -> Bool { tickets[channel] != nil }

    /// Queues `channel` at the back unless it already waits.
    mutating func append(_ channel: String) {
        guard tickets[channel] == nil else { return }
        lastTicket += 1
        tickets[channel] = lastTicket
        line.append((channel, lastTicket))
    }

    mutating func popFirst() -> String? {
        while let (channel, ticket) = line.popFirst() {
            if tickets[channel] == ticket {
                tickets[channel] = nil
                return channel
            }
        }
        return nil
    }

    mutating func remove(_ channel: String) { tickets[channel] = nil }

    mutating func removeAll() {
        line.removeAll()
        tickets.removeAll()
    }
}
