import ArgumentParser
import AsyncHTTPClient
import Foundation
import StreamConsumerCLI

/// A worker's health endpoint, asked from inside its container: the image has no curl and no shell,
/// so its HEALTHCHECK runs this. It asks where the worker serves: in a container whose first
/// process is the worker, it resolves that process's own command line, environment and YAML file
/// as the worker did, so a port set any of those ways needs no second setting.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Ask a worker's /health/ready (or /health/live); exit 0 when it answers 200.",
        discussion: """
            The container image's health check. Without --url it asks the worker's own metrics port, on 127.0.0.1 \
            (or its metrics host where that names one address). The worker is --pid, or process 1 when that is \
            stream-consumer (as in the image): its options, environment and YAML file are resolved as the worker \
            resolves them. Otherwise $SG_METRICS_PORT and $SG_METRICS_HOST of this command's environment say where.
            """
    )

    @Option(help: "URL to ask (default: the worker's own metrics port, see below).")
    var url: String?
    @Option(help: "The worker's process id, whose configuration says where it serves (default: 1 when that is stream-consumer).")
    var pid: Int32?
    @Flag(help: "Ask /health/live instead: the process runs, whether or not Redis answers.")
    var live = false
    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 2

    func run() async throws {
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
        // A missing port is unhealthy (1), not a usage error: Docker reads any exit but 0 and 1 as undefined.
        let target: String
        do { target = try url ?? Self.workerURL(pid: pid, live: live) }
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

    /// Where the worker serves: resolved from its process (`pid`, or process 1 when that is
    /// stream-consumer), else from this command's own SG_METRICS_* variables.
    static func workerURL(pid: Int32?, live: Bool) throws -> String {
        if let worker = try WorkerProcess(pid: pid ?? 1, required: pid != nil) {
            let address: (port: Int?, host: String)
            do {
                address = try worker.operatorAddress()
            } catch {
                throw HealthFailure("cannot resolve where process \(worker.pid) serves: \(error)")
            }
            return try url(port: address.port, host: address.host, live: live, source: "process \(worker.pid)'s metrics-port")
        }
        return try defaultURL(environment: ProcessInfo.processInfo.environment, live: live)
    }

    /// The address from SG_METRICS_PORT and SG_METRICS_HOST.
    static func defaultURL(environment: [String: String], live: Bool) throws -> String {
        guard let port = environment["SG_METRICS_PORT"].flatMap({ Int($0) }), (1...65535).contains(port) else {
            throw HealthFailure("no port to ask: give --url, or set SG_METRICS_PORT to the port the worker serves on (it is '\(environment["SG_METRICS_PORT"] ?? "")')")
        }
        return try url(port: port, host: environment["SG_METRICS_HOST"] ?? "", live: live, source: "SG_METRICS_PORT")
    }

    /// The worker's address: its port, and its host unless that is a wildcard (the image sets
    /// 0.0.0.0), in which case loopback of the same family answers.
    static func url(port: Int?, host: String, live: Bool, source: String) throws -> String {
        guard let port, (1...65535).contains(port) else {
            throw HealthFailure("no port to ask: \(source) is \(port.map { "\($0), chosen when the worker started" } ?? "not set, so it serves no health endpoint"); give --url")
        }
        var host = host
        if ["", "0.0.0.0"].contains(host) { host = "127.0.0.1" }
        if ["::", "[::]"].contains(host) { host = "::1" }
        if host.contains(":") && !host.hasPrefix("[") { host = "[\(host)]" }
        return "http://\(host):\(port)/health/\(live ? "live" : "ready")"
    }
}

/// A running worker, read through /proc: its command line, environment and working directory.
struct WorkerProcess {
    let pid: Int32
    let arguments: [String]
    let environment: [String: String]
    let directory: String

    /// Nil when the process is not stream-consumer (or cannot be read) and `required` is false.
    init?(pid: Int32, required: Bool) throws {
        let proc = "/proc/\(pid)"
        func unusable(_ why: String) throws {
            if required { throw HealthFailure("process \(pid): \(why)") }
        }
        guard let command = FileManager.default.contents(atPath: proc + "/cmdline"), !command.isEmpty else {
            try unusable("cannot read its command line")
            return nil
        }
        let argv = Self.fields(command)
        guard (argv.first as NSString?)?.lastPathComponent == "stream-consumer" else {
            try unusable("it is \(argv.first ?? "?"), not stream-consumer")
            return nil
        }
        guard let environ = FileManager.default.contents(atPath: proc + "/environ"),
              let directory = try? FileManager.default.destinationOfSymbolicLink(atPath: proc + "/cwd") else {
            try unusable("cannot read its environment (run as its user)")
            return nil
        }
        self.pid = pid
        arguments = Array(argv.dropFirst())
        var environment: [String: String] = [:]
        for entry in Self.fields(environ) {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            environment[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        self.environment = environment
        self.directory = directory
    }

    /// NUL-terminated strings, as /proc writes them.
    static func fields(_ data: Data) -> [String] {
        data.split(separator: 0, omittingEmptySubsequences: false).dropLast(data.last == 0 ? 1 : 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Where it serves, resolved as the worker resolved it (its YAML file as it is now); a
    /// relative path to that file is read from the worker's working directory.
    func operatorAddress() throws -> (port: Int?, host: String) {
        guard FileManager.default.changeCurrentDirectoryPath(directory) else {
            throw HealthFailure("cannot enter its working directory \(directory)")
        }
        return try StreamConsumerCommand.operatorAddress(arguments: arguments, environment: environment)
    }
}

/// Printed as `Error: …` and exit code 1, which a health check reads as unhealthy.
struct HealthFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
