import ArgumentParser
@testable import SGCtlCLI
import Testing

/// Where `sgctl health` asks when no --url is given: the worker's own SG_METRICS_* settings.
@Suite struct HealthCommandTests {
    @Test(arguments: [
        (["SG_METRICS_PORT": "9090"], false, "http://127.0.0.1:9090/health/ready"),
        (["SG_METRICS_PORT": "9090", "SG_METRICS_HOST": "0.0.0.0"], false, "http://127.0.0.1:9090/health/ready"),
        (["SG_METRICS_PORT": "9090", "SG_METRICS_HOST": "::"], true, "http://127.0.0.1:9090/health/live"),
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
            "\(error)".contains("give --url, or set SG_METRICS_PORT")
        }
    }
}
