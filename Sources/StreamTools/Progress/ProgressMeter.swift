/// The text of a progress display, without the I/O: callers pass the elapsed time and print
/// whatever comes back. On a terminal it is a bar redrawn in place (`\r`), at most every
/// `interval`; otherwise plain lines, at most every `interval`, that read well in a log file.
public struct ProgressMeter: Sendable {
    public enum Style: Sendable, Equatable {
        case bar(width: Int)
        case lines
    }

    public let label: String
    public let total: Int?
    public let style: Style
    public let interval: Duration
    private var lastShown: Duration?

    public init(label: String, total: Int?, style: Style, interval: Duration? = nil) {
        self.label = label
        self.total = total
        self.style = style
        switch style {
        case .bar: self.interval = interval ?? .milliseconds(200)
        case .lines: self.interval = interval ?? .seconds(5)
        }
    }

    /// The text to write now, or nil when the last one is recent enough.
    public mutating func update(done: Int, elapsed: Duration) -> String? {
        if let lastShown, elapsed - lastShown < interval { return nil }
        // The first plain line waits a full interval, so short runs stay quiet.
        if lastShown == nil, style == .lines, elapsed < interval { return nil }
        lastShown = elapsed
        return render(done: done, elapsed: elapsed)
    }

    /// The closing text: the bar completed with a newline, or a final line; nil for plain
    /// lines when none was shown (a short run stays quiet in logs).
    public func finish(done: Int, elapsed: Duration) -> String? {
        if style == .lines && lastShown == nil { return nil }
        return render(done: done, elapsed: elapsed, final: true)
    }

    public func render(done: Int, elapsed: Duration, final: Bool = false) -> String {
        let seconds = Self.seconds(elapsed)
        let rate = seconds > 0 ? Double(done) / seconds : 0
        let rateText = Self.formatRate(rate)
        let eta: String? = {
            guard !final, let total, total > done, rate > 0 else { return nil }
            return Self.formatDuration(Double(total - done) / rate)
        }()
        switch style {
        case .bar(let width):
            var text = "\r\(label) "
            if let total, total > 0 {
                let fraction = min(1, Double(done) / Double(total))
                let filled = Int((fraction * Double(width)).rounded(.down))
                text += "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
                text += "\(done)/\(total) \(Int((fraction * 100).rounded(.down)))%"
            } else {
                text += "\(done)"
            }
            text += " \(rateText)/s"
            if let eta { text += " ETA \(eta)" }
            if final { text += " in \(Self.formatDuration(seconds))\n" }
            // Pad so a shorter redraw erases the tail of a longer one.
            return final ? text : text + "   "
        case .lines:
            var text = "\(label): \(done)"
            if let total { text += "/\(total)" }
            text += " entries, \(rateText)/s"
            if let eta { text += ", ETA \(eta)" }
            if final { text += ", done in \(Self.formatDuration(seconds))" }
            return text + "\n"
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// `812`, `12.3k`, `1.2M`.
    public static func formatRate(_ rate: Double) -> String {
        if rate >= 1_000_000 { return String(format1: rate / 1_000_000) + "M" }
        if rate >= 10_000 { return String(format1: rate / 1000) + "k" }
        return String(Int(rate.rounded()))
    }

    /// `0:07`, `12:05`, `3:02:10`.
    public static func formatDuration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        let ss = s < 10 ? "0\(s)" : "\(s)"
        if h > 0 { return "\(h):\(m < 10 ? "0\(m)" : "\(m)"):\(ss)" }
        return "\(m):\(ss)"
    }
}

extension String {
    /// One decimal place without Foundation's format strings.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(tenths % 10)"
    }
}
