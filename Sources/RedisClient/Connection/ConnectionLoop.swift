import CHiredis
import DequeModule
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The I/O thread's side of a connection: owns the socket (``Transport``, plain or TLS), hiredis's
/// reply reader, the bytes waiting to be written, and the in-flight queue.
///
/// `@unchecked Sendable`: after `run()` starts, every stored property is touched only by that
/// one thread; the only state shared with callers lives in `ConnectionShared` behind its mutex.
final class ConnectionLoop: @unchecked Sendable {
    private struct InFlight {
        var waiter: ReplyWaiter
        var deadline: ContinuousClock.Instant?
        /// A blocking command: its reply may take long, so new submissions must wake the loop.
        var blocks: Bool
    }

    private let configuration: RedisConfiguration
    private let options: RedisConnection.Options
    private let shared: ConnectionShared
    private var logger: Logger

    /// The connected socket; `nil` while disconnected.
    private var transport: Transport?
    /// A fresh parser per connection, so a reply cut off by a dropped connection cannot leak into the next.
    private var reader = RESPReader()
    /// Formatted commands not yet accepted by the socket; `outputStart` is how far the socket took them.
    private var output: [UInt8] = []
    private var outputStart = 0
    /// Commands taken from the submit queue but not yet handed to hiredis (waiting for a connection).
    private var pending: [Outgoing] = []
    private var inFlight = Deque<InFlight>()
    private var needsWrite = false
    private var failedAttempts = 0
    private var hasConnected = false
    /// Callers resumed since the last write; most of them send again right away.
    private var resumedSinceFlush = 0
    /// Resumed callers ran here on our thread, so they have already resubmitted: nothing to wait for.
    private var ranJobsSinceFlush = false
    private var nextAttempt: ContinuousClock.Instant = .now
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)

    init(configuration: RedisConfiguration, options: RedisConnection.Options, shared: ConnectionShared, logger: Logger) {
        self.configuration = configuration
        self.options = options
        self.shared = shared
        self.logger = logger
        self.logger[metadataKey: "redis.connection"] = .string(options.name)
    }

    func run() {
        // Our short coalescing sleeps must not be stretched by the default 50 µs timer slack.
        _ = sg_set_timer_slack(2_000)
        bindToCurrentThread()
        // A write to a socket the server closed raises SIGPIPE in the writing thread, which would
        // kill the process. Blocked here, the write fails with EPIPE and the loop reconnects.
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, nil)
        while true {
            runJobs()
            let (incoming, closed, interrupt) = shared.state.withLock { state in
                let taken = state.queue
                state.queue.removeAll(keepingCapacity: true)
                state.idle = false
                let interrupt = state.interrupt
                state.interrupt = false
                return (taken, state.closed, interrupt)
            }
            pending.append(contentsOf: incoming)
            if closed {
                disconnect(failingWith: .closed)
                failPending(.closed)
                runJobs()
                return
            }
            if interrupt {
                // Only dedicated connections interrupt, and they serve one caller at a time.
                if transport != nil { disconnect(failingWith: .cancelled) }
                failPending(.cancelled)
                nextAttempt = .now
            }
            if transport == nil {
                failExpiredPending()
                let wantsConnection = !pending.isEmpty || options.push != nil
                if !wantsConnection {
                    waitForWake(until: nil)
                    continue
                }
                let now = ContinuousClock.now
                if now < nextAttempt {
                    waitForWake(until: min(nextAttempt, pending.compactMap(\.deadline).min() ?? nextAttempt))
                    continue
                }
                do {
                    try connect()
                    failedAttempts = 0
                    if hasConnected { options.events.reconnected?() }
                    // Tell subscribers "reconnected" only once the server confirmed the last
                    // re-subscription, so a re-check after the event cannot miss a message.
                    let replay = options.onConnect?().compactMap { try? EncodedCommand($0) } ?? []
                    let announce: @Sendable () -> Void = { [push = options.push, first = !hasConnected] in
                        if !first { push?(.connected) }
                    }
                    for (i, encoded) in replay.enumerated().reversed() {
                        let waiter: ReplyWaiter = i == replay.count - 1 ? .callback { _ in announce() } : .discard
                        pending.insert(Outgoing(command: encoded, waiter: waiter, deadline: .now + configuration.commandTimeout), at: 0)
                    }
                    if replay.isEmpty { announce() }
                    hasConnected = true
                } catch {
                    let delay = configuration.backoff.delay(attempt: failedAttempts)
                    failedAttempts += 1
                    nextAttempt = .now + delay
                    options.events.connectFailed?()
                    logger.warning("Redis connect failed", metadata: ["error": "\(error)", "retry_in_ms": "\(delay.redisMilliseconds)"])
                    failPending(error)
                    continue
                }
            }
            coalesce()
            flushPending()
            if needsWrite { writeOut() }
            guard transport != nil else { continue }
            pollOnce()
        }
    }

    // MARK: Connecting

    private func connect() throws(RedisError) {
        var configuration = self.configuration
        if let endpoint = options.currentEndpoint?() { configuration.endpoint = endpoint }
        let fd = try SocketConnector.connect(configuration.endpoint, timeout: configuration.connectTimeout)
        let connected: Transport
        if let tls = configuration.tls, case .tcp(let host, _) = configuration.endpoint {
            let session: TLSSession
            do {
                session = try TLSSession.connect(
                    fd: fd, configuration: tls, host: host, endpoint: configuration.endpointDescription,
                    deadline: .now + configuration.connectTimeout)
            } catch {
                Glibc.close(fd)
                throw error
            }
            connected = Transport(fd: fd, tls: session)
        } else {
            connected = Transport(fd: fd)
        }
        reader = RESPReader()
        var setup: [RedisCommand] = []
        if let password = configuration.password {
            var auth = RedisCommand("AUTH")
            if let user = configuration.username { auth.append(user) }
            auth.append(password)
            setup.append(auth)
        }
        if configuration.database != 0 { setup.append(RedisCommand("SELECT", configuration.database)) }
        if let name = configuration.clientName { setup.append(RedisCommand("CLIENT", "SETNAME", name)) }
        if !setup.isEmpty { try handshake(connected, setup) }
        transport = connected
        output.removeAll(keepingCapacity: true)
        outputStart = 0
        needsWrite = false
        logger.debug("Redis connected", metadata: ["endpoint": "\(configuration.endpointDescription)", "tls": "\(configuration.tls != nil)"])
    }

    /// Sends the setup commands in one write and waits for their replies, blocking this thread
    /// (it is the connection's own) up to the command timeout. Any error reply aborts the connect.
    private func handshake(_ connection: Transport, _ commands: [RedisCommand]) throws(RedisError) {
        var bytes: [UInt8] = []
        for command in commands {
            let encoded = try EncodedCommand(command)
            bytes.append(contentsOf: encoded.bytes)
            encoded.free()
        }
        let deadline = ContinuousClock.now + configuration.commandTimeout
        let names = commands.map(\.name).joined(separator: "/")
        func fail(_ why: String) -> RedisError { .connectFailed("\(names) during handshake: \(why)") }
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { connection.write(UnsafeRawBufferPointer(rebasing: $0[sent...])) }
            switch result {
            case .transferred(let n): sent += n
            case .wouldBlock:
                let events = connection.writeWantsRead ? Int16(POLLIN) : Int16(POLLOUT)
                guard SocketWait.wait(connection.fd, for: events, until: deadline) else { throw fail("timed out") }
            case .closed: throw fail("server closed the connection")
            case .failed(let why): throw fail(why)
            }
        }
        var replies: [RESPValue] = []
        while replies.count < commands.count {
            if let reply = try reader.next() {
                replies.append(reply)
                continue
            }
            let result = readBuffer.withUnsafeMutableBytes { connection.read(into: $0) }
            switch result {
            case .transferred(let n): try reader.feed(readBuffer, count: n)
            case .wouldBlock:
                if connection.hasBufferedInput { continue }
                let events = connection.readWantsWrite ? Int16(POLLOUT) : Int16(POLLIN)
                guard SocketWait.wait(connection.fd, for: events, until: deadline) else { throw fail("timed out") }
            case .closed: throw fail("server closed the connection")
            case .failed(let why): throw fail(why)
            }
        }
        for case .error(let error) in replies { throw .server(error) }
    }

    // MARK: Writing

    /// Waits a few microseconds for the callers just resumed to submit again, so that they share
    /// one write and one round trip instead of trickling out one by one. A lone caller that
    /// resubmits at once never waits.
    private func coalesce() {
        guard transport != nil, !ranJobsSinceFlush, !pending.isEmpty, pending.count < resumedSinceFlush else { return }
        for _ in 0..<4 {
            var pause = timespec(tv_sec: 0, tv_nsec: 15_000)
            nanosleep(&pause, nil)
            let more = shared.state.withLock { state in
                let taken = state.queue
                state.queue.removeAll(keepingCapacity: true)
                return taken
            }
            pending.append(contentsOf: more)
            if pending.count >= resumedSinceFlush { break }
        }
    }

    private func flushPending() {
        guard transport != nil, !pending.isEmpty else { return }
        for item in pending {
            output.append(contentsOf: UnsafeRawBufferPointer(start: item.command.pointer, count: item.command.length))
            item.command.free()
            inFlight.append(InFlight(waiter: item.waiter, deadline: item.deadline, blocks: item.blocks))
        }
        pending.removeAll(keepingCapacity: true)
        needsWrite = true
        resumedSinceFlush = 0
        ranJobsSinceFlush = false
    }

    private func writeOut() {
        guard let transport else { return }
        while outputStart < output.count {
            let result = output.withUnsafeBytes { transport.write(UnsafeRawBufferPointer(rebasing: $0[outputStart...])) }
            switch result {
            case .transferred(let n):
                outputStart += n
            case .wouldBlock:
                needsWrite = true
                return
            case .closed:
                disconnect(failingWith: .connectionLost("server closed the connection"))
                return
            case .failed(let why):
                disconnect(failingWith: .connectionLost(why))
                return
            }
        }
        // A burst can grow the buffer far past what steady traffic needs; don't keep that forever.
        if output.capacity > 1 << 20 { output = [] } else { output.removeAll(keepingCapacity: true) }
        outputStart = 0
        needsWrite = false
    }

    // MARK: Reading

    private func pollOnce() {
        guard let transport else { return }
        // TLS may need the opposite readiness to finish a read or a write (see Transport).
        let wantsOut = (needsWrite && !transport.writeWantsRead) || transport.readWantsWrite
        var fds = [
            pollfd(fd: transport.fd, events: Int16(POLLIN) | (wantsOut ? Int16(POLLOUT) : 0), revents: 0),
            pollfd(fd: shared.wakeFD, events: Int16(POLLIN), revents: 0),
        ]
        var timeoutMs: Int32 = -1
        if let deadline = inFlight.first?.deadline {
            let remaining = ContinuousClock.now.duration(to: deadline)
            timeoutMs = remaining <= .zero ? 0 : Int32(clamping: remaining.redisMilliseconds)
        }
        // Bytes OpenSSL already decrypted raise no poll event: take them without sleeping.
        if transport.hasBufferedInput { timeoutMs = 0 }
        // While ordinary replies are outstanding their arrival wakes us, and new submissions
        // ride along with the next batch; only an idle or blocked loop needs the eventfd.
        if inFlight.isEmpty || inFlight.first!.blocks {
            guard markIdleIfQueueEmpty() else { return }
        }
        let n = poll(&fds, 2, timeoutMs)
        if n < 0 && errno != EINTR {
            disconnect(failingWith: .connectionLost("poll failed: errno \(errno)"))
            return
        }
        if fds[1].revents != 0 { drainWake() }
        let revents = fds[0].revents
        let readable = revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0
        let writable = revents & Int16(POLLOUT) != 0
        if needsWrite, writable || (readable && transport.writeWantsRead) { writeOut() }
        if self.transport != nil, readable || transport.hasBufferedInput || (writable && transport.readWantsWrite) { readIn() }
        if let deadline = inFlight.first?.deadline, ContinuousClock.now >= deadline {
            logger.warning("Redis command timed out; dropping connection", metadata: ["in_flight": "\(inFlight.count)"])
            disconnect(failingWith: .timeout(configuration.commandTimeout))
        }
    }

    private func readIn() {
        guard let transport else { return }
        // Read until the socket is drained (bounded, so a flood cannot starve writers).
        var total = 0
        while total < 4 * 1024 * 1024 {
            let result = readBuffer.withUnsafeMutableBytes { transport.read(into: $0) }
            switch result {
            case .transferred(let n):
                do {
                    try reader.feed(readBuffer, count: n)
                } catch {
                    disconnect(failingWith: error)
                    return
                }
                total += n
                if !drainReplies() { return }
                if n < readBuffer.count, transport.shortReadMeansDrained { return }
            case .wouldBlock:
                return
            case .closed:
                disconnect(failingWith: .connectionLost("server closed the connection"))
                return
            case .failed(let why):
                disconnect(failingWith: .connectionLost(why))
                return
            }
        }
    }

    /// Hands every complete reply to its waiter. Returns false if the connection was dropped.
    private func drainReplies() -> Bool {
        guard transport != nil else { return false }
        while true {
            let next: RESPValue?
            do {
                next = try reader.next()
            } catch {
                disconnect(failingWith: error)
                return false
            }
            guard let reply = next else { return true }
            if let push = options.push, let message = Self.pubSubMessage(reply, claimsUnsubscribe: options.claimsUnsubscribe) {
                push(message)
                continue
            }
            guard let head = inFlight.popFirst() else {
                disconnect(failingWith: .protocolError("reply with no command waiting for it: \(reply)"))
                return false
            }
            resumedSinceFlush += 1
            if case .error(let error) = reply {
                head.waiter.complete(.failure(.server(error)))
            } else {
                head.waiter.complete(.success(reply))
            }
        }
    }

    private static func pubSubMessage(_ reply: RESPValue, claimsUnsubscribe: (@Sendable ([UInt8]) -> Bool)?) -> RedisConnection.Push? {
        guard case .array(let items) = reply, let kind = items.first?.bytes else { return nil }
        if kind == Array("message".utf8) || kind == Array("smessage".utf8), items.count == 3,
           let channel = items[1].bytes, let payload = items[2].bytes {
            return .message(channel: channel, payload: payload)
        }
        // Redis sends `sunsubscribe` unasked when a shard channel's slot leaves the node; that one
        // answers no command, so it must not be paired with the next waiter.
        if let claimsUnsubscribe, kind == Array("sunsubscribe".utf8), items.count == 3, let channel = items[1].bytes,
           !claimsUnsubscribe(channel) {
            return .dropped(channel: channel)
        }
        if kind == Array("pmessage".utf8), items.count == 4, let channel = items[2].bytes, let payload = items[3].bytes {
            return .message(channel: channel, payload: payload)
        }
        return nil
    }

    // MARK: Failure

    private func disconnect(failingWith error: RedisError) {
        if transport != nil {
            transport = nil
            output.removeAll(keepingCapacity: true)
            outputStart = 0
            if error.isConnectionError {
                logger.warning("Redis connection dropped", metadata: ["error": "\(error)", "in_flight": "\(inFlight.count)"])
            }
        }
        needsWrite = false
        while let item = inFlight.popFirst() {
            item.waiter.complete(.failure(error))
        }
        if error.isConnectionError {
            // A dropped connection is retried at once by the next command; repeated connect failures back off.
            nextAttempt = .now
        }
    }

    private func failPending(_ error: RedisError) {
        for item in pending {
            item.command.free()
            item.waiter.complete(.failure(error))
        }
        pending.removeAll()
    }

    private func failExpiredPending() {
        let now = ContinuousClock.now
        guard pending.contains(where: { ($0.deadline ?? now) < now }) else { return }
        var kept: [Outgoing] = []
        for item in pending {
            if let deadline = item.deadline, deadline < now {
                item.command.free()
                item.waiter.complete(.failure(.timeout(configuration.commandTimeout)))
            } else {
                kept.append(item)
            }
        }
        pending = kept
    }

    // MARK: Waiting

    /// Declares the loop idle unless work arrived meanwhile; returns false if there is work to take.
    private func markIdleIfQueueEmpty() -> Bool {
        shared.state.withLock { state in
            if !state.queue.isEmpty || !state.jobs.isEmpty || state.closed || state.interrupt { return false }
            state.idle = true
            return true
        }
    }

    private func waitForWake(until deadline: ContinuousClock.Instant?) {
        guard markIdleIfQueueEmpty() else { return }
        var fd = pollfd(fd: shared.wakeFD, events: Int16(POLLIN), revents: 0)
        var timeoutMs: Int32 = -1
        if let deadline {
            let remaining = ContinuousClock.now.duration(to: deadline)
            timeoutMs = remaining <= .zero ? 0 : Int32(clamping: remaining.redisMilliseconds)
        }
        if poll(&fd, 1, timeoutMs) > 0 { drainWake() }
    }

    private func drainWake() {
        var value: UInt64 = 0
        _ = Glibc.read(shared.wakeFD, &value, 8)
    }

    // MARK: Executor

    /// Runs the jobs of tasks that prefer this thread, including those resumed by replies just read.
    private func runJobs() {
        while true {
            let jobs = shared.state.withLock { state in
                let taken = state.jobs
                state.jobs.removeAll(keepingCapacity: true)
                return taken
            }
            if jobs.isEmpty { return }
            ranJobsSinceFlush = true
            let executor = asUnownedTaskExecutor()
            for job in jobs { job.runSynchronously(on: executor) }
        }
    }
}

extension RedisConfiguration {
    var endpointDescription: String {
        switch endpoint {
        case .tcp(let host, let port): return "\(host):\(port)"
        case .unix(let path): return path
        }
    }
}

extension ConnectionLoop: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        shared.enqueueJob(UnownedJob(job))
    }
}

extension ConnectionLoop {
    private static let threadKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The loop whose thread is running the caller, if any.
    static var current: ConnectionLoop? {
        pthread_getspecific(threadKey).map { Unmanaged<ConnectionLoop>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Unretained is safe: the thread's closure owns the loop for as long as the thread runs.
    fileprivate func bindToCurrentThread() {
        pthread_setspecific(Self.threadKey, Unmanaged.passUnretained(self).toOpaque())
    }
}
