import Foundation

/// Whether the worker exports traces, decided from the standard `OTEL_*` variables. Tracing is
/// off unless asked for, so a deployment that sets nothing pays nothing.
public enum TracingSwitch {
    /// On when `OTEL_TRACES_EXPORTER` names `otlp` (alone or in a list), or an OTLP endpoint is set
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and the exporter is
    /// not `none`; always off with `OTEL_SDK_DISABLED=true`.
    /// - Throws: an exporter or OTLP protocol this build does not have (only `otlp` and `none`;
    ///   `http/protobuf` and `http/json`).
    public static func isEnabled(_ environment: [String: String]) throws(TracingSwitchError) -> Bool {
        func value(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        if value("OTEL_SDK_DISABLED")?.lowercased() == "true" { return false }
        let enabled: Bool
        if let list = value("OTEL_TRACES_EXPORTER")?.lowercased() {
            // A comma-separated list, as the specification allows.
            let exporters = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if let unknown = exporters.first(where: { $0 != "otlp" && $0 != "none" }) { throw .unsupportedExporter(unknown) }
            enabled = exporters.contains("otlp")
        } else {
            enabled = value("OTEL_EXPORTER_OTLP_ENDPOINT") != nil || value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != nil
        }
        // swift-otel stops the process on a protocol this build lacks; refuse it with a reason first.
        // The signal's own variable wins over the general one, as the specification says.
        let variable = ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"].first { value($0) != nil }
        if enabled, let variable, let name = value(variable)?.lowercased(), name != "http/protobuf", name != "http/json" {
            throw .unsupportedProtocol(variable: variable, name)
        }
        return enabled
    }
}

public enum TracingSwitchError: Error, Equatable, CustomStringConvertible {
    case unsupportedExporter(String)
    case unsupportedProtocol(variable: String, String)

    public var description: String {
        switch self {
        case .unsupportedExporter(let name):
            "OTEL_TRACES_EXPORTER=\(name) is not supported: use otlp (OTLP over HTTP, http/protobuf or http/json) or none"
        case .unsupportedProtocol(let variable, let name):
            "\(variable)=\(name) is not supported: this build exports OTLP over HTTP, http/protobuf (the default) or http/json"
        }
    }
}

/// The W3C `traceparent` a producer stamps on an entry: `00-<trace id>-<parent span id>-<flags>`,
/// lower-case hex, with neither id all zeros.
public enum TraceParent {
    public static func isValid(_ value: String) -> Bool {
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "00" else { return false }
        let lowerHex = Set("0123456789abcdef")
        for (part, length) in zip(parts, [2, 32, 16, 2]) where part.count != length || !part.allSatisfy(lowerHex.contains) {
            return false
        }
        return parts[1].contains { $0 != "0" } && parts[2].contains { $0 != "0" }
    }
}
