import StreamTools
import StreamWorker
import Testing

@Suite struct EntryCodecTests {
    static func roundTrip(_ entry: ExportedEntry) throws -> ExportedEntry? {
        let line = EntryCodec.encode(entry)
        return try EntryCodec.decode(Array(line.utf8), lineNumber: 1)
    }

    @Test func everyByteValueSurvivesTheRoundTrip() throws {
        let allBytes = (0...255).map(UInt8.init)
        var generator = SystemRandomNumberGenerator()
        let random = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let entry = ExportedEntry(id: "1700000000000-3", fields: [
            StreamField(name: Array("all".utf8), value: allBytes),
            StreamField(name: Array("random".utf8), value: random),
            StreamField(name: [0xC3, 0x28, 0x00], value: Array("binary name".utf8)),
            StreamField(name: Array("empty".utf8), value: []),
            StreamField(name: Array("all".utf8), value: Array("repeated name".utf8)),
        ])
        #expect(try Self.roundTrip(entry) == entry)
    }

    @Test func textStaysReadableAndOnlyNonUTF8IsBase64() {
        let line = EntryCodec.encode(ExportedEntry(id: "1-0", fields: [
            StreamField("channel_id", "42"), StreamField("text", "héllo\n\"x\""),
            StreamField(name: Array("data".utf8), value: [0xff, 0x00]),
        ]))
        #expect(line == #"{"id":"1-0","fields":{"channel_id":"42","text":"héllo\n\"x\"","data":"b64:/wA="}}"#)
    }

    @Test func textThatLooksLikeTheMarkerIsEncodedSoDecodingIsUnambiguous() throws {
        let entry = ExportedEntry(id: nil, fields: [StreamField("b64:name", "b64:/wA=")])
        let line = EntryCodec.encode(entry)
        #expect(!line.contains(#""b64:/wA=""#))
        #expect(try Self.roundTrip(entry) == entry)
    }

    @Test func handWrittenLinesMayOmitTheIdAndUseNumbers() throws {
        let entry = try EntryCodec.decode(Array(#"{"fields": {"channel_id": "7", "seq": 3, "ok": true}}"#.utf8), lineNumber: 4)
        #expect(entry == ExportedEntry(id: nil, fields: [StreamField("channel_id", "7"), StreamField("seq", "3"), StreamField("ok", "true")]))
        #expect(try EntryCodec.decode(Array("  \r".utf8), lineNumber: 5) == nil)
    }

    @Test(arguments: [
        ("not json", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        (#"{"id": "1-1"}"#, "\"fields\" must be an object"),
        (#"{"id": "1-1", "fields": {}}"#, "is empty"),
        (#"{"id": "abc", "fields": {"a": "b"}}"#, "is not a stream id"),
        (#"{"id": 5, "fields": {"a": "b"}}"#, "\"id\" must be a string"),
        (#"{"fields": {"a": {"b": 1}}}"#, "field 'a' must be a string"),
        (#"{"fields": {"a": "b64:!!"}}"#, "not base64"),
    ])
    func badLinesAreRejectedNamingTheLineAndTheProblem(line: String, problem: String) {
        do {
            _ = try EntryCodec.decode(Array(line.utf8), lineNumber: 12)
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.line == 12)
            #expect(error.description.hasPrefix("line 12: "))
            #expect(error.message.contains(problem), "\(error.message)")
        }
    }
}
