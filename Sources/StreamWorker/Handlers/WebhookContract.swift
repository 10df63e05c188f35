import DistributedLocking
import Foundation

/// The wire format between the worker and a webhook service (see docs/webhook.md): the JSON the
/// worker POSTs for each message, and the JSON state update a 2xx response carries back.
/// Pure values, so the contract is tested without sockets.
public enum WebhookContract {
    /// Responses larger than this are refused rather than buffered.
    public static let maxResponseBytes = 1 << 20

    /// The request body: `{"stream", "channel", "id", "seq", "fence", "fields", "state"}`.
    /// Field names and values that are not UTF-8 are sent as `b64:` + base64, as in the history list.
    public static func requestBody(for message: InboundMessage, state: ChannelState, fence: Int64?) -> [UInt8] {
        var fields: [String: String] = [:]
        for field in message.fields {
            fields[text(field.name)] = text(field.value)
        }
        var object: [String: Any] = [
            "stream": message.stream,
            "channel": message.channel,
            "id": message.id,
            "fields": fields,
            "state": state.fields,
        ]
        object["seq"] = message.seq.map { NSNumber(value: $0) } ?? NSNull()
        object["fence"] = fence.map { NSNumber(value: $0) } ?? NSNull()
        // Every value above is a string, number, null or string dictionary, which always serialize.
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Array(data)
    }

    /// `<stream>/<entry id>`: the same for every delivery of one entry, so the service can deduplicate.
    public static func idempotencyKey(for message: InboundMessage) -> String {
        "\(message.stream)/\(message.id)"
    }

    /// Turns a 2xx response body into a validated ``StateUpdate``.
    ///
    /// The body is empty (no change) or a JSON object with any of:
    /// `"set": {field: string}`, `"increment": {field: integer}`,
    /// `"append": {"values": [string], "cap": positive integer}`.
    /// Appended values go to the channel's history list; without `cap` it keeps `defaultCap` entries.
    public static func stateUpdate(fromResponse body: [UInt8], defaultCap: Int) throws(WebhookResponseError) -> StateUpdate {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return StateUpdate() }
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            throw .notJSON
        }
        guard case .object(let members) = root else { throw .notAnObject }
        var update = StateUpdate()
        for (key, value) in members.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "set":
                guard case .object(let fields) = value else { throw .wrongType(path: "set", expected: "an object of strings") }
                for (field, fieldValue) in fields {
                    guard case .string(let text) = fieldValue else {
                        throw .wrongType(path: "set.\(field)", expected: "a string")
                    }
                    update.setFields[field] = text
                }
            case "increment":
                guard case .object(let fields) = value else { throw .wrongType(path: "increment", expected: "an object of integers") }
                for (field, fieldValue) in fields {
                    guard case .integer(let delta) = fieldValue else {
                        throw .wrongType(path: "increment.\(field)", expected: "an integer")
                    }
                    update.increment[field] = delta
                }
            case "append":
                guard case .object(let append) = value else {
                    throw .wrongType(path: "append", expected: "an object with \"values\" and optional \"cap\"")
                }
                for (appendKey, appendValue) in append {
                    switch appendKey {
                    case "values":
                        guard case .array(let items) = appendValue else {
                            throw .wrongType(path: "append.values", expected: "an array of strings")
                        }
                        for (i, item) in items.enumerated() {
                            guard case .string(let text) = item else {
                                throw .wrongType(path: "append.values[\(i)]", expected: "a string")
                            }
                            update.append.append(text)
                        }
                    case "cap":
                        guard case .integer(let cap) = appendValue, cap > 0, cap <= Int64(Int32.max) else {
                            throw .wrongType(path: "append.cap", expected: "a positive integer")
                        }
                        update.listCap = Int(cap)
                    default:
                        throw .unknownKey("append.\(appendKey)")
                    }
                }
            default:
                throw .unknownKey(key)
            }
        }
        if !update.append.isEmpty, update.listCap == nil { update.listCap = defaultCap }
        do throws(StateUpdateError) {
            try update.validate()
        } catch {
            throw .invalidUpdate(error)
        }
        return update
    }

    private static func text(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return "b64:" + Data(bytes).base64EncodedString()
    }
}

/// Why a 2xx response body is not a usable state update. The message names the offending part.
public enum WebhookResponseError: Error, Sendable, Equatable, CustomStringConvertible {
    case notJSON
    case notAnObject
    case unknownKey(String)
    case wrongType(path: String, expected: String)
    case invalidUpdate(StateUpdateError)

    public var description: String {
        switch self {
        case .notJSON: return "response body is not JSON"
        case .notAnObject: return "response body is not a JSON object"
        case .unknownKey(let key): return "response has unknown key \"\(key)\" (allowed: set, increment, append.values, append.cap)"
        case .wrongType(let path, let expected): return "response \"\(path)\" must be \(expected)"
        case .invalidUpdate(let error): return "response is not an acceptable state update: \(error)"
        }
    }
}

/// Just enough JSON to tell strings, integers and the rest apart, which `JSONSerialization` blurs on Linux.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}
