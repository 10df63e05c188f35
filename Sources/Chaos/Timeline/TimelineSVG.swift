import Foundation

/// Draws a ``Timeline`` as a standalone SVG document a browser opens directly. Hovering a
/// segment or marker shows its details (SVG `<title>`).
///
/// From the top: the title, a key (segment endings, fault kinds, the channels' colours), a band
/// of fault labels laid out in rows so that no two overlap, then one lane per worker slot. With
/// partitions, each lane has a strip below it, one thin row per partition, dark where that
/// lane's worker held the partition's lease.
/// Faults are drawn in saturated colours that no channel uses (``faultColour(_:)``,
/// ``palette``), so a marker never reads as a segment.
public enum TimelineSVG {
    static let width = 1200.0
    static let left = 120.0
    static let right = 24.0
    static let laneHeight = 26.0
    static let laneGap = 8.0
    /// One partition's row in a lane's ownership strip.
    static let partitionRowHeight = 2.5
    static let bottom = 44.0
    static let keyRowHeight = 16.0
    static let labelRowHeight = 13.0
    /// Width of one character of the 11 px (key) and 10 px bold (fault label) text, generously
    /// rounded up so that estimated boxes contain the real glyphs of common sans-serif fonts.
    static let keyCharWidth = 6.2
    static let labelCharWidth = 6.6
    /// Channels named in the key; more are summarised as "+N more".
    static let keyedChannels = 10

