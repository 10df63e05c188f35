/// Why a TLS connection to Redis failed, specific enough for an operator to act on.
public struct RedisTLSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// The server's certificate is past its notAfter date.
        case certificateExpired
        /// The server's certificate is not valid yet (its notBefore is in the future, or a clock is wrong).
        case certificateNotYetValid
        /// The certificate is valid but not for `expected` (the URL's host or `--tls-server-name`).
        case hostnameMismatch(expected: String)
        /// No trusted certificate authority issued the chain (wrong `--tls-ca-file`, or a self-signed certificate).
        case unknownCertificateAuthority(detail: String)
        /// Another verification failure, with OpenSSL's words for it.
        case verificationFailed(String)
        /// The handshake failed for a reason other than the certificate (a refused client certificate,
        /// no common protocol, a port that does not speak TLS).
        case handshakeFailed(String)
        /// A CA, certificate or key file could not be loaded.
        case unusableFile(String)
    }

    public var reason: Reason
    /// `host:port` of the server.
    public var endpoint: String

    public init(_ reason: Reason, endpoint: String) {
        self.reason = reason
        self.endpoint = endpoint
    }

    public var description: String {
        switch reason {
        case .certificateExpired:
            return "TLS to \(endpoint): the server's certificate has expired"
        case .certificateNotYetValid:
            return "TLS to \(endpoint): the server's certificate is not valid yet (check both clocks)"
        case .hostnameMismatch(let expected):
            return "TLS to \(endpoint): the server's certificate is not valid for host '\(expected)' (wrong host; --tls-server-name names another)"
        case .unknownCertificateAuthority(let detail):
            return "TLS to \(endpoint): the server's certificate is not issued by a trusted CA (unknown CA: \(detail)); check --tls-ca-file"
        case .verificationFailed(let detail):
            return "TLS to \(endpoint): certificate verification failed: \(detail)"
        case .handshakeFailed(let detail):
            return "TLS to \(endpoint): handshake failed: \(detail)"
        case .unusableFile(let detail):
            return "TLS to \(endpoint): \(detail)"
        }
    }
}
