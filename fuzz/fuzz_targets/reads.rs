//! Cutting one stream into reads: the targets whose parsers take a stream
//! feed it whole and in these pieces, and check they give the same.

/// What `run` makes of `stream` read whole, checked to be the same when
/// the stream comes in the reads [`cut`] makes with `pattern` (`what`
/// names it in the failure).
pub fn same_however_cut<T: PartialEq + std::fmt::Debug>(
    stream: &[u8],
    pattern: u8,
    what: &str,
    run: impl Fn(&[&[u8]]) -> T,
) -> T {
    let whole = run(&[stream]);
    assert_eq!(
        run(&cut(stream, pattern)),
        whole,
        "{what} depend on how reads were cut"
    );
    whole
}

/// `stream` in reads of 1 to 8 bytes, the sizes taken from `pattern`.
fn cut(stream: &[u8], pattern: u8) -> Vec<&[u8]> {
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
