import StreamTools
import Testing

@Suite struct JSONParserTests {
    @Test func objectMembersKeepTheirOrderAndRepeatedNames() throws {
        let value = try JSONParser.parse(#"{"b": "1", "a": [true, null, -2.5e1, 7], "b": "2"}"#)
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.map(\.0) == ["b", "a", "b"])
        #expect(members[1].1 == .array([.bool(true), .null, .double(-25), .integer(7)]))
        #expect(value["b"] == .string("1"))
    }

    @Test func escapesAndSurrogatePairsDecodeToTheRightText() throws {
        let value = try JSONParser.parse(#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u0000""#)
        #expect(value == .string("a\"\\/\u{8}\u{c}\n\r\té😀\u{0}"))
    }

    @Test func serializingThenParsingGivesTheSameValue() throws {
        let value = JSONValue.object([
            ("text", .string("line\nbreak \"quoted\" \u{1} \u{2028} 😀")), ("n", .integer(-42)), ("x", .double(0.5)),
            ("list", .array([.null, .bool(false), .object([])])), ("text", .string("again")),
        ])
        let text = value.serialized
        #expect(!text.contains("\n"))
        #expect(try JSONParser.parse(text) == value)
    }

    @Test(arguments: [
        "", "{", #"{"a" 1}"#, #"{"a": 1,}"#, "[1 2]", #""unterminated"#, #""\x""#, #""\ud800""#, #""\udc00""#,
        "tru", "01x", "-", "1.", "1e", #"{"a": 1} extra"#, "\"tab\there\"", String(repeating: "[", count: 100),
    ])
    func malformedInputIsRejectedWithAnError(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func invalidUTF8InsideAStringIsRejected() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xff, 0x22]) }
    }
}
