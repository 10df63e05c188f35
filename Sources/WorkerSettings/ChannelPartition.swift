/// Which partition a channel lives in: `crc32(utf8(channel_id)) mod partitions`.
///
/// CRC-32 is the IEEE 802.3 one (zlib's `crc32`, Python's `zlib.crc32`, Go's `crc32.ChecksumIEEE`,
/// Java's `java.util.zip.CRC32`, Node's `zlib.crc32`), so producers in any language compute the same
/// partition without a library of ours. docs/partitions.md has the snippets and fixed test vectors.
public enum ChannelPartition {
    /// The partition of `channel` among `count` partitions (0 when `count` is 1).
    public static func of(_ channel: String, count: Int) -> Int {
        precondition(count >= 1, "partition count must be at least 1")
        if count == 1 { return 0 }
        return Int(crc32(channel.utf8) % UInt32(count))
    }

    /// CRC-32 (IEEE, reflected polynomial 0xEDB88320), as zlib computes it.
    public static func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }

    private static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
}
