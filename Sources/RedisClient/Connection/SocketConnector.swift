#if canImport(Glibc)
import Glibc
#endif

/// Opens the connection's socket: TCP (every address the host resolves to, in order) or a Unix
/// socket, within the connect timeout. Runs on the connection's own I/O thread, which may block
/// (name resolution included); never on the cooperative pool.
enum SocketConnector {
    /// A connected, non-blocking, close-on-exec socket.
    static func connect(_ endpoint: RedisConfiguration.Endpoint, timeout: Duration) throws(RedisError) -> Int32 {
        let deadline = ContinuousClock.now + timeout
        switch endpoint {
        case .tcp(let host, let port):
            return try connectTCP(host: host, port: port, deadline: deadline)
        case .unix(let path):
            return try connectUnix(path: path, deadline: deadline)
        }
    }

    private static func connectTCP(host: String, port: Int, deadline: ContinuousClock.Instant) throws(RedisError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw .connectFailed("\(host):\(port): cannot resolve host: \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = list
        while let info = next {
            next = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else {
                lastError = errnoText()
                continue
            }
            if let problem = finishConnect(fd, Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen), deadline: deadline) {
                Glibc.close(fd)
                lastError = problem
                continue
            }
            // Replies to small commands must not wait for Nagle; a dead peer is noticed within ~30 s.
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
            for (option, value) in [(TCP_KEEPIDLE, Int32(15)), (TCP_KEEPINTVL, Int32(5)), (TCP_KEEPCNT, Int32(3))] {
                var v = value
                setsockopt(fd, Int32(IPPROTO_TCP), option, &v, socklen_t(MemoryLayout<Int32>.size))
            }
            return fd
        }
        throw .connectFailed("\(host):\(port): \(lastError)")
    }

    private static func connectUnix(path: String, deadline: ContinuousClock.Instant) throws(RedisError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .connectFailed("\(path): socket path is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in bytes.enumerated() { buffer[i] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .connectFailed("\(path): \(errnoText())") }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if let problem = finishConnect(fd, result, deadline: deadline) {
            Glibc.close(fd)
            throw .connectFailed("\(path): \(problem)")
        }
        return fd
    }

    /// Waits for a non-blocking connect to finish; returns why it failed, or nil.
    private static func finishConnect(_ fd: Int32, _ result: Int32, deadline: ContinuousClock.Instant) -> String? {
        if result == 0 { return nil }
        guard errno == EINPROGRESS || errno == EAGAIN else { return errnoText() }
        guard SocketWait.wait(fd, for: Int16(POLLOUT), until: deadline) else { return "connect timed out" }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errnoText() }
        return error == 0 ? nil : String(cString: strerror(error))
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Blocking waits on one socket, for the steps of connection setup that run before the poll loop takes over.
enum SocketWait {
    /// Whether `fd` became ready for `events` (or failed, which the next call reports) before `deadline`.
    static func wait(_ fd: Int32, for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return false }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&pfd, 1, Int32(clamping: max(1, remaining.redisMilliseconds)))
            if n > 0 { return true }
            if n < 0 && errno != EINTR { return true }
        }
    }
}
