//! `object_key` rules (SPEC §3): catalog data, never a path, but shaped like a relative one.

/// Longest accepted key, in bytes.
pub const MAX_LEN: usize = 1024;

/// Accepts a relative path-like key: 1..=1024 bytes, no leading `/`, no `..` segment,
/// no control characters (NUL included).
pub fn validate(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty");
    }
    if key.len() > MAX_LEN {
        return Err("too_long");
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err("absolute");
    }
    if key.chars().any(char::is_control) {
        return Err("control_character");
    }
    if key.split(['/', '\\']).any(|seg| seg == "..") {
        return Err("dot_dot");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn relative_keys_pass_and_each_rule_refuses_its_case() {
        for ok in ["a", "jobs/123/out.mp4", "élan/ファイル.txt", "a..b/c", "./x"] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(1025);
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("\\x", "absolute"),
            ("a/../b", "dot_dot"),
            ("..", "dot_dot"),
            ("a\\..\\b", "dot_dot"),
            ("a\0b", "control_character"),
            ("a\nb", "control_character"),
            ("a\u{7f}", "control_character"),
            (long.as_str(), "too_long"),
        ] {
            assert_eq!(validate(bad), Err(why), "{bad:?}");
        }
        assert_eq!(validate(&"é".repeat(512)), Ok(()));
        assert_eq!(validate(&"é".repeat(513)), Err("too_long"), "bytes, not chars");
    }
}
