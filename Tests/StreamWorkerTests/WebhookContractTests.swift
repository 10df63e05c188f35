import DistributedLocking
import Foundation
@testable import StreamWorker
import Testing

/// The webhook wire format, without sockets.
@Suite struct WebhookContractTests {
    func update(_ json: String, defaultCap: Int = 100) throws(WebhookResponseError) -> StateUpdate {
        try WebhookContract.stateUpdate(fromResponse: Array(json.utf8), defaultCap: defaultCap)
    }

    func rejection(_ json: String) -> WebhookResponseError? {
        do {
            let u = try update(json)
            Issue.record("expected a rejection, got \(u)")
            return nil
        } catch {
            return error
        }
    }

    @Test func aFullResponseMapsOntoTheStateUpdate() throws {
        let u = try update(#"{"set":{"mood":"calm","reply":""},"increment":{"count":1,"tokens":-7},"append":{"values":["a","b"],"cap":20}}"#)
        #expect(u == StateUpdate(setFields: ["mood": "calm", "reply": ""], increment: ["count": 1, "tokens": -7], append: ["a", "b"], listCap: 20))
    }

    @Test(arguments: ["", "  \n", "{}"])
    func anEmptyResponseChangesNothing(body: String) throws {
        #expect(try update(body).isEmpty)
    }

    @Test func appendsWithoutACapKeepTheDefaultCap() throws {
        #expect(try update(#"{"append":{"values":["x"]}}"#, defaultCap: 42).listCap == 42)
        #expect(try update(#"{"set":{"a":"b"}}"#, defaultCap: 42).listCap == nil)
    }

    @Test(arguments: ["fence", "last_id", "last_seq"])
    func aReservedFieldIsRejectedByName(field: String) {
        #expect(rejection(#"{"set":{"\#(field)":"9"}}"#) == .invalidUpdate(.reservedField(field)))
        #expect(rejection(#"{"increment":{"\#(field)":1}}"#) == .invalidUpdate(.reservedField(field)))
        #expect(rejection(#"{"set":{"\#(field)":"9"}}"#)?.description.contains("'\(field)'") == true)
    }

    @Test(arguments: [
        (#"not json"#, WebhookResponseError.notJSON),
        (#"{"set":{"a":"b"}"#, .notJSON),
        (#"[1,2]"#, .notAnObject),
        (#""text""#, .notAnObject),
        (#"{"sett":{}}"#, .unknownKey("sett")),
        (#"{"append":{"values":[],"key":"k"}}"#, .unknownKey("append.key")),
        (#"{"set":["a"]}"#, .wrongType(path: "set", expected: "an object of strings")),
        (#"{"set":{"a":1}}"#, .wrongType(path: "set.a", expected: "a string")),
        (#"{"increment":{"n":"1"}}"#, .wrongType(path: "increment.n", expected: "an integer")),
        (#"{"increment":{"n":1.5}}"#, .wrongType(path: "increment.n", expected: "an integer")),
        (#"{"increment":{"n":true}}"#, .wrongType(path: "increment.n", expected: "an integer")),
        (#"{"append":["a"]}"#, .wrongType(path: "append", expected: "an object with \"values\" and optional \"cap\"")),
        (#"{"append":{"values":"a"}}"#, .wrongType(path: "append.values", expected: "an array of strings")),
        (#"{"append":{"values":["a",2]}}"#, .wrongType(path: "append.values[1]", expected: "a string")),
        (#"{"append":{"values":["a"],"cap":0}}"#, .wrongType(path: "append.cap", expected: "a positive integer")),
        (#"{"set":{"":"x"}}"#, .invalidUpdate(.emptyFieldName)),
        (#"{"set":{"n":"1"},"increment":{"n":1}}"#, .invalidUpdate(.conflictingField("n"))),
    ])
    func aMalformedResponseIsRejectedWithItsReason(body: String, expected: WebhookResponseError) {
        #expect(rejection(body) == expected)
    }

    @Test func rejectionsReadAsSentencesNamingThePart() {
        #expect(rejection(#"{"set":{"a":1}}"#)?.description == #"response "set.a" must be a string"#)
        #expect(rejection(#"{"sett":{}}"#)?.description.contains(#"unknown key "sett""#) == true)
    }

    @Test func theRequestCarriesChannelEntrySeqFenceFieldsAndState() throws {
        let message = InboundMessage(
            stream: "sg:stream:in", id: "1-2", channel: "room/7", seq: 3,
            fields: [StreamField("text", "hé"), StreamField(name: Array("raw".utf8), value: [0xff, 0x00])])
        let body = WebhookContract.requestBody(for: message, state: ChannelState(fields: ["count": "2"]), fence: 11)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(object["stream"] as? String == "sg:stream:in")
        #expect(object["channel"] as? String == "room/7")
        #expect(object["id"] as? String == "1-2")
        #expect(object["seq"] as? Int == 3)
        #expect(object["fence"] as? Int == 11)
        #expect(object["fields"] as? [String: String] == ["text": "hé", "raw": "b64:/wA="])
        #expect(object["state"] as? [String: String] == ["count": "2"])
        #expect(WebhookContract.idempotencyKey(for: message) == "sg:stream:in/1-2")
    }

    @Test func aMessageWithoutSeqSendsNull() throws {
        let message = InboundMessage(stream: "s", id: "1-0", channel: "c", seq: nil, fields: [])
        let body = WebhookContract.requestBody(for: message, state: ChannelState(), fence: nil)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(object["seq"] is NSNull && object["fence"] is NSNull)
    }
}
