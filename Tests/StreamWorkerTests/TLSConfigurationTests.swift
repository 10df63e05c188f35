import Foundation
import RedisClient
import StreamWorker
import Testing

/// The `tls-*` options: flags, SG_* variables and the YAML file, checked at load.
@Suite struct TLSConfigurationTests {
    func load(
        flags: [String: String] = [:], env: [String: String] = [:], yaml: String? = nil
    ) throws(ConfigurationError) -> WorkerConfiguration {
        try WorkerConfiguration.load(flags: flags, environment: env, yaml: yaml)
    }

    func error(_ body: () throws(ConfigurationError) -> WorkerConfiguration) -> ConfigurationError? {
        do {
            let c = try body()
            Issue.record("expected an error, got \(c)")
            return nil
        } catch {
            return error
        }
    }

    /// A readable file standing in for a PEM file (the loader checks that it exists; OpenSSL parses it at connect).
    func pemFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sg-tls-\(UUID().uuidString).pem").path
        try "-----BEGIN CERTIFICATE-----\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aRedissURLVerifiesByDefaultAndAPlainOneHasNoTLS() throws {
        let secure = try load(env: ["SG_REDIS_URL": "rediss://db.example:6380"])
        #expect(secure.tls == RedisTLSConfiguration())
        #expect(try secure.redisConfiguration().tls?.verifiesPeer == true)
        #expect(try load().tls == nil)
        #expect(try load().redisConfiguration().tls == nil)
    }

    @Test func everyTLSOptionComesFromFlagsEnvironmentOrTheFile() throws {
        let ca = try pemFile(), cert = try pemFile(), key = try pemFile()
        let expected = RedisTLSConfiguration(caFile: ca, certificateFile: cert, keyFile: key, serverName: "db.internal", verifiesPeer: false)
        let fromFlags = try load(flags: [
            "redis-url": "rediss://10.0.0.5", "tls-ca-file": ca, "tls-cert-file": cert, "tls-key-file": key,
            "tls-server-name": "db.internal", "tls-insecure-skip-verify": "true",
        ])
        #expect(fromFlags.tls == expected)
        let fromEnvironment = try load(env: [
            "SG_REDIS_URL": "rediss://10.0.0.5", "SG_TLS_CA_FILE": ca, "SG_TLS_CERT_FILE": cert, "SG_TLS_KEY_FILE": key,
            "SG_TLS_SERVER_NAME": "db.internal", "SG_TLS_INSECURE_SKIP_VERIFY": "yes",
        ])
        #expect(fromEnvironment.tls == expected)
        let fromFile = try load(yaml: """
            redis-url: "rediss://10.0.0.5"
            tls-ca-file: "\(ca)"
            tls-cert-file: "\(cert)"
            tls-key-file: "\(key)"
            tls-server-name: "db.internal"
            tls-insecure-skip-verify: true
            """)
        #expect(fromFile.tls == expected)
        // Flags beat the file, as for every option.
        #expect(try load(flags: ["tls-server-name": "other.internal"], yaml: "redis-url: rediss://h\ntls-server-name: db.internal").tls?.serverName == "other.internal")
    }

    @Test func tlsOptionsWithAPlaintextURLAreRefusedRatherThanIgnored() throws {
        let ca = try pemFile()
        let e = error { () throws(ConfigurationError) in try load(env: ["SG_TLS_CA_FILE": ca]) }
        #expect(e?.option == "tls-ca-file")
        #expect(e?.source == .environment("SG_TLS_CA_FILE"))
        #expect(e?.description.contains("only used with a rediss:// redis-url") == true)
    }

    @Test func aMissingCAFileStopsTheWorkerAtStartNamingTheOption() throws {
        let e = error { () throws(ConfigurationError) in
            try load(flags: ["redis-url": "rediss://h", "tls-ca-file": "/nonexistent/ca.pem"])
        }
        #expect(e == .missingFile(option: "tls-ca-file", path: "/nonexistent/ca.pem", source: .flag("tls-ca-file")))
    }

    @Test func aClientCertificateWithoutItsKeyIsRefused() throws {
        let cert = try pemFile()
        let e = error { () throws(ConfigurationError) in
            try load(flags: ["redis-url": "rediss://h", "tls-cert-file": cert])
        }
        #expect(e?.option == "tls-cert-file")
        #expect(e?.description.contains("needs tls-key-file") == true)
    }

    @Test func skipVerifyTakesOnlyABoolean() throws {
        let e = error { () throws(ConfigurationError) in
            try load(env: ["SG_REDIS_URL": "rediss://h", "SG_TLS_INSECURE_SKIP_VERIFY": "maybe"])
        }
        #expect(e?.option == "tls-insecure-skip-verify")
        #expect(e?.description.contains("is not true or false") == true)
        #expect(try load(env: ["SG_REDIS_URL": "rediss://h", "SG_TLS_INSECURE_SKIP_VERIFY": "false"]).tls?.verifiesPeer == true)
    }

    @Test func theSummaryShowsTheTLSOptions() throws {
        let c = try load(env: ["SG_REDIS_URL": "rediss://h", "SG_TLS_INSECURE_SKIP_VERIFY": "true", "SG_TLS_SERVER_NAME": "db"])
        #expect(c.redactedSummary.contains(" tls-server-name=db "))
        #expect(c.redactedSummary.contains(" tls-insecure-skip-verify=true "))
    }
}
