import AsyncHTTPClient
import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A plain HTTP GET for the tests, with a bound on how long it may take.
enum HTTPGet {
    struct Reply {
        var status: Int
        var body: String
    }

    static func get(_ url: String) async throws -> Reply {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 8 << 20)
        return Reply(status: Int(response.status.code), body: String(decoding: body.readableBytesView, as: UTF8.self))
    }
}

/// A loopback port held until this is released: listening, or only bound, so that no one else
/// can take it and a connection to it is refused at once.
final class TakenPort: Sendable {
    let fd: Int32
    let port: Int

    init(listening: Bool = true) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard ok, !listening || listen(descriptor, 1) == 0 else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        fd = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

struct ExitedEarly: Error {
    var status: Int32
}

/// A stream-consumer process whose output goes to a file the test reads.
final class WorkerProcess: Sendable {
    let process: ChildProcess
    let logPath: String

    init(_ arguments: [String], environment: [String: String] = [:], logPath: String) throws {
        self.logPath = logPath
        // These tests write the single-stream layout; partitioned pools have their own tests.
        let arguments = arguments.contains("--partitions") ? arguments : arguments + ["--partitions", "1"]
        process = try ChildProcess(builtProductPath("stream-consumer"), arguments, stdout: logPath, environment: environment)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The port from the "Operator HTTP listening" line, in either log format.
    func metricsPort() async throws -> Int {
        var port: Int?
        try await waitUntil(timeout: .seconds(120)) {
            if let exited = await process.wait(timeout: .zero) {
                Issue.record("stream-consumer exited with \(exited) before listening:\n\(log)")
                throw ExitedEarly(status: exited)
            }
            guard let line = log.split(separator: "\n").first(where: { $0.contains("Operator HTTP listening") }),
                  let match = line.firstMatch(of: /"?port"?[=:]"?([0-9]+)/) else { return false }
            port = Int(match.1)
            return port != nil
        }
        return port!
    }

    deinit { process.killNow() }
}
