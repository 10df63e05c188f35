import ArgumentParser
import Foundation
@testable import SGCtlCLI
import TestSupport
import Testing

/// Where `sgctl health` asks when no --url is given: the worker's own SG_METRICS_* settings.
@Suite struct HealthCommandTests {
    @Test(arguments: [
        (["SG_METRICS_PORT": "9090"], false, "http://127.0.0.1:9090/health/ready"),
        (["SG_METRICS_PORT": "9090", "SG_METRICS_HOST": "0.0.0.0"], false, "http://127.0.0.1:9090/health/ready"),
        (["SG_METRICS_PORT": "9090", "SG_METRICS_HOST": "::"], true, "http://[::1]:9090/health/live"),
        (["SG_METRICS_PORT": "9090", "SG_METRICS_HOST": "[::]"], false, "http://[::1]:9090/health/ready"),
        (["SG_METRICS_PORT": "8080", "SG_METRICS_HOST": "10.1.2.3"], false, "http://10.1.2.3:8080/health/ready"),
        (["SG_METRICS_PORT": "8080", "SG_METRICS_HOST": "fd00::7"], false, "http://[fd00::7]:8080/health/ready"),
    ])
    func theDefaultURLIsTheWorkersOwnAddress(environment: [String: String], live: Bool, url: String) throws {
        #expect(try HealthCommand.defaultURL(environment: environment, live: live) == url)
    }

    @Test(arguments: [[:], ["SG_METRICS_PORT": ""], ["SG_METRICS_PORT": "0"], ["SG_METRICS_PORT": "nine"], ["SG_METRICS_PORT": "70000"]])
    func noUsablePortIsAnErrorThatSaysWhatToSet(environment: [String: String]) {
        #expect {
            try HealthCommand.defaultURL(environment: environment, live: false)
        } throws: { error in
            error is HealthFailure && "\(error)".contains("give --url, or set SG_METRICS_PORT")
        }
    }

    /// The probe as the image runs it: a redirect is not followed to a 200 elsewhere, and no port
    /// to ask is unhealthy (1), the code Docker understands, not a usage error.
    @Test func theProbeTakesARedirectAsUnhealthyAndNoPortAsExitOne() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("health-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let portFile = directory.appendingPathComponent("port").path
        let server = try ChildProcess("/usr/bin/env", ["python3", "-c", """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    if self.path == '/ok':
                        self.send_response(200)
                    else:
                        self.send_response(302); self.send_header('Location', '/ok')
                    self.send_header('Content-Length', '0'); self.end_headers()
                def log_message(self, *a): pass
            s = http.server.HTTPServer(('127.0.0.1', 0), H)
            open(sys.argv[1] + '.tmp', 'w').write(str(s.server_port))
            import os; os.rename(sys.argv[1] + '.tmp', sys.argv[1])
            s.serve_forever()
            """, portFile])
        defer { server.killNow() }
        try await waitUntil(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: portFile) }
        let port = try String(contentsOfFile: portFile, encoding: .utf8)
        func health(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32?, output: String) {
            try await runHealthProbe(arguments, environment: environment, logIn: directory)
        }
        #expect(try await health(["--url", "http://127.0.0.1:\(port)/ok"]).status == 0)
        let redirected = try await health(["--url", "http://127.0.0.1:\(port)/health/ready"])
        #expect(redirected.status == 1)
        #expect(redirected.output.contains("HTTP 302"), "\(redirected.output)")
        let noPort = try await health([], environment: ["SG_METRICS_PORT": ""])
        #expect(noPort.status == 1)
        #expect(noPort.output.contains("set SG_METRICS_PORT"), "\(noPort.output)")
    }
}
