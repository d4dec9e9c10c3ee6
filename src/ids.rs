//! Identifiers and random secrets: MediaHub-style 24-hex ids, tokens, keys.

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    // Failure of the OS random source is not recoverable; refusing to run is the only safe answer.
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// 24 lowercase hex characters: 4 bytes of big-endian Unix seconds, then 8 random bytes.
pub fn new_id(now_secs: i64) -> String {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&(now_secs as u32).to_be_bytes());
    random_bytes(&mut b[4..]);
    hex(&b)
}

/// True when `s` has the shape of an id (24 lowercase hex characters).
pub fn is_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_starts_with_the_big_endian_seconds_and_is_24_hex() {
        let id = new_id(0x54820cec);
        assert!(is_id(&id));
        assert_eq!(&id[..8], "54820cec");
        assert_ne!(new_id(1), new_id(1));
    }

    #[test]
    fn hex_round_trips_and_rejects_uppercase() {
        assert_eq!(unhex(&hex(&[0, 255, 16])).unwrap(), vec![0, 255, 16]);
        assert!(unhex("AB").is_none());
        assert!(unhex("abc").is_none());
    }
}
