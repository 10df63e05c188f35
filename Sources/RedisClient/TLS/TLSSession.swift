import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// A client TLS session (OpenSSL) over the connection's non-blocking socket.
///
/// The handshake runs when the connection is set up, on its I/O thread; afterwards the poll loop
/// drives ``read(into:)`` and ``write(_:)``, which never block: OpenSSL's WANT_READ and WANT_WRITE
/// become ``TransportResult/wouldBlock`` plus a note of which readiness to wait for.
/// Only that one thread ever touches the session (OpenSSL's error queue is per thread as well).
final class TLSSession {
    private let ssl: OpaquePointer
    private(set) var readWantsWrite = false
    private(set) var writeWantsRead = false

    private init(ssl: OpaquePointer) {
        self.ssl = ssl
    }

    deinit {
        SSL_free(ssl)
    }

    /// Verifies the server as `configuration` says and completes the handshake by `deadline`.
    /// - Parameters:
    ///   - host: the URL's host; the name checked (and sent as SNI) unless ``RedisTLSConfiguration/serverName`` is set.
    ///   - endpoint: `host:port`, for errors.
    static func connect(
        fd: Int32, configuration: RedisTLSConfiguration, host: String, endpoint: String, deadline: ContinuousClock.Instant
    ) throws(RedisError) -> TLSSession {
        let context = try TLSContext(configuration, endpoint: endpoint)
        ERR_clear_error()
        guard let ssl = SSL_new(context.pointer) else {
            throw .tls(RedisTLSError(.handshakeFailed("cannot create a TLS session: \(openSSLErrors())"), endpoint: endpoint))
        }
        let session = TLSSession(ssl: ssl)
        SSL_set_fd(ssl, fd)
        let name = configuration.serverName ?? host
        let isAddress = Self.isIPAddress(name)
        // SNI carries host names only (RFC 6066); an address is checked against the certificate's IP SANs.
        if !isAddress { _ = sg_ssl_set_sni(ssl, name) }
        if configuration.verifiesPeer {
            SSL_set_verify(ssl, SSL_VERIFY_PEER, nil)
            let named = isAddress ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) : SSL_set1_host(ssl, name)
            guard named == 1 else {
                throw .tls(RedisTLSError(.handshakeFailed("'\(name)' cannot be checked against a certificate"), endpoint: endpoint))
            }
        } else {
            SSL_set_verify(ssl, SSL_VERIFY_NONE, nil)
        }
        while true {
            ERR_clear_error()
            let result = SSL_connect(ssl)
            if result == 1 { return session }
            let code = SSL_get_error(ssl, result)
            let events: Int16
            switch code {
            case SSL_ERROR_WANT_READ: events = Int16(POLLIN)
            case SSL_ERROR_WANT_WRITE: events = Int16(POLLOUT)
            default:
                throw .tls(RedisTLSError(session.handshakeFailure(code: code, expectedName: name), endpoint: endpoint))
            }
            guard SocketWait.wait(fd, for: events, until: deadline) else {
                throw .connectFailed("\(endpoint): TLS handshake timed out")
            }
        }
    }

    /// Why `SSL_connect` failed: the certificate check's verdict if it failed, else the handshake's.
    private func handshakeFailure(code: Int32, expectedName: String) -> RedisTLSError.Reason {
        let verify = SSL_get_verify_result(ssl)
        if verify != Int(X509_V_OK) {
            let text = X509_verify_cert_error_string(verify).map { String(cString: $0) } ?? "error \(verify)"
            return Self.reason(verifyResult: Int32(truncatingIfNeeded: verify), text: text, expectedName: expectedName)
        }
        if code == SSL_ERROR_SYSCALL {
            let errors = Self.openSSLErrors()
            if !errors.isEmpty { return .handshakeFailed(errors) }
            return .handshakeFailed(errno == 0
                ? "the server closed the connection (does the port speak TLS? is a client certificate required?)"
                : String(cString: strerror(errno)))
        }
        return .handshakeFailed(Self.openSSLErrors(orElse: "OpenSSL error \(code)"))
    }

    /// Maps OpenSSL's certificate verification result to the failure an operator looks for.
    static func reason(verifyResult: Int32, text: String, expectedName: String) -> RedisTLSError.Reason {
        switch verifyResult {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return .certificateExpired
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return .certificateNotYetValid
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            return .hostnameMismatch(expected: expectedName)
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
             X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
             X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return .unknownCertificateAuthority(detail: text)
        default:
            return .verificationFailed(text)
        }
    }

    // MARK: Transfer (non-blocking, on the poll loop)

    var hasBufferedInput: Bool { SSL_pending(ssl) > 0 }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        ERR_clear_error()
        let n = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        readWantsWrite = false
        if n > 0 { return .transferred(Int(n)) }
        switch SSL_get_error(ssl, n) {
        case SSL_ERROR_WANT_READ: return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            readWantsWrite = true
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let errors = Self.openSSLErrors()
            if !errors.isEmpty { return .failed("TLS read failed: \(errors)") }
            // A peer that closes without close_notify looks like this; Redis does when it drops a client.
            return errno == 0 ? .closed : .failed("TLS read failed: \(String(cString: strerror(errno)))")
        default:
            return .failed("TLS read failed: \(Self.openSSLErrors(orElse: "protocol error"))")
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult {
        ERR_clear_error()
        let n = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
        writeWantsRead = false
        if n > 0 { return .transferred(Int(n)) }
        switch SSL_get_error(ssl, n) {
        case SSL_ERROR_WANT_WRITE: return .wouldBlock
        case SSL_ERROR_WANT_READ:
            writeWantsRead = true
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let errors = Self.openSSLErrors()
            if !errors.isEmpty { return .failed("TLS write failed: \(errors)") }
            return .failed("TLS write failed: \(errno == 0 ? "connection closed" : String(cString: strerror(errno)))")
        default:
            return .failed("TLS write failed: \(Self.openSSLErrors(orElse: "protocol error"))")
        }
    }

    /// Sends close_notify without waiting for the server's; the socket closes right after.
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    // MARK: Helpers

    static func isIPAddress(_ name: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }

    /// Empties this thread's OpenSSL error queue into one line of reasons.
    static func openSSLErrors(orElse fallback: String = "") -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            if let reason = ERR_reason_error_string(code) {
                reasons.append(String(cString: reason))
            } else {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buffer, buffer.count)
                reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        return reasons.isEmpty ? fallback : reasons.joined(separator: "; ")
    }
}

