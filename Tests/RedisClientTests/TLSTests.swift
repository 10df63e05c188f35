import Foundation
import Logging
@testable import RedisClient
import Synchronization
import TestSupport
import Testing

/// The client over TLS, against real TLS-only redis-servers with the throw-away certificates of
/// Scripts/lib.sh: the shared one from Scripts/test.sh, and private ones for refusals and kills.
@Suite struct TLSTests {
    // MARK: Traffic

    @Test func commandsRoundTripOverTLSIncludingValuesLargerThanOneRecord() async throws {
        let client = try TestTLS.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        #expect(try await client.send("PING") == .status("PONG"))
        // 1 MiB spans many 16 KiB TLS records and several partial socket writes and reads.
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try await client.send("SET", key, big).isOK)
        #expect(try await client.send("GET", key).bytes == big)
        #expect(try await client.send("DEL", key) == .integer(1))
    }

    @Test func aPipelineOverTLSAnswersEveryCommandInOrder() async throws {
        let client = try TestTLS.client(poolSize: 1)
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let results = try await client.pipeline((1...2000).map { _ in RedisCommand("INCR", key) })
        #expect(try results.map { try $0.get().int ?? -1 } == (1...2000).map { Int64($0) })
        try await client.send("DEL", key)
    }

    @Test func concurrentCallersOverTLSAreEachAnsweredExactlyOnce() async throws {
        let client = try TestTLS.client(poolSize: 2)
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                group.addTask { for _ in 0..<100 { try await client.send("INCR", key) } }
            }
            try await group.waitForAll()
        }
        #expect(try await client.send("GET", key).string == "3200")
        try await client.send("DEL", key)
    }

    @Test func aBlockingReadOverTLSWakesOnAPushAndCanBeCancelled() async throws {
        let client = try TestTLS.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let popped = Task {
            try await client.withDedicatedConnection { try await $0.send("BLPOP", key, 30) }
        }
        // Push only once the pop is blocked, so the reply really comes out of a blocked read.
        try await waitUntil { try await client.send("CLIENT", "LIST", "TYPE", "normal").string?.contains("cmd=blpop") == true }
        try await client.send("RPUSH", key, "hello")
        #expect(try await popped.value == .array([.bulk(Array(key.utf8)), .bulk(Array("hello".utf8))]))

        let reader = Task {
            try await client.withDedicatedConnection { try await $0.send("XREAD", "BLOCK", 0, "STREAMS", key + ":s", "$") }
        }
        try await waitUntil { try await client.send("CLIENT", "LIST", "TYPE", "normal").string?.contains("cmd=xread") == true }
        reader.cancel()
        await #expect { try await reader.value } throws: { ($0 as? RedisError).map { "\($0)" } == "\(RedisError.cancelled)" }
        #expect(try await client.send("PING") == .status("PONG"))
    }

    @Test func pubSubOverTLSDeliversMessages() async throws {
        let client = try TestTLS.client()
        defer { client.close() }
        let channel = TestRedis.uniqueKey()
        let subscription = try await client.subscriber.subscribe(channel)
        defer { subscription.cancel() }
        #expect(try await client.send("PUBLISH", channel, [UInt8]([1, 0, 2])) == .integer(1))
        #expect(await subscription.next(timeout: .seconds(30)) == .message([1, 0, 2]))
    }

    @Test func killedTLSConnectionsReconnectAndSubscriptionsComeBack() async throws {
        let server = try await PrivateTLSRedisServer()
        defer { server.stop() }
        let reconnects = Atomic<Int>(0)
        let events = RedisConnectionEvents(reconnected: { reconnects.add(1, ordering: .relaxed) })
        let client = RedisClient(configuration: try TestTLS.configuration(url: server.url, poolSize: 1), events: events)
        let admin = RedisClient(configuration: try server.server.configuration())
        defer { client.close(); admin.close() }
        let subscription = try await client.subscriber.subscribe("chan")
        defer { subscription.cancel() }
        try await client.send("SET", "k", "before")

        #expect(try await admin.send("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").int == 1)
        #expect(try await admin.send("CLIENT", "KILL", "TYPE", "pubsub").int == 1)
        // The kill is noticed by the next command at the latest; it may fail, a later one reconnects.
        try await waitUntil { (try? await client.send("GET", "k")) == .bulk(Array("before".utf8)) }
        #expect(await subscription.next(timeout: .seconds(30)) == .reconnected)
        try await waitUntil { try await admin.send("PUBSUB", "NUMSUB", "chan").array?.last?.int == 1 }
        try await admin.send("PUBLISH", "chan", "after")
        #expect(await subscription.next(timeout: .seconds(30)) == .message(Array("after".utf8)))
        #expect(reconnects.load(ordering: .relaxed) >= 2)
    }

    // MARK: Mutual TLS

    @Test func aServerThatRequiresClientCertificatesAcceptsOursAndRefusesNoneOrAStrangersOne() async throws {
        let server = try await PrivateTLSRedisServer(requireClientCertificate: true)
        defer { server.stop() }
        let mutual = RedisClient(configuration: try TestTLS.configuration(url: server.url, tls: TestTLS.settings(clientCertificate: "client")))
        defer { mutual.close() }
        #expect(try await mutual.send("PING") == .status("PONG"))

        for certificate in [nil, "other-client"] {
            let refused = RedisClient(configuration: try TestTLS.configuration(url: server.url, tls: TestTLS.settings(clientCertificate: certificate)))
            defer { refused.close() }
            await #expect("client certificate \(certificate ?? "none")") { try await refused.send("PING") } throws: { error in
                // The server's refusal arrives as an alert in the handshake or as a close right after it.
                switch error as? RedisError {
                case .tls(let tls):
                    guard case .handshakeFailed = tls.reason else { return false }
                    return true
                case .connectionLost, .connectFailed: return true
                default: return false
                }
            }
        }
    }

    @Test func aClientKeyThatIsNotTheCertificatesIsRefusedBeforeConnecting() async throws {
        var tls = try TestTLS.settings(clientCertificate: "client")
        tls.keyFile = try TestTLS.file("other-client.key")
        let client = RedisClient(configuration: try TestTLS.configuration(tls: tls))
        defer { client.close() }
        await #expect { try await client.send("PING") } throws: { error in
            // OpenSSL notices the mismatch while loading the key ("key values mismatch"); the error names the key file.
            guard case .tls(let e) = error as? RedisError, case .unusableFile(let detail) = e.reason else { return false }
            return detail.contains("cannot load client key") && detail.contains("other-client.key")
        }
    }

    // MARK: Refusals

    /// The error a client with `tls` gets from `url`, or nil if it connected.
    func refusal(_ url: String, _ tls: RedisTLSConfiguration) async throws -> RedisTLSError? {
        let client = RedisClient(configuration: try TestTLS.configuration(url: url, tls: tls), logger: Logger(label: "refused"))
        defer { client.close() }
        do {
            _ = try await client.send("PING")
            return nil
        } catch RedisError.tls(let error) {
            return error
        }
    }

    @Test func aServerCertificateFromAnotherCAIsRefusedAsUnknownCA() async throws {
        let url = try TestTLS.url()
        for tls in [try TestTLS.settings(ca: "other-ca.crt"), RedisTLSConfiguration()] {
            let error = try #require(try await refusal(url, tls), "connected trusting \(tls.caFile ?? "the system's CAs")")
            guard case .unknownCertificateAuthority = error.reason else {
                Issue.record("expected unknown CA, got \(error)")
                continue
            }
            #expect(error.description.contains("unknown CA"))
        }
    }

    @Test func aCertificateForAnotherHostIsRefusedAsWrongHost() async throws {
        let server = try await PrivateTLSRedisServer(certificate: "wronghost")
        defer { server.stop() }
        let error = try #require(try await refusal(server.url, TestTLS.settings()))
        #expect(error.reason == .hostnameMismatch(expected: "127.0.0.1"))
        #expect(error.description.contains("wrong host"))
        // The name it is valid for, given as --tls-server-name, is accepted over the same address.
        #expect(try await refusal(server.url, TestTLS.settings(serverName: "wrong.example")) == nil)
        // And a name the shared server's certificate lacks is refused there.
        #expect(try await refusal(TestTLS.url(), TestTLS.settings(serverName: "db.example"))?.reason == .hostnameMismatch(expected: "db.example"))
    }

    @Test func anExpiredCertificateIsRefusedAsExpiredUnlessVerificationIsOff() async throws {
        let server = try await PrivateTLSRedisServer(certificate: "expired")
        defer { server.stop() }
        let error = try #require(try await refusal(server.url, TestTLS.settings()))
        #expect(error.reason == .certificateExpired)
        #expect(error.description.contains("expired"))
        var insecure = try TestTLS.settings()
        insecure.verifiesPeer = false
        #expect(try await refusal(server.url, insecure) == nil)
    }

    @Test func aTLSClientAtAPlaintextPortFailsTheHandshakeWithinTheConnectTimeout() async throws {
        let plain = try RedisConfiguration(url: TestRedis.url())
        guard case .tcp(_, let port) = plain.endpoint else {
            Issue.record("the shared test Redis is not on TCP: \(plain)")
            return
        }
        var configuration = try TestTLS.configuration(url: "rediss://127.0.0.1:\(port)")
        configuration.connectTimeout = .seconds(2)
        let client = RedisClient(configuration: configuration)
        defer { client.close() }
        // Redis answers the ClientHello with an error line (not TLS), or waits for a newline that may never come.
        await #expect { try await client.send("PING") } throws: { error in
            switch error as? RedisError {
            case .tls(let tls):
                guard case .handshakeFailed = tls.reason else { return false }
                return true
            case .connectFailed(let message): return message.contains("TLS handshake timed out")
            default: return false
            }
        }
    }

    // MARK: Pure parts

    @Test func aRedissURLTurnsOnVerifiedTLSAndKeepsItsParts() throws {
        let c = try RedisConfiguration(url: "rediss://worker:pw@db.example:6380/3")
        #expect(c.tls == RedisTLSConfiguration())
        #expect(c.tls?.verifiesPeer == true)
        #expect(c.endpoint == .tcp(host: "db.example", port: 6380))
        #expect(c.username == "worker" && c.password == "pw" && c.database == 3)
        #expect(c.description == "rediss://worker:***@db.example:6380/3")
        #expect(try RedisConfiguration(url: "redis://db.example").tls == nil)
    }

    @Test(arguments: [
        (Int32(10), RedisTLSError.Reason.certificateExpired),
        (Int32(9), .certificateNotYetValid),
        (Int32(62), .hostnameMismatch(expected: "db")),
        (Int32(64), .hostnameMismatch(expected: "db")),
        (Int32(20), .unknownCertificateAuthority(detail: "text")),
        (Int32(18), .unknownCertificateAuthority(detail: "text")),
        (Int32(19), .unknownCertificateAuthority(detail: "text")),
        (Int32(21), .unknownCertificateAuthority(detail: "text")),
        (Int32(23), .verificationFailed("text")),
    ])
    func verificationResultsMapToTheReasonAnOperatorLooksFor(code: Int32, reason: RedisTLSError.Reason) {
        #expect(TLSSession.reason(verifyResult: code, text: "text", expectedName: "db") == reason)
    }

    @Test func namesAndAddressesAreToldApart() {
        #expect(TLSSession.isIPAddress("127.0.0.1") && TLSSession.isIPAddress("::1"))
        #expect(!TLSSession.isIPAddress("localhost") && !TLSSession.isIPAddress("redis.internal"))
    }
}
