//! How a node's user-data travels: gzip-compressed, then base64 (what EC2 takes). EC2 limits
//! user-data to 16 KiB before base64; cloud-init unpacks gzip-compressed user-data itself, so a
//! script of ~40 KiB fits. Launch templates an earlier version wrote uncompressed read back the
//! same.

use base64::Engine as _;
use std::io::{Read as _, Write as _};

/// EC2's limit on user-data, in bytes before base64.
pub const LIMIT: usize = 16 * 1024;

/// gzip's first two bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `text` gzip-compressed (best compression; the header has no time or name, so the same text
/// always gives the same bytes).
pub fn compress(text: &str) -> Vec<u8> {
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    gz.write_all(text.as_bytes())
        .and_then(|()| gz.finish())
        .expect("compressing into memory cannot fail")
}

/// What EC2 is sent for `text`: base64 of its gzip.
pub fn encode(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(compress(text))
}

/// The text of user-data as EC2 returns it (base64): gzip-compressed or plain. None when it is
/// not base64, not gzip and not UTF-8 text.
pub fn decode(b64: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    if raw.starts_with(&GZIP_MAGIC) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    } else {
        String::from_utf8(raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_compressed_and_reads_plain_user_data() {
        let script = "#!/bin/bash\nset -euo pipefail\n".repeat(500);
        let sent = encode(&script);
        assert_eq!(decode(&sent).as_deref(), Some(script.as_str()));
        assert!(compress(&script).len() < script.len() / 10);
        assert_eq!(encode(&script), sent, "the same text gives the same bytes");
        let plain = base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\n");
        assert_eq!(decode(&plain).as_deref(), Some("#!/bin/sh\n"));
        assert_eq!(decode("not base64!"), None);
    }
}
