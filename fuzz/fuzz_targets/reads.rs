//! Cutting one stream into reads: the targets whose parsers take a stream
//! feed it whole and in these pieces, and check they give the same.

/// `stream` in reads of 1 to 8 bytes, the sizes taken from `pattern`.
pub fn cut(stream: &[u8], pattern: u8) -> Vec<&[u8]> {
    let mut reads = Vec::new();
    let (mut at, mut k) = (0, u32::from(pattern));
    while at < stream.len() {
        let n = ((k & 7) as usize + 1).min(stream.len() - at);
        reads.push(&stream[at..at + n]);
        at += n;
        k = k.rotate_right(3) ^ 0x5a;
    }
    reads
}
