import Foundation
import StreamWorker
import Testing
import Yams

/// Fast checks that keep Docker/'s files consistent with the worker: every setting loads, stop
/// periods outlast shutdown-grace, probes hit the metrics port, and no password travels on a command
/// line. Scripts/docker-test.sh builds the image and runs the compose pool for real.
@Suite struct DeploymentFilesTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func text(_ path: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
    }

    /// Variables the metrics and logging work reads; the configuration loader learns them with it.
    static let operatorSurfaceVariables: Set<String> = ["SG_METRICS_PORT", "SG_LOG_FORMAT"]

    /// Loads `environment` as the worker would, with the password file swapped for a readable one.
    static func load(_ environment: [String: String]) throws -> WorkerConfiguration {
        let known = Set(WorkerConfiguration.optionNames.map(WorkerConfiguration.environmentVariable(for:)))
        for name in environment.keys where name.hasPrefix("SG_") {
            #expect(known.contains(name) || operatorSurfaceVariables.contains(name), "\(name) is not a worker option")
        }
        var environment = environment
        let password = FileManager.default.temporaryDirectory.appendingPathComponent("sg-deploy-\(UUID().uuidString)").path
        try "secret\n".write(toFile: password, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: password) }
        if environment["SG_REDIS_PASSWORD_FILE"] != nil { environment["SG_REDIS_PASSWORD_FILE"] = password }
        return try WorkerConfiguration.load(flags: [:], environment: environment, yaml: nil)
    }

    static func seconds(_ text: String) -> Double? {
        text.hasSuffix("s") ? Double(text.dropLast()) : Double(text)
    }

    @Test func theComposePoolIsThreeWorkersThatStopAfterTheirGraceAndProbeReadiness() throws {
        let compose = try #require(try Yams.load(yaml: Self.text("Docker/docker-compose.yml")) as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        let worker = try #require(services["worker"] as? [String: Any])
        let environment = try #require(worker["environment"] as? [String: Any]).mapValues { "\($0)" }
        let configuration = try Self.load(environment)
        #expect(configuration.redisPassword == "secret")
        #expect(configuration.redisURL.hasPrefix("redis://sg-worker:@"))

        #expect((worker["deploy"] as? [String: Any])?["replicas"] as? Int == 3)
        let stop = try #require((worker["stop_grace_period"] as? String).flatMap(Self.seconds))
        #expect(Duration.seconds(stop) > configuration.shutdownGrace)
        let port = try #require(environment["SG_METRICS_PORT"])
        #expect(configuration.metricsHost == "0.0.0.0", "the healthcheck and scrapers come from outside the container's loopback")
        // `sgctl health` asks the port SG_METRICS_PORT names, on loopback when the host is a wildcard.
        let check = try #require((worker["healthcheck"] as? [String: Any])?["test"] as? [String])
        #expect(check == ["CMD", "sgctl", "health"])
        #expect(Int(port) == configuration.metricsPort)
        #expect(!check.joined(separator: " ").contains("secret"))

        // Workers start after the deploy step loaded their functions as the admin.
        let functions = try #require(services["functions"] as? [String: Any])
        let entrypoint = try #require(functions["entrypoint"] as? [String])
        #expect(entrypoint.prefix(3) == ["/usr/local/bin/sgctl", "functions", "load"] && entrypoint.contains("--redis-password-file"))
        let waitsFor = (worker["depends_on"] as? [String: Any])?["functions"] as? [String: Any]
        #expect(waitsFor?["condition"] as? String == "service_completed_successfully")

        let redis = try #require(services["redis"] as? [String: Any])
        #expect((redis["image"] as? String)?.hasPrefix("redis:7") == true)
        let command = try #require(redis["command"] as? [String]).joined(separator: " ")
        #expect(command.contains("--appendonly yes") && command.contains("--appendfsync everysec"))
        #expect(command.contains("--aclfile"))
        #expect((redis["volumes"] as? [String])?.contains { $0.hasSuffix(":/data") } == true)
        let redisCheck = try #require((redis["healthcheck"] as? [String: Any])?["test"] as? [String]).joined(separator: " ")
        #expect(redisCheck.contains("REDISCLI_AUTH=") && !redisCheck.contains("--pass") && !redisCheck.contains(" -a "),
                "the health check's password belongs in REDISCLI_AUTH, not redis-cli's argv")
    }

    @Test func theKubernetesWorkerHasProbesGraceResourcesABudgetAndASecretFile() throws {
        let documents = try Yams.load_all(yaml: Self.text("Docker/k8s/worker.yaml")).compactMap { $0 as? [String: Any] }
        let deployment = try #require(documents.first { $0["kind"] as? String == "Deployment" })
        let budget = try #require(documents.first { $0["kind"] as? String == "PodDisruptionBudget" })
        let spec = try #require(deployment["spec"] as? [String: Any])
        let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)

        var environment: [String: String] = [:]
        for variable in container["env"] as? [[String: Any]] ?? [] {
            guard let name = variable["name"] as? String else { continue }
            #expect(!(name == "SG_REDIS_PASSWORD" && variable["value"] != nil), "a password in plain text")
            if let value = variable["value"] { environment[name] = "\(value)" }
        }
        let configuration = try Self.load(environment)
        #expect(configuration.redisPassword == "secret")
        #expect(container["args"] == nil && container["command"] == nil, "nothing, least of all a password, on the command line")

        let grace = try #require(pod["terminationGracePeriodSeconds"] as? Int)
        #expect(Duration.seconds(grace) > configuration.shutdownGrace)
        let ports = container["ports"] as? [[String: Any]] ?? []
        let metrics = try #require(ports.first { $0["name"] as? String == "metrics" }?["containerPort"] as? Int)
        #expect(environment["SG_METRICS_PORT"] == String(metrics))
        #expect(configuration.metricsHost == "0.0.0.0", "the kubelet probes the pod IP")
        let readiness = (container["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any]
        let liveness = (container["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any]
        #expect(readiness?["path"] as? String == "/health/ready" && readiness?["port"] as? String == "metrics")
        #expect(liveness?["path"] as? String == "/health/live" && liveness?["port"] as? String == "metrics")
        let startup = container["startupProbe"] as? [String: Any]
        #expect((startup?["httpGet"] as? [String: Any])?["port"] as? String == "metrics")
        let resources = container["resources"] as? [String: Any]
        #expect(resources?["requests"] != nil && resources?["limits"] != nil)

        let labels = ((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String]) ?? [:]
        let budgetSpec = budget["spec"] as? [String: Any]
        #expect(!labels.isEmpty && (budgetSpec?["selector"] as? [String: Any])?["matchLabels"] as? [String: String] == labels)
        #expect(budgetSpec?["maxUnavailable"] != nil || budgetSpec?["minAvailable"] != nil)
        #expect((pod["securityContext"] as? [String: Any])?["runAsNonRoot"] as? Bool == true)

        // The deploy step loads the functions as the admin, with the same image and a secret file.
        let job = try #require(documents.first { $0["kind"] as? String == "Job" })
        let jobPod = try #require(((job["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let loader = try #require((jobPod["containers"] as? [[String: Any]])?.first)
        let command = try #require(loader["command"] as? [String])
        #expect(command.prefix(3) == ["/usr/local/bin/sgctl", "functions", "load"])
        #expect(command.contains("--redis-password-file") && command.joined().contains("sg-admin"))
        #expect(loader["image"] as? String == container["image"] as? String)

        let spread = pod["topologySpreadConstraints"] as? [[String: Any]] ?? []
        #expect(spread.contains { $0["topologyKey"] as? String == "kubernetes.io/hostname" })
        #expect(spread.allSatisfy { ($0["labelSelector"] as? [String: Any])?["matchLabels"] as? [String: String] == labels })

        let service = try #require(documents.first { $0["kind"] as? String == "Service" }, "a Service to scrape the pods through")
        let serviceSpec = service["spec"] as? [String: Any]
        #expect(serviceSpec?["selector"] as? [String: String] == labels)
        let servicePorts = serviceSpec?["ports"] as? [[String: Any]] ?? []
        #expect(servicePorts.contains { $0["targetPort"] as? String == "metrics" })
    }

    @Test func theImageBuildsWithTheToolchainsSwiftAndRunsOneStrippedBinaryAsNonRootOnDistroless() throws {
        let dockerfile = try Self.text("Docker/Dockerfile")
        #expect(dockerfile.contains("ARG SWIFT_VERSION=6.3"))
        #expect(dockerfile.contains("FROM swift:${SWIFT_VERSION}-bookworm AS build"))
        #expect(dockerfile.contains("FROM gcr.io/distroless/cc-debian12:nonroot"))
        #expect(dockerfile.contains("libhiredis-dev") && dockerfile.contains("lib(hiredis|z)"))
        #expect(dockerfile.contains("USER 10001:10001"))
        #expect(dockerfile.contains(#"ENTRYPOINT ["/usr/local/bin/stream-consumer"]"#))
        // One binary, both commands through links named as they are.
        #expect(dockerfile.contains("swift build -c release --static-swift-stdlib --product stargazer"))
        #expect(dockerfile.contains("strip -o /staging/root/usr/local/bin/stargazer"))
        #expect(dockerfile.contains("ln -s stargazer /staging/root/usr/local/bin/stream-consumer")
                && dockerfile.contains("ln -s stargazer /staging/root/usr/local/bin/sgctl"))
        // The image listens beyond loopback; the worker's own default stays loopback only.
        #expect(dockerfile.contains("ENV SG_METRICS_HOST=0.0.0.0"))
        #expect(WorkerConfiguration.defaults.metricsHost == "127.0.0.1")

        #expect(dockerfile.contains("ENV SG_METRICS_PORT=9090"))
        #expect(dockerfile.contains(#"CMD ["/usr/local/bin/sgctl", "health"]"#), "no curl or shell in the image")
        #expect(dockerfile.contains("ARG SG_GIT_COMMIT"), "the build context has no .git; --version needs the commit")
    }
}
