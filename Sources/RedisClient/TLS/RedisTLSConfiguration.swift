/// How a `rediss://` connection sets up TLS. Certificate verification is on unless
/// ``verifiesPeer`` is turned off.
///
/// Files are read again on every connect, so rotated certificates take effect at the next
/// reconnect without a restart.
public struct RedisTLSConfiguration: Sendable, Equatable {
    /// PEM file of the certificate authorities to trust; `nil` trusts the system's store.
    public var caFile: String?
    /// PEM client certificate (chain) for mutual TLS; needs ``keyFile``.
    public var certificateFile: String?
    /// PEM private key of ``certificateFile``.
    public var keyFile: String?
    /// Sent as SNI and checked against the server's certificate; `nil` means the URL's host.
    public var serverName: String?
    /// `false` accepts any certificate for any name (`--tls-insecure-skip-verify`): for tests only,
    /// since anyone on the path can then read and change the traffic.
    public var verifiesPeer: Bool

    public init(
        caFile: String? = nil,
        certificateFile: String? = nil,
        keyFile: String? = nil,
        serverName: String? = nil,
        verifiesPeer: Bool = true
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.verifiesPeer = verifiesPeer
    }
}
