//! The display name of an archive entry: a relative, `/`-separated path that is safe to
//! show, to put in a link and in a `Content-Disposition`, or `None` when the entry is
//! left out. Names are never used as filesystem paths; cleaning is about showing the
//! same thing that extracting tools would create, and never anything surprising.
//!
//! Rules (as GNU tar and Info-ZIP unzip do where they agree):
//! - `\` is a separator (archives written on Windows);
//! - a drive letter (`C:`) and leading `/` are dropped (`/etc/passwd` → `etc/passwd`,
//!   `/C:/x` → `x`), so that cleaning a clean name never changes it;
//! - empty and `.` components are dropped (`a//./b` → `a/b`);
//! - a `..` component leaves the entry out (zip slip: there is no honest place for it);
//! - NUL, control characters (C0, DEL, C1) and bidirectional overrides leave the entry
//!   out (they spoof or break names on terminals and in browsers);
//! - a name that is empty after cleaning, or longer than [`MAX_NAME_BYTES`], is left out.

/// Longest display name, in UTF-8 bytes (as long as a link may carry).
pub const MAX_NAME_BYTES: usize = crate::links::MAX_ITEM_BYTES;

/// See the module documentation.
pub fn clean(raw: &str) -> Option<String> {
    if raw.chars().any(refused_char) {
        return None;
    }
    let unified = raw.replace('\\', "/");
    let mut parts = Vec::new();
    for c in unified.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    // Drive letters go from the first component that is kept, however it was reached
    // (`/C:/x`, `./c:x`, `c:c:x`): dropping them only at the very start left names such
    // as `a:` (from `/a:`) that cleaning again would change.
    while let Some(first) = parts.first_mut() {
        let b = first.as_bytes();
        if !(b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') {
            break;
        }
        match &first[2..] {
            "" | "." => {
                parts.remove(0);
            }
            ".." => return None,
            rest => *first = rest,
        }
    }
    let name = parts.join("/");
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return None;
    }
    Some(name)
}

fn refused_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn safe_names_are_kept_as_they_are() {
        for n in [
            "a.txt",
            "dir/sub/file.bin",
            "é t/日本.txt",
            "a..b",
            "...",
            ".hidden",
        ] {
            assert_eq!(clean(n).as_deref(), Some(n));
        }
    }

    #[test]
    fn unsafe_names_are_cleaned_or_left_out() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/etc/passwd", Some("etc/passwd")),
            ("//server/share/x", Some("server/share/x")),
            ("C:\\Windows\\evil.dll", Some("Windows/evil.dll")),
            ("c:evil", Some("evil")),
            ("dir\\file.txt", Some("dir/file.txt")),
            ("a//./b/", Some("a/b")),
            ("../../etc/passwd", None),
            ("a/../../b", None),
            ("..\\..\\x", None),
            ("a\0b", None),
            ("bell\x07", None),
            ("esc\x1b[31m", None),
            ("del\x7f", None),
            ("c1\u{85}", None),
            ("rlo\u{202E}txt.exe", None),
            ("", None),
            ("/", None),
            ("./.", None),
            // Drive letters after a leading separator or a `.` (found by tests/properties.rs:
            // `/a:` became `a:`, which cleaning again turned into nothing).
            ("/a:", None),
            ("/C:/x", Some("x")),
            ("./c:x", Some("x")),
            ("c:c:x", Some("x")),
            ("c:..", None),
            ("c:./x", Some("x")),
            ("a/b:/c", Some("a/b:/c")),
        ];
        for (raw, want) in cases {
            assert_eq!(clean(raw).as_deref(), *want, "{raw:?}");
        }
        assert_eq!(clean(&"a".repeat(1024)).map(|s| s.len()), Some(1024));
        assert_eq!(clean(&"a".repeat(1025)), None);
    }
}
