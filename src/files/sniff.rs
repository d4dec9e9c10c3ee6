//! The media type of an upload: from its name, and from its first bytes when the name
//! says nothing useful. The client's Content-Type is never trusted alone.

/// How many leading bytes [`sniff`] looks at.
pub const HEAD_LEN: usize = 512;

/// `mime_guess` from the name; the sniffed type wins when the name gives nothing or
/// `application/octet-stream`. Falls back to `application/octet-stream`.
pub fn mime_type(name: &str, head: &[u8]) -> String {
    let by_name = mime_guess::from_path(name)
        .first_raw()
        .filter(|m| *m != "application/octet-stream");
    by_name
        .or_else(|| sniff(head))
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// The type announced by well-known magic numbers at the start of `head`.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let h = head;
    let at = |off: usize, magic: &[u8]| h.len() >= off + magic.len() && &h[off..off + magic.len()] == magic;
    if at(4, b"ftyp") {
        let brand = h.get(8..12).unwrap_or(b"");
        return Some(match brand {
            b"qt  " => "video/quicktime",
            b"M4A " | b"M4B " => "audio/mp4",
            b"heic" | b"heix" | b"mif1" => "image/heic",
            b"avif" => "image/avif",
            b"3gp4" | b"3gp5" | b"3gp6" => "video/3gpp",
            _ => "video/mp4",
        });
    }
    if at(0, &[0x1a, 0x45, 0xdf, 0xa3]) {
        let webm = h.windows(4).take(64).any(|w| w == b"webm");
        return Some(if webm { "video/webm" } else { "video/x-matroska" });
    }
    if at(0, b"%PDF-") {
        return Some("application/pdf");
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if at(0, &[0xff, 0xd8, 0xff]) {
        return Some("image/jpeg");
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Some("image/gif");
    }
    if at(0, b"RIFF") {
        return match h.get(8..12) {
            Some(b"WAVE") => Some("audio/wav"),
            Some(b"WEBP") => Some("image/webp"),
            Some(b"AVI ") => Some("video/x-msvideo"),
            _ => None,
        };
    }
    if at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06") {
        return Some("application/zip");
    }
    if at(0, &[0x1f, 0x8b]) {
        return Some("application/gzip");
    }
    if at(257, b"ustar") {
        return Some("application/x-tar");
    }
    if at(0, b"ID3") || (h.len() >= 2 && h[0] == 0xff && (h[1] & 0xe6) == 0xe2) {
        return Some("audio/mpeg");
    }
    if at(0, b"OggS") {
        return Some("audio/ogg");
    }
    if at(0, b"fLaC") {
        return Some("audio/flac");
    }
    if at(0, b"7z\xbc\xaf\x27\x1c") {
        return Some("application/x-7z-compressed");
    }
    if at(0, b"BM") && h.len() >= 14 {
        return Some("image/bmp");
    }
    if h.len() >= 189 && h[0] == 0x47 && h[188] == 0x47 {
        return Some("video/mp2t");
    }
    if !h.is_empty() && !h.contains(&0) && looks_like_utf8(h) {
        return Some("text/plain");
    }
    None
}

/// Valid UTF-8, allowing a character cut at the end of the sample.
fn looks_like_utf8(h: &[u8]) -> bool {
    match std::str::from_utf8(h) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && h.len() - e.valid_up_to() < 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_of_common_types() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0");
        assert_eq!(sniff(&mp4), Some("video/mp4"));
        let mut mov = vec![0, 0, 0, 0x14];
        mov.extend_from_slice(b"ftypqt  ");
        assert_eq!(sniff(&mov), Some("video/quicktime"));
        let mut webm = vec![0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 1];
        webm.extend_from_slice(b"\x42\x82\x84webm");
        assert_eq!(sniff(&webm), Some("video/webm"));
        assert_eq!(
            sniff(&[0x1a, 0x45, 0xdf, 0xa3, 0, 0x42, 0x82, 0x88]),
            Some("video/x-matroska")
        );
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some("image/png"));
        assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a.."), Some("image/gif"));
        assert_eq!(sniff(b"PK\x03\x04...."), Some("application/zip"));
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some("application/gzip"));
        assert_eq!(sniff(b"ID3\x04\0"), Some("audio/mpeg"));
        assert_eq!(sniff(&[0xff, 0xfb, 0x90, 0x64]), Some("audio/mpeg"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Some("audio/wav"));
        assert_eq!(sniff(b"OggS\0\x02"), Some("audio/ogg"));
        assert_eq!(sniff(b"hello, world\n"), Some("text/plain"));
        assert_eq!(sniff(&[0, 1, 2, 3]), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn the_name_wins_unless_it_says_nothing() {
        assert_eq!(mime_type("movie.mp4", b"\0\0\0\0junk"), "video/mp4");
        assert_eq!(mime_type("report.pdf", b"hello"), "application/pdf");
        assert_eq!(mime_type("noext", b"%PDF-1.4"), "application/pdf");
        assert_eq!(mime_type("blob.bin", b"\x89PNG\r\n\x1a\n"), "image/png");
        assert_eq!(mime_type("noext", &[0, 0, 0]), "application/octet-stream");
    }
}
