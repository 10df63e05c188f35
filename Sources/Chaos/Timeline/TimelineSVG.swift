import Foundation

/// Draws a ``Timeline`` as a standalone SVG document a browser opens directly. Hovering a
/// segment or marker shows its details (SVG `<title>`).
public enum TimelineSVG {
    static let width = 1200.0
    static let left = 120.0
    static let right = 24.0
    static let top = 64.0
    static let laneHeight = 26.0
    static let laneGap = 8.0
    static let bottom = 44.0

    public static func render(_ timeline: Timeline, title: String) -> String {
        let plotWidth = width - left - right
        let span = Double(timeline.endMicros - timeline.startMicros)
        func x(_ micros: Int64) -> Double {
            left + plotWidth * min(max(Double(micros - timeline.startMicros) / span, 0), 1)
        }
        func laneY(_ index: Int) -> Double { top + Double(index) * (laneHeight + laneGap) }
        let plotBottom = laneY(timeline.lanes.count) - laneGap
        let height = plotBottom + bottom

        var out: [String] = []
        out.append(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        out.append(#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(fmt(width))" height="\#(fmt(height))" viewBox="0 0 \#(fmt(width)) \#(fmt(height))" font-family="sans-serif" font-size="11">"#)
        out.append(#"<rect width="100%" height="100%" fill="rgb(255,255,255)"/>"#)
        out.append(#"<text x="\#(fmt(left))" y="20" font-size="14" font-weight="bold">\#(escape(title))</text>"#)
        out.append(contentsOf: legend(y: 40))

        // Seconds axis with about ten ticks.
        let seconds = span / 1_000_000
        let step = niceStep(seconds / 10)
        var tick = 0.0
        out.append(#"<g class="axis" stroke="rgb(221,221,221)">"#)
        while tick <= seconds + 1e-9 {
            let tx = left + plotWidth * (tick / seconds)
            out.append(#"<line x1="\#(fmt(tx))" y1="\#(fmt(top - 6))" x2="\#(fmt(tx))" y2="\#(fmt(plotBottom))"/>"#)
            out.append(#"<text x="\#(fmt(tx))" y="\#(fmt(plotBottom + 16))" text-anchor="middle" stroke="none" fill="rgb(85,85,85)">\#(fmt(tick))s</text>"#)
            tick += step
        }
        out.append("</g>")

        for (index, lane) in timeline.lanes.enumerated() {
            let y = laneY(index)
            let alive0 = x(lane.startedMicros), alive1 = x(lane.endedMicros ?? timeline.endMicros)
            out.append(#"<g class="lane" data-worker="\#(escape(lane.worker))">"#)
            out.append(#"<text x="\#(fmt(left - 8))" y="\#(fmt(y + laneHeight / 2 + 4))" text-anchor="end">\#(escape(lane.worker))</text>"#)
            out.append(#"<rect x="\#(fmt(alive0))" y="\#(fmt(y))" width="\#(fmt(max(alive1 - alive0, 0.5)))" height="\#(fmt(laneHeight))" fill="rgb(242,242,242)"/>"#)
            for segment in lane.segments {
                let x0 = x(segment.startMicros), x1 = x(segment.endMicros)
                let w = max(x1 - x0, 1.0)
                let stroke: String
                switch segment.ending {
                case .refused: stroke = #" stroke="rgb(208,0,0)" stroke-width="2""#
                case .abandoned: stroke = #" stroke="rgb(208,0,0)" stroke-width="1.5" stroke-dasharray="3,2""#
                case .unknown: stroke = #" stroke="rgb(85,85,85)" stroke-width="1" stroke-dasharray="1,2""#
                case .applied, .duplicate: stroke = ""
                }
                let opacity = segment.ending == .duplicate ? "0.45" : "0.9"
                let detail = "\(segment.channel) · fence \(segment.fence)" + (segment.seq.map { " · seq \($0)" } ?? "")
                    + " · \(segment.ending.rawValue) · \(fmt(Double(segment.endMicros - segment.startMicros) / 1000)) ms"
                out.append(#"<rect class="segment \#(segment.ending.rawValue)" x="\#(fmt(x0))" y="\#(fmt(y + 3))" width="\#(fmt(w))" height="\#(fmt(laneHeight - 6))" fill="\#(color(for: segment.channel))" fill-opacity="\#(opacity)"\#(stroke)><title>\#(escape(detail))</title></rect>"#)
                if segment.ending == .refused || segment.ending == .abandoned {
                    // Late writes are rare and short: a flag above the lane keeps them findable.
                    out.append(#"<path class="flag" d="M\#(fmt(x0)) \#(fmt(y + 2)) l4 -7 l-8 0 z" fill="rgb(208,0,0)"><title>\#(escape(detail))</title></path>"#)
                }
                if w >= Double(segment.channel.count) * 6.5 + 6 {
                    out.append(#"<text x="\#(fmt(x0 + w / 2))" y="\#(fmt(y + laneHeight / 2 + 4))" text-anchor="middle" fill="rgb(255,255,255)" pointer-events="none">\#(escape(segment.channel))</text>"#)
                }
            }
            out.append("</g>")
        }

        out.append(#"<g class="faults">"#)
        for fault in timeline.faults {
            let fx = x(fault.atMicros)
            let label = escape("\(fault.kind.rawValue): \(fault.detail)")
            let lane = timeline.victim(of: fault).flatMap { name in timeline.lanes.firstIndex { $0.worker == name } }
            let y0 = lane.map(laneY) ?? (top - 6), y1 = lane.map { laneY($0) + laneHeight } ?? plotBottom
            let colour = faultColour(fault.kind)
            if let until = fault.untilMicros, until > fault.atMicros {
                out.append(#"<rect class="fault \#(fault.kind.rawValue)" x="\#(fmt(fx))" y="\#(fmt(y0))" width="\#(fmt(max(x(until) - fx, 1)))" height="\#(fmt(y1 - y0))" fill="\#(colour)" fill-opacity="0.25" stroke="\#(colour)"><title>\#(label)</title></rect>"#)
            }
            out.append(#"<line class="fault \#(fault.kind.rawValue)" x1="\#(fmt(fx))" y1="\#(fmt(y0 - 4))" x2="\#(fmt(fx))" y2="\#(fmt(y1 + 4))" stroke="\#(colour)" stroke-width="2"><title>\#(label)</title></line>"#)
            out.append(#"<text x="\#(fmt(fx + 2))" y="\#(fmt(y0 - 5))" fill="\#(colour)" font-size="10" font-weight="bold">\#(escape(fault.kind.rawValue))</text>"#)
        }
        out.append("</g>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    static func legend(y: Double) -> [String] {
        var parts: [String] = []
        var lx = left
        func item(_ swatch: String, _ text: String) {
            parts.append(#"<g transform="translate(\#(fmt(lx)),\#(fmt(y - 9)))">\#(swatch)<text x="20" y="9">\#(escape(text))</text></g>"#)
            lx += 20 + Double(text.count) * 6 + 18
        }
        item(#"<rect width="14" height="10" fill="rgb(68,119,170)"/>"#, "inside a channel (colour = channel)")
        item(#"<rect width="14" height="10" fill="rgb(68,119,170)" stroke="rgb(208,0,0)" stroke-width="2"/><path d="M7 0 l4 -7 l-8 0 z" fill="rgb(208,0,0)"/>"#, "late commit refused")
        item(#"<rect width="14" height="10" fill="rgb(68,119,170)" stroke="rgb(208,0,0)" stroke-dasharray="3,2"/>"#, "lease lost, abandoned")
        for kind in FaultKind.allCases {
            item(#"<rect width="3" height="12" y="-1" fill="\#(faultColour(kind))"/>"#, kind.rawValue)
        }
        return parts
    }

    static func faultColour(_ kind: FaultKind) -> String {
        switch kind {
        case .kill: return "#d00000"
        case .pause: return "#e69500"
        case .steal: return "#8e44ad"
        case .connkill: return "#1f77b4"
        case .restart: return "#333333"
        case .join: return "#2ca02c"
        case .leave: return "#17becf"
        case .joinkill: return "#8c564b"
        }
    }

    /// A stable colour per channel: FNV-1a of the name picks one of twelve well-separated colours.
    static func color(for channel: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in channel.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return palette[Int(hash % UInt32(palette.count))]
    }

    static let palette = [
        "rgb(31,119,180)", "rgb(44,160,44)", "rgb(148,103,189)", "rgb(140,86,75)", "rgb(227,119,194)", "rgb(127,127,127)",
        "rgb(188,189,34)", "rgb(23,190,207)", "rgb(57,59,121)", "rgb(99,121,57)", "rgb(140,109,49)", "rgb(123,65,115)",
    ]

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let magnitude = pow(10, floor(log10(raw)))
        for factor in [1.0, 2.0, 5.0, 10.0] where raw <= factor * magnitude { return factor * magnitude }
        return 10 * magnitude
    }

    static func fmt(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
    }

    /// Escapes text for element content and attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 forbids most control characters even escaped.
                if scalar.value < 0x20 && scalar != "\t" && scalar != "\n" && scalar != "\r" { out += "\u{FFFD}" }
                else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}
