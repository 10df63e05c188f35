@testable import RedisClient
import Testing

@Suite struct RESPTests {
    private func parse(_ text: String) throws -> RESPValue? {
        let reader = RESPReader()
        try reader.feed(Array(text.utf8))
        return try reader.next()
    }

    @Test func everyReplyTypeMapsToItsCase() throws {
        #expect(try parse("+OK\r\n") == .status("OK"))
        #expect(try parse(":-42\r\n") == .integer(-42))
        #expect(try parse("$3\r\nabc\r\n") == .bulk(Array("abc".utf8)))
        #expect(try parse("$-1\r\n") == .null)
        #expect(try parse("*-1\r\n") == .null)
        #expect(try parse("*2\r\n:1\r\n$0\r\n\r\n") == .array([.integer(1), .bulk([])]))
        #expect(try parse("-WRONGTYPE Operation against a key\r\n") == .error(RedisServerError(code: "WRONGTYPE", message: "Operation against a key")))
    }

    @Test func bulkRepliesKeepBinaryBytes() throws {
        let payload: [UInt8] = [0, 13, 10, 255, 128, 36]
        let reader = RESPReader()
        try reader.feed(Array("$6\r\n".utf8) + payload + Array("\r\n".utf8))
        #expect(try reader.next() == .bulk(payload))
    }

    @Test func partialRepliesWaitForMoreBytes() throws {
        let reader = RESPReader()
        try reader.feed(Array("$5\r\nhel".utf8))
        #expect(try reader.next() == nil)
        try reader.feed(Array("lo\r\n".utf8))
        #expect(try reader.next()?.string == "hello")
    }

    @Test func garbageIsAProtocolError() throws {
        let reader = RESPReader()
        try reader.feed(Array("?what\r\n".utf8))
        #expect(throws: RedisError.self) { try reader.next() }
    }

    @Test func errorLinesSplitIntoCodeAndMessage() {
        #expect(RedisServerError(line: "NOSCRIPT No matching script.") == RedisServerError(code: "NOSCRIPT", message: "No matching script."))
        #expect(RedisServerError(line: "BUSYGROUP Consumer Group name already exists").code == "BUSYGROUP")
        #expect(RedisServerError(line: "something odd").code == "ERR")
    }

    @Test func typedAccessorsConvert() {
        #expect(RESPValue.bulk(Array("17".utf8)).int == 17)
        #expect(RESPValue.integer(3).string == "3")
        #expect(RESPValue.status("OK").isOK)
        #expect(RESPValue.null.isNull)
        #expect(RESPValue.array([.null]).array?.count == 1)
        #expect(RESPValue.integer(1).array == nil)
    }

    @Test func commandsEncodeAsBinarySafeRESP() throws {
        let encoded = try EncodedCommand(RedisCommand("SET", "k", [UInt8]([0, 10, 255])))
        defer { encoded.free() }
        #expect(encoded.bytes == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n".utf8) + [0, 10, 255] + Array("\r\n".utf8))
    }

    @Test func emptyArgumentsEncode() throws {
        let encoded = try EncodedCommand(RedisCommand("", ""))
        defer { encoded.free() }
        #expect(encoded.bytes == Array("*2\r\n$0\r\n\r\n$0\r\n\r\n".utf8))
    }

    @Test(arguments: [0, 1, 9, 10, 99, 100, 12345, 1 << 20])
    func lengthsOfEveryWidthEncode(length: Int) throws {
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: length)
        let encoded = try EncodedCommand(RedisCommand("SET", value))
        defer { encoded.free() }
        #expect(encoded.bytes == Array("*2\r\n$3\r\nSET\r\n$\(length)\r\n".utf8) + value + Array("\r\n".utf8))
    }

    @Test func scriptNamesAreTheirSHA1() {
        #expect(RedisScript("abc").sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(RedisScript("").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(RedisScript(String(repeating: "a", count: 1000)).sha1 == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
        #expect(RedisScript("abc").name == "sg_a9993e364706816aba3e25717850c26c9cd0d89d")
    }
}
