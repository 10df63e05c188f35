/// Redis Cluster's key-to-slot function: CRC16 (XMODEM) of the key, or of its hash tag, mod 16384.
///
/// The hash tag is the part between the first `{` and the first `}` after it, when that part is
/// not empty; `sg:{p3}:lock:channel:a` and `events:{p3}` share a slot.
public enum HashSlot {
    public static let count = 16384

    public static func of(_ key: String) -> Int {
        var copy = key
        return copy.withUTF8 { of(bytes: $0) }
    }

    public static func of<Bytes: Collection>(bytes key: Bytes) -> Int where Bytes.Element == UInt8 {
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let afterOpen = key.index(after: open)
            if let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen {
                return Int(crc16(key[afterOpen..<close]) & 0x3FFF)
            }
        }
        return Int(crc16(key) & 0x3FFF)
    }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
    static func crc16<Bytes: Collection>(_ bytes: Bytes) -> UInt16 where Bytes.Element == UInt8 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { (n: Int) -> UInt16 in
        var crc = UInt16(n) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