    public static func render(_ timeline: Timeline, title: String) -> String {
        let plotWidth = width - left - right
        let span = Double(timeline.endMicros - timeline.startMicros)
        func x(_ micros: Int64) -> Double {
            left + plotWidth * min(max(Double(micros - timeline.startMicros) / span, 0), 1)
        }

        let key = self.key(channels: timeline.channels, top: 40)
        let labels = faultLabels(timeline, x: x)
        let bandTop = key.bottom + 6
        let labelRows = (labels.map(\.row).max() ?? -1) + 1
        let top = bandTop + Double(labelRows) * labelRowHeight + 10
        let strip = timeline.ownership.partitions > 0 ? Double(timeline.ownership.partitions) * partitionRowHeight + 2 : 0
        func laneY(_ index: Int) -> Double { top + Double(index) * (laneHeight + strip + laneGap) }
        let plotBottom = laneY(timeline.lanes.count) - laneGap
        let height = max(plotBottom, top) + bottom

        var out: [String] = []
        out.append(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        out.append(#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(fmt(width))" height="\#(fmt(height))" viewBox="0 0 \#(fmt(width)) \#(fmt(height))" font-family="sans-serif" font-size="11">"#)
        out.append(#"<rect width="100%" height="100%" fill="rgb(255,255,255)"/>"#)
        out.append(#"<text x="\#(fmt(left))" y="20" font-size="14" font-weight="bold">\#(escape(title))</text>"#)
        out.append(contentsOf: key.parts)

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
            out.append(#"<g class="lane" data-worker="\#(escape(lane.worker))">"#)
            out.append(#"<text x="\#(fmt(left - 8))" y="\#(fmt(y + laneHeight / 2 + 4))" text-anchor="end">\#(escape(lane.workers.joined(separator: " → ")))</text>"#)
            for (n, process) in lane.spans.enumerated() {
                let alive0 = x(process.startedMicros), alive1 = x(process.endedMicros ?? timeline.endMicros)
                out.append(#"<rect class="alive" x="\#(fmt(alive0))" y="\#(fmt(y))" width="\#(fmt(max(alive1 - alive0, 0.5)))" height="\#(fmt(laneHeight))" fill="rgb(242,242,242)"><title>\#(escape(process.name))</title></rect>"#)
                if n > 0 {
                    // Where a replacement took over the slot, its name starts its part of the lane.
                    out.append(#"<text x="\#(fmt(alive0 + 3))" y="\#(fmt(y + laneHeight - 2))" font-size="8" fill="rgb(85,85,85)">\#(escape(process.name))</text>"#)
                }
            }
            if strip > 0 {
                let stripTop = y + laneHeight + 1
                out.append(#"<text x="\#(fmt(left - 8))" y="\#(fmt(stripTop + strip / 2 + 3))" text-anchor="end" font-size="8" fill="rgb(85,85,85)">partitions</text>"#)
                out.append(#"<rect class="partition-strip" x="\#(fmt(left))" y="\#(fmt(stripTop))" width="\#(fmt(plotWidth))" height="\#(fmt(strip - 2))" fill="rgb(250,250,250)"/>"#)
                for owned in timeline.ownership.spans where lane.workers.contains(owned.owner) {
                    let x0 = x(owned.startMicros), x1 = x(owned.endMicros)
                    let detail = "partition \(owned.partition) · \(owned.owner) · \(fmt(Double(owned.endMicros - owned.startMicros) / 1000)) ms"
                    out.append(#"<rect class="partition" x="\#(fmt(x0))" y="\#(fmt(stripTop + Double(owned.partition) * partitionRowHeight))" width="\#(fmt(max(x1 - x0, 0.5)))" height="\#(fmt(partitionRowHeight - 0.5))" fill="rgb(70,70,70)"><title>\#(escape(detail))</title></rect>"#)
                }
            }
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
                if w >= Double(segment.channel.count) * keyCharWidth + 6 {
                    out.append(#"<text x="\#(fmt(x0 + w / 2))" y="\#(fmt(y + laneHeight / 2 + 4))" text-anchor="middle" fill="rgb(255,255,255)" pointer-events="none">\#(escape(segment.channel))</text>"#)
                }
            }
            out.append("</g>")
        }

        out.append(#"<g class="faults">"#)
        for label in labels {
            let fault = label.fault
            let fx = x(fault.atMicros)
            let detail = escape("\(fault.kind.rawValue): \(fault.detail)")
            let lane = timeline.victim(of: fault).flatMap(timeline.laneIndex(of:))
            let y0 = lane.map(laneY) ?? (top - 6), y1 = lane.map { laneY($0) + laneHeight } ?? plotBottom
            let colour = faultColour(fault.kind)
            let labelY = bandTop + Double(label.row + 1) * labelRowHeight - 3
            if let until = fault.untilMicros, until > fault.atMicros {
                out.append(#"<rect class="fault \#(fault.kind.rawValue)" x="\#(fmt(fx))" y="\#(fmt(y0))" width="\#(fmt(max(x(until) - fx, 1)))" height="\#(fmt(y1 - y0))" fill="\#(colour)" fill-opacity="0.18" stroke="\#(colour)"><title>\#(detail)</title></rect>"#)
            }
            // A faint leader from the label down to the marker on the lane it hit.
            out.append(#"<line class="leader" x1="\#(fmt(fx))" y1="\#(fmt(labelY + 2))" x2="\#(fmt(fx))" y2="\#(fmt(y0 - 4))" stroke="\#(colour)" stroke-width="0.75" stroke-dasharray="2,2"/>"#)
            out.append(#"<line class="fault \#(fault.kind.rawValue)" x1="\#(fmt(fx))" y1="\#(fmt(y0 - 4))" x2="\#(fmt(fx))" y2="\#(fmt(y1 + 4))" stroke="\#(colour)" stroke-width="2"><title>\#(detail)</title></line>"#)
            out.append(#"<text class="fault-label" x="\#(fmt(label.x))" y="\#(fmt(labelY))" fill="\#(colour)" font-size="10" font-weight="bold">\#(escape(label.text))<title>\#(detail)</title></text>"#)
        }
        out.append("</g>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// A fault's label: its text, where it starts, and the row of the label band it sits in.
    struct FaultLabel {
        var fault: FaultEvent
        var text: String
        var x: Double
        var width: Double
        var row: Int
    }

    /// Labels in time order, each in the first row where it clears the labels before it.
    static func faultLabels(_ timeline: Timeline, x: (Int64) -> Double) -> [FaultLabel] {
        let faults = timeline.faults.sorted { $0.atMicros < $1.atMicros }
        let boxes = faults.map { fault -> (x: Double, width: Double) in
            let width = Double(fault.kind.rawValue.count) * labelCharWidth
            // Starts just right of its marker, pulled left where it would leave the picture.
            return (min(x(fault.atMicros) + 2, Self.width - right - width), width)
        }
        let rows = labelRows(boxes, gap: 4)
        return faults.indices.map { i in
            FaultLabel(fault: faults[i], text: faults[i].kind.rawValue, x: boxes[i].x, width: boxes[i].width, row: rows[i])
        }
    }

    /// First-fit rows for boxes given in increasing `x`: a box goes to the lowest row whose last box
    /// ends at least `gap` before it starts, so boxes in one row never overlap.
    static func labelRows(_ boxes: [(x: Double, width: Double)], gap: Double) -> [Int] {
        var rowEnds: [Double] = []
        return boxes.map { box in
            if let row = rowEnds.firstIndex(where: { $0 + gap <= box.x }) {
                rowEnds[row] = box.x + box.width
                return row
            }
            rowEnds.append(box.x + box.width)
            return rowEnds.count - 1
        }
    }

    /// The key, wrapped into rows within the picture's width: segment endings, fault kinds, channels.
    static func key(channels: [String], top: Double) -> (parts: [String], bottom: Double) {
        var parts = [#"<g class="key">"#]
        var kx = left
        var ky = top
        func item(_ swatch: String, _ text: String) {
            let itemWidth = 20 + Double(text.count) * keyCharWidth + 14
            if kx + itemWidth > width - right && kx > left {
                kx = left
                ky += keyRowHeight
            }
            parts.append(#"<g class="key-item" transform="translate(\#(fmt(kx)),\#(fmt(ky - 9)))">\#(swatch)<text x="20" y="9">\#(escape(text))</text></g>"#)
            kx += itemWidth
        }
        let neutral = "rgb(160,160,160)"
        item(#"<rect width="14" height="10" fill="\#(neutral)"/>"#, "inside a channel, committed")
        item(#"<rect width="14" height="10" fill="\#(neutral)" fill-opacity="0.45"/>"#, "duplicate")
        item(#"<rect width="14" height="10" fill="\#(neutral)" stroke="rgb(208,0,0)" stroke-width="2"/><path d="M7 0 l4 -7 l-8 0 z" fill="rgb(208,0,0)"/>"#, "late commit refused")
        item(#"<rect width="14" height="10" fill="\#(neutral)" stroke="rgb(208,0,0)" stroke-dasharray="3,2"/>"#, "lease lost, abandoned")
        item(#"<rect width="14" height="10" fill="\#(neutral)" stroke="rgb(85,85,85)" stroke-dasharray="1,2"/>"#, "no commit seen")
        for kind in FaultKind.allCases {
            item(#"<rect width="3" height="12" x="5" y="-1" fill="\#(faultColour(kind))"/>"#, "fault: \(kind.rawValue)")
        }
        kx = left
        ky += keyRowHeight
        for channel in channels.prefix(keyedChannels) {
            item(#"<rect class="channel-swatch" width="14" height="10" fill="\#(color(for: channel))"/>"#, channel)
        }
        if channels.count > keyedChannels {
            item("", "+\(channels.count - keyedChannels) more channels (hover a segment for its name)")
        }
        parts.append("</g>")
        return (parts, ky + 4)
    }

    /// Saturated colours, far from every colour of ``palette``.
    static func faultColour(_ kind: FaultKind) -> String {
        switch kind {
        case .kill: return "rgb(214,0,0)"
        case .pause: return "rgb(255,127,0)"
        case .steal: return "rgb(214,0,170)"
        case .connkill: return "rgb(0,0,0)"
        case .restart: return "rgb(106,27,154)"
        case .join: return "rgb(255,215,0)"
        case .leave: return "rgb(0,0,128)"
        case .joinkill: return "rgb(240,0,110)"
        case .failover: return "rgb(255,105,255)"
        case .reshard: return "rgb(30,0,255)"
        }
    }

    /// A stable colour per channel: FNV-1a of the name picks one of twelve well-separated colours.
    static func color(for channel: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in channel.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return palette[Int(hash % UInt32(palette.count))]
    }

    /// Blues, greens, teals and browns: no red, orange, magenta, pink, purple, gold, navy or black, which faults use.
    static let palette = [
        "rgb(31,119,180)", "rgb(44,160,44)", "rgb(23,190,207)", "rgb(140,86,75)", "rgb(150,190,60)", "rgb(99,121,57)",
        "rgb(0,128,128)", "rgb(107,174,214)", "rgb(116,196,118)", "rgb(158,218,229)", "rgb(196,156,148)", "rgb(82,150,120)",
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
