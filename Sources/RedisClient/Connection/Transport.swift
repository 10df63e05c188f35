#if canImport(Glibc)
import Glibc
#endif

/// What one read or write on a ``Transport`` did.
enum TransportResult {
    /// Moved this many bytes (always > 0).
    case transferred(Int)
    /// Nothing can move now; poll and try again.
    case wouldBlock
    /// The peer closed the connection.
    case closed
    /// The connection is broken; the message says how.
    case failed(String)
}

/// The connection's byte stream: its socket, plain or inside a TLS session. Created connected
/// by ``ConnectionLoop`` and used only on that loop's thread; the loop formats and parses RESP
/// (with hiredis) on either side of it.
final class Transport {
    let fd: Int32
    private let tls: TLSSession?

    init(fd: Int32, tls: TLSSession? = nil) {
        self.fd = fd
        self.tls = tls
    }

    deinit {
        tls?.shutdown()
        Glibc.close(fd)
    }

    /// A plain socket that returned fewer bytes than asked has nothing more to give until the next
    /// poll. TLS hands out one record per read, so it must be read until it would block.
    var shortReadMeansDrained: Bool { tls == nil }

    /// Decrypted bytes OpenSSL holds that poll() cannot see; read them before sleeping.
    var hasBufferedInput: Bool { tls?.hasBufferedInput ?? false }

    /// The last TLS read stopped because the session has to write first (a TLS 1.3 key update):
    /// retry the read when the socket is writable.
    var readWantsWrite: Bool { tls?.readWantsWrite ?? false }

    /// The last TLS write stopped because the session has to read first: retry it when readable.
    var writeWantsRead: Bool { tls?.writeWantsRead ?? false }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        if let tls { return tls.read(into: buffer) }
        let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
        if n > 0 { return .transferred(n) }
        if n == 0 { return .closed }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return .wouldBlock }
        return .failed("read failed: \(String(cString: strerror(errno)))")
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult {
        if let tls { return tls.write(bytes) }
        let n = Glibc.write(fd, bytes.baseAddress, bytes.count)
        if n > 0 { return .transferred(n) }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return .wouldBlock }
        return .failed("write failed: \(String(cString: strerror(errno)))")
    }
}
