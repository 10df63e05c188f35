import StreamWorker
import Testing

/// When the worker exports traces, from the standard OTEL_* variables; and what a traceparent is.
@Suite struct TracingSwitchTests {
    @Test func tracingIsOffUnlessAnExporterOrEndpointIsNamed() throws {
        #expect(try TracingSwitch.isEnabled([:]) == false)
        #expect(try TracingSwitch.isEnabled(["OTEL_SERVICE_NAME": "worker"]) == false)
        #expect(try TracingSwitch.isEnabled(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"]))
        #expect(try TracingSwitch.isEnabled(["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"]))
        #expect(try TracingSwitch.isEnabled(["OTEL_TRACES_EXPORTER": "otlp"]))
        #expect(try TracingSwitch.isEnabled(["OTEL_TRACES_EXPORTER": " OTLP "]))
        #expect(try TracingSwitch.isEnabled(["OTEL_EXPORTER_OTLP_ENDPOINT": " "]) == false)
    }

    @Test func noneAndSDKDisabledWinOverAnEndpoint() throws {
        #expect(try TracingSwitch.isEnabled(["OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"]) == false)
        #expect(try TracingSwitch.isEnabled(["OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"]) == false)
        #expect(try TracingSwitch.isEnabled(["OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"]))
    }

    @Test func anExporterThisBuildLacksIsAnErrorNamingIt() throws {
        #expect(throws: TracingSwitchError.unsupportedExporter("zipkin")) { try TracingSwitch.isEnabled(["OTEL_TRACES_EXPORTER": "zipkin"]) }
        #expect(throws: TracingSwitchError.unsupportedExporter("console")) { try TracingSwitch.isEnabled(["OTEL_TRACES_EXPORTER": "otlp, console"]) }
        #expect(try TracingSwitch.isEnabled(["OTEL_TRACES_EXPORTER": "otlp,"]), "a list, as the specification allows")
        let endpoint = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"]
        #expect(throws: TracingSwitchError.unsupportedProtocol(variable: "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")) {
            try TracingSwitch.isEnabled(endpoint.merging(["OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"]) { $1 })
        }
        #expect(throws: TracingSwitchError.unsupportedProtocol(variable: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")) {
            try TracingSwitch.isEnabled(endpoint.merging(["OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"]) { $1 })
        }
        #expect(try TracingSwitch.isEnabled(endpoint.merging(["OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"]) { $1 }))
        #expect(try TracingSwitch.isEnabled(["OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"]) == false, "tracing off: the protocol is not read")
        #expect("\(TracingSwitchError.unsupportedExporter("zipkin"))".contains("OTEL_TRACES_EXPORTER=zipkin"))
    }

    @Test func traceparentsFollowW3C() {
        #expect(TraceParent.isValid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(TraceParent.isValid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"))
        for bad in [
            "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            #expect(!TraceParent.isValid(bad), "\(bad)")
        }
    }
}
