import RedisClient
import Testing

@Suite struct RedisConfigurationTests {
    @Test func plainHostAndPortParse() throws {
        let c = try RedisConfiguration(url: "redis://example.com:6380")
        #expect(c.endpoint == .tcp(host: "example.com", port: 6380))
        #expect(c.password == nil && c.username == nil && c.database == 0)
    }

    @Test func defaultPortIs6379() throws {
        #expect(try RedisConfiguration(url: "redis://localhost").endpoint == .tcp(host: "localhost", port: 6379))
    }

    @Test func userPasswordAndDatabaseParse() throws {
        let c = try RedisConfiguration(url: "redis://worker:s3cr%40t@10.0.0.5:7000/3")
        #expect(c.username == "worker")
        #expect(c.password == "s3cr@t")
        #expect(c.database == 3)
        #expect(c.endpoint == .tcp(host: "10.0.0.5", port: 7000))
    }

    @Test func passwordWithoutUserParses() throws {
        let a = try RedisConfiguration(url: "redis://:secret@host")
        #expect(a.username == nil && a.password == "secret")
        let b = try RedisConfiguration(url: "redis://secret@host")
        #expect(b.username == nil && b.password == "secret")
    }

    @Test func ipv6HostParses() throws {
        #expect(try RedisConfiguration(url: "redis://[::1]:6390").endpoint == .tcp(host: "::1", port: 6390))
    }

    @Test func unixSocketWithDatabaseParses() throws {
        let c = try RedisConfiguration(url: "unix:///run/redis/redis.sock?db=2")
        #expect(c.endpoint == .unix(path: "/run/redis/redis.sock"))
        #expect(c.database == 2)
    }

    @Test(arguments: [
        "localhost:6379", "http://host", "redis://host:99999", "redis://host:abc",
        "redis://host/x", "unix://", "rediss://:pw@", "rediss://host:0", "redis://:pw@",
    ])
    func badURLsAreRejectedWithAClearError(_ url: String) {
        #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
    }

    @Test func descriptionNeverShowsThePassword() throws {
        let c = try RedisConfiguration(url: "redis://u:hunter2@host:1/0")
        #expect(!c.description.contains("hunter2"))
        #expect(!RedisConfiguration.redacted("redis://u:hunter2@host:1/0").contains("hunter2"))
        #expect(!RedisConfiguration.redacted("redis://hunter2@host").contains("hunter2"))
        #expect(!RedisConfiguration.redacted("unix:///s.sock?password=hunter2&db=1").contains("hunter2"))
    }

    @Test func backoffGrowsExponentiallyUpToTheCap() {
        let b = ReconnectBackoff(base: .milliseconds(50), cap: .seconds(2))
        #expect(b.delay(attempt: 0, random: 1) == .milliseconds(50))
        #expect(b.delay(attempt: 3, random: 1) == .milliseconds(400))
        #expect(b.delay(attempt: 20, random: 1) == .seconds(2))
        #expect(b.delay(attempt: 3, random: 0) == .zero)
        #expect(b.delay(attempt: 1, random: 0.5) == .milliseconds(50))
    }

    @Test func durationsRoundUpToWholeMilliseconds() {
        #expect(Duration.milliseconds(1500).redisMilliseconds == 1500)
        #expect(Duration.microseconds(1).redisMilliseconds == 1)
        #expect(Duration.zero.redisMilliseconds == 0)
    }
}