/// An OpenSSL client context loaded from a ``RedisTLSConfiguration``: trust store, client certificate, minimum TLS 1.2.
final class TLSContext {
    let pointer: OpaquePointer

    init(_ configuration: RedisTLSConfiguration, endpoint: String) throws(RedisError) {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw .tls(RedisTLSError(.handshakeFailed("cannot create a TLS context: \(TLSSession.openSSLErrors())"), endpoint: endpoint))
        }
        pointer = context
        _ = sg_ssl_ctx_set_min_tls12(context)
        sg_ssl_ctx_set_nonblocking_modes(context)
        func unusable(_ what: String) -> RedisError {
            .tls(RedisTLSError(.unusableFile("\(what): \(TLSSession.openSSLErrors(orElse: "unreadable"))"), endpoint: endpoint))
        }
        if let ca = configuration.caFile {
            guard SSL_CTX_load_verify_locations(context, ca, nil) == 1 else { throw unusable("cannot load CA file \(ca)") }
        } else if SSL_CTX_set_default_verify_paths(context) != 1 {
            throw unusable("cannot load the system's CA certificates")
        }
        if let certificate = configuration.certificateFile {
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw unusable("cannot load client certificate \(certificate)")
            }
            let key = configuration.keyFile ?? certificate
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                throw unusable("cannot load client key \(key)")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw unusable("client key \(key) does not match certificate \(certificate)")
            }
        }
    }

    deinit {
        SSL_CTX_free(pointer)
    }
}
