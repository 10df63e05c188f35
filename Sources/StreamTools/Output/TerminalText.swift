/// Text from Redis made safe for an operator's terminal. Channel ids, field values, consumer
/// names and tokens can hold anything, and an escape sequence printed raw drives the terminal
/// (moves the cursor, rewrites earlier lines, sets the window title); a newline fakes a table row.
/// Every human-readable line sgctl prints passes its data through `escape`; `--json` output
/// does not (JSON escapes control characters itself, and its values must stay exact).
public enum TerminalText {
    /// Control characters (C0, DEL, C1) and the bidirectional overrides that reorder a line
    /// become visible escapes (`\x1B`, `\n`, `\u{202E}`); everything else is unchanged.
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += scalar.value <= 0xFF ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{" + hex + "}"
            }
        }
        return out
    }

    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
