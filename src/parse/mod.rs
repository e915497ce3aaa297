//! Parsers: bytes from the outside world into [`crate::record::Record`]s.
//! Each one is pure (no I/O), so it can be unit-tested and fuzzed alone.

pub mod frames;
pub mod kmsg;
pub mod lines;
pub mod multiline;
pub mod syslog;

use std::borrow::Cow;

/// Bytes as UTF-8 text, with every byte that is not valid UTF-8 written as
/// `\xNN` so that nothing the sender sent is silently replaced.
pub fn escape_invalid_utf8(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// Text pieces as the splitters' tests expect them: each whole, not cut.
#[cfg(test)]
fn uncut(pieces: &[&str]) -> Vec<(String, bool)> {
    pieces.iter().map(|p| (p.to_string(), false)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bytes_are_escaped_not_replaced() {
        assert_eq!(escape_invalid_utf8(b"ok"), "ok");
        assert_eq!(escape_invalid_utf8(b"a\xffb\xc3"), "a\\xffb\\xc3");
        assert_eq!(escape_invalid_utf8("é".as_bytes()), "é");
    }
}
