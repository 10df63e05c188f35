import ArgumentParser
import AsyncHTTPClient
import Foundation

/// A worker's health endpoint, asked from inside its container: the image has no curl and no shell,
/// so its HEALTHCHECK and compose's probes run this. It reads the same SG_METRICS_* variables the
/// worker serves on, so a changed port needs no second setting.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Ask a worker's /health/ready (or /health/live); exit 0 when it answers 200.",
        discussion: "The container image's health check. Without --url it asks the port the worker serves on, $SG_METRICS_PORT, on 127.0.0.1 (or $SG_METRICS_HOST where that names one address)."
    )

    @Option(help: "URL to ask (default: http://<SG_METRICS_HOST or 127.0.0.1>:$SG_METRICS_PORT/health/ready).")
    var url: String?
    @Flag(help: "Ask /health/live instead: the process runs, whether or not Redis answers.")
    var live = false
    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 2

    func run() async throws {
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
        // A missing port is unhealthy (1), not a usage error: Docker reads any exit but 0 and 1 as undefined.
        let target: String
        do { target = try url ?? Self.defaultURL(environment: ProcessInfo.processInfo.environment, live: live) }
        catch { throw HealthFailure("\(error)") }
        var request = HTTPClientRequest(url: target)
        request.method = .GET
        // The whole probe, connect included, within --timeout; a redirect is an answer, not a hop to follow.
        let milliseconds = Int64(timeout * 1000)
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .milliseconds(milliseconds), read: .milliseconds(milliseconds))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let status: UInt
        do {
            let response = try await client.execute(request, timeout: .milliseconds(milliseconds))
            status = response.status.code
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw HealthFailure("\(target): \(error)")
        }
        guard status == 200 else { throw HealthFailure("\(target): HTTP \(status)") }
    }

    /// The worker's own address: its SG_METRICS_PORT, and its SG_METRICS_HOST unless that is a
    /// wildcard (the image sets 0.0.0.0), in which case loopback of the same family answers.
    static func defaultURL(environment: [String: String], live: Bool) throws -> String {
        guard let port = environment["SG_METRICS_PORT"].flatMap({ Int($0) }), (1...65535).contains(port) else {
            throw HealthFailure("no port to ask: give --url, or set SG_METRICS_PORT to the port the worker serves on (it is '\(environment["SG_METRICS_PORT"] ?? "")')")
        }
        var host = environment["SG_METRICS_HOST"] ?? ""
        if ["", "0.0.0.0"].contains(host) { host = "127.0.0.1" }
        if ["::", "[::]"].contains(host) { host = "::1" }
        if host.contains(":") && !host.hasPrefix("[") { host = "[\(host)]" }
        return "http://\(host):\(port)/health/\(live ? "live" : "ready")"
    }
}

/// Printed as `Error: …` and exit code 1, which a health check reads as unhealthy.
struct HealthFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
