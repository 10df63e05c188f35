import StreamTools
import Testing

@Suite struct TerminalTextTests {
    @Test func controlCharactersBecomeVisibleEscapes() {
        #expect(TerminalText.escape("a\u{1B}[2Jb") == "a\\x1B[2Jb")
        #expect(TerminalText.escape("line\nfake\r\tx") == "line\\nfake\\r\\tx")
        #expect(TerminalText.escape("\u{0}\u{7}\u{7F}\u{9B}") == "\\x00\\x07\\x7F\\x9B")
        #expect(TerminalText.escape("abc\u{202E}cba\u{2066}") == "abc\\u{202E}cba\\u{2066}")
    }

    @Test func ordinaryTextIsLeftAlone() {
        for text in ["", "sg:stream:inbound", "ch-42 {tag} ../x", "Grüße 😀 日本", "back\\slash", "1700000000000-0"] {
            #expect(TerminalText.escape(text) == text)
        }
    }

    @Test func tableCellsAreEscapedSoAValueCannotAddARow() {
        let lines = Table.render(header: ["id", "channel"], rows: [["1-0", "a\nfake\u{1B}[31m"]])
        #expect(lines.count == 2)
        #expect(lines[1] == "1-0  a\\nfake\\x1B[31m")
    }
}
