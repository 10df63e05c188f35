import Foundation
import StreamWorker

/// One stream entry as it travels through a JSONL file.
public struct ExportedEntry: Sendable, Equatable {
    /// The entry id; optional on import, where `--ids new` lets Redis assign one.
    public var id: String?
    /// The fields in stream order, names and values as raw bytes.
    public var fields: [StreamField]

    public init(id: String?, fields: [StreamField]) {
        self.id = id
        self.fields = fields
    }
}

/// Why a JSONL line could not be turned into an entry.
public struct EntryCodecError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { "line \(line): \(message)" }
}

/// Names and values in JSON text. Text that is valid UTF-8 is written as it is; anything else is
/// written as `b64:` (the prefix the history handler uses) followed by its base64. A text that itself starts with `b64:` is
/// encoded the same way, so that decoding never has to guess.
public enum FieldText {
    public static let marker = "b64:"

    public static func encode(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self), !text.hasPrefix(marker) { return text }
        return marker + Data(bytes).base64EncodedString()
    }

    /// nil when the text carries the marker but what follows is not base64.
    public static func decode(_ text: String) -> [UInt8]? {
        guard text.hasPrefix(marker) else { return Array(text.utf8) }
        guard let data = Data(base64Encoded: String(text.dropFirst(marker.count))) else { return nil }
        return Array(data)
    }
}

/// `{"id":"1700000000000-0","fields":{"channel_id":"42","seq":"1","text":"hi"}}`, one per line.
/// Fields keep their stream order; a name that occurs twice in the entry occurs twice in the object.
public enum EntryCodec {
    public static func encode(_ entry: ExportedEntry) -> String {
        json(entry).serialized
    }

    public static func json(_ entry: ExportedEntry) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if let id = entry.id { members.append(("id", .string(id))) }
        members.append(("fields", fieldsJSON(entry.fields)))
        return .object(members)
    }

    public static func fieldsJSON(_ fields: [StreamField]) -> JSONValue {
        .object(fields.map { (FieldText.encode($0.name), .string(FieldText.encode($0.value))) })
    }

    /// nil for a blank line. Integer and boolean values are accepted as their JSON text, so
    /// hand-written files may say `"seq": 1`.
    public static func decode(_ line: some Collection<UInt8>, lineNumber: Int) throws(EntryCodecError) -> ExportedEntry? {
        let bytes = Array(line)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw EntryCodecError(line: lineNumber, message: "not valid JSON: \(error)")
        }
        guard case .object = value else { throw EntryCodecError(line: lineNumber, message: "expected a JSON object") }
        var id: String?
        switch value["id"] {
        case nil, .null?: id = nil
        case .string(let s)?:
            guard StreamID(s) != nil else { throw EntryCodecError(line: lineNumber, message: "\"id\" '\(s)' is not a stream id (ms-seq)") }
            id = s
        default: throw EntryCodecError(line: lineNumber, message: "\"id\" must be a string")
        }
        guard case .object(let members)? = value["fields"] else {
            throw EntryCodecError(line: lineNumber, message: "\"fields\" must be an object of field names to values")
        }
        guard !members.isEmpty else { throw EntryCodecError(line: lineNumber, message: "\"fields\" is empty; a stream entry needs at least one field") }
        var fields: [StreamField] = []
        for (name, raw) in members {
            guard let nameBytes = FieldText.decode(name) else {
                throw EntryCodecError(line: lineNumber, message: "field name '\(name)' starts with the b64: marker but the rest is not base64")
            }
            let text: String
            switch raw {
            case .string(let s): text = s
            case .integer(let i): text = String(i)
            case .bool(let b): text = b ? "true" : "false"
            default: throw EntryCodecError(line: lineNumber, message: "field '\(name)' must be a string")
            }
            guard let valueBytes = FieldText.decode(text) else {
                throw EntryCodecError(line: lineNumber, message: "field '\(name)' starts with the b64: marker but the rest is not base64")
            }
            fields.append(StreamField(name: nameBytes, value: valueBytes))
        }
        return ExportedEntry(id: id, fields: fields)
    }
}
