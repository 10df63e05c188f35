import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// The operator's HTTP endpoint, run as a service next to the worker:
///
/// - `GET /metrics`: the registry in the Prometheus text format, with `sg_ready`, `sg_build_info`
///   and the `process_*` metrics;
/// - `GET /health/live`: 200 while the process runs;
/// - `GET /health/ready`: 200 when `readiness` says so, else 503 with the reason as the body.
///
/// Readiness is asked on every probe, so it should be cheap (a lock, not a round trip).
public struct OperatorServer: Service {
    private let application: Application<RouterResponder<BasicRequestContext>>
    private let address: String
    private let listening = ListeningFlag()

    /// - Parameters:
    ///   - port: 0 picks a free port; `onListening` is told which.
    ///   - build: the labels of `sg_build_info`.
    ///   - onListening: called once with the bound port when the server accepts connections.
    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry,
        build: BuildLabels = BuildLabels(version: "unknown", commit: "unknown"),
        readiness: @escaping @Sendable () async -> ProbeResult,
        logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        let router = Self.router(registry: registry, build: build, readiness: readiness)
        let listening = listening
        address = "\(host):\(port)"
        application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                listening.set()
                if let port = channel.localAddress?.port { await onListening(port) }
            },
            logger: logger)
    }

    /// Serves until graceful shutdown. A failure to bind (port taken, bad host) throws
    /// ``OperatorServerError/cannotListen(address:reason:)``.
    public func run() async throws {
        do {
            try await application.run()
        } catch {
            if listening.isSet { throw error }
            throw OperatorServerError.cannotListen(address: address, reason: "\(error)")
        }
    }

    static func router(
        registry: PrometheusCollectorRegistry, build: BuildLabels, readiness: @escaping @Sendable () async -> ProbeResult
    ) -> Router<BasicRequestContext> {
        let router = Router()
        func describe(_ name: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: MetricHelp.text[name] ?? "")
        }
        registry.makeGauge(descriptor: describe("sg_build_info"), labels: [("version", build.version), ("commit", build.commit)]).set(Double(1))
        let ready = registry.makeGauge(descriptor: describe("sg_ready"))
        router.get("/health/live") { _, _ in
            text(.ok, "live\n")
        }
        router.get("/health/ready") { _, _ in
            switch await readiness() {
            case .ok: return text(.ok, "ready\n")
            case .unavailable(let reason): return text(.serviceUnavailable, "not ready: \(reason)\n")
            }
        }
        router.get("/metrics") { _, _ in
            // Readiness is cheap to ask (a lock), so sg_ready is exactly what /health/ready says now.
            if case .ok = await readiness() { ready.set(Double(1)) } else { ready.set(Double(0)) }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16 * 1024)
            registry.emit(into: &bytes)
            bytes += ProcessMetrics.sample().text.utf8
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        return router
    }

    private static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Why the operator server could not run.
public enum OperatorServerError: Error, CustomStringConvertible {
    /// Binding `address` failed, e.g. because the port is taken.
    case cannotListen(address: String, reason: String)

    public var description: String {
        switch self {
        case .cannotListen(let address, let reason):
            return "metrics-port: cannot listen on \(address): \(reason)"
        }
    }
}

/// Set once the server accepts connections.
final class ListeningFlag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}
