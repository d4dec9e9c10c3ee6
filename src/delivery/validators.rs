//! Validators of a served file — strong ETag, Last-Modified as an HTTP-date — and the
//! conditional request headers that use them (RFC 9110 §8.8, §13). Pure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::HttpDate;
use sha2::{Digest, Sha256};

/// A strong ETag for a stored file: the first 128 bits of its SHA-256 and its size,
/// `"<32 hex>-<size in hex>"`. Strong because equal tags mean equal bytes (the
/// SHA-256 covers them). `variant` tells apart copies served from the same file with
/// different bytes — an AutoGraph-tagged copy passes its tag — and adds the first 64
/// bits of the variant's SHA-256.
pub fn strong_etag(sha256_hex: &str, size: u64, variant: Option<&str>) -> String {
    // Only hex digits reach the header, whatever the catalog holds.
    let prefix: String = sha256_hex
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(32)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match variant {
        None => format!("\"{prefix}-{size:x}\""),
        Some(v) => {
            let h = Sha256::digest(v.as_bytes());
            format!("\"{prefix}-{size:x}-{}\"", crate::ids::hex(&h[..8]))
        }
    }
}

/// Last-Modified in whole seconds (HTTP-dates have no finer resolution) from the
/// catalog's milliseconds; every comparison below works on these seconds.
pub fn last_modified_secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`. Times before 1970 print as 1970.
pub fn http_date(unix_secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_secs).unwrap_or(0));
    HttpDate::from(t).to_string()
}

/// Seconds since the epoch of an HTTP-date in any of the three formats RFC 9110
/// §5.6.7 makes recipients accept; None if it is not one.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let t: SystemTime = s.trim().parse::<HttpDate>().ok()?.into();
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// The outcome of the preconditions of a GET or HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on (then evaluate `Range` / `If-Range`).
    Proceed,
    /// 304 Not Modified (with ETag, Last-Modified, Cache-Control; no body).
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// The conditional headers of a request, as received (None when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditionals<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

/// RFC 9110 §13.2.2 for GET/HEAD: If-Match, else If-Unmodified-Since (412); then
/// If-None-Match, else If-Modified-Since (304). A header whose value does not parse
/// is ignored, as if absent.
pub fn evaluate(c: &Conditionals, etag: &str, last_modified_secs: i64) -> Precondition {
    if let Some(list) = c.if_match.and_then(parse_etag_list) {
        if !list.matches(etag, true) {
            return Precondition::Failed;
        }
    } else if let Some(date) = c.if_unmodified_since.and_then(parse_http_date) {
        if last_modified_secs > date {
            return Precondition::Failed;
        }
    }
    if let Some(list) = c.if_none_match.and_then(parse_etag_list) {
        if list.matches(etag, false) {
            return Precondition::NotModified;
        }
    } else if let Some(date) = c.if_modified_since.and_then(parse_http_date) {
        if last_modified_secs <= date {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// `*` or `1#entity-tag`, as (weak, opaque-tag-with-quotes) pairs.
#[derive(Debug, PartialEq, Eq)]
enum EtagList<'a> {
    Any,
    Tags(Vec<(bool, &'a str)>),
}

impl EtagList<'_> {
    /// Strong comparison: both tags strong and identical; weak: identical opaque tags.
    fn matches(&self, etag: &str, strong: bool) -> bool {
        let (ours_weak, ours) = match etag.strip_prefix("W/") {
            Some(t) => (true, t),
            None => (false, etag),
        };
        match self {
            EtagList::Any => true,
            EtagList::Tags(tags) => tags
                .iter()
                .any(|&(weak, t)| t == ours && !(strong && (weak || ours_weak))),
        }
    }
}

fn parse_etag_list(v: &str) -> Option<EtagList<'_>> {
    let v = v.trim_matches([' ', '\t']);
    if v == "*" {
        return Some(EtagList::Any);
    }
    let mut tags = Vec::new();
    let mut rest = v;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, r) = match rest.strip_prefix("W/") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        // Opaque tag: DQUOTE *etagc DQUOTE, where etagc may even be a comma.
        let inner = r.strip_prefix('"')?;
        let close = inner.find('"')?;
        let opaque = &r[..close + 2];
        if opaque.bytes().any(|b| b < 0x21 || b == 0x7f) {
            return None;
        }
        tags.push((weak, opaque));
        rest = &r[close + 2..];
        let after = rest.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return None;
        }
        if tags.len() > 64 {
            return None;
        }
    }
    if tags.is_empty() {
        None
    } else {
        Some(EtagList::Tags(tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn etag_is_the_sha256_prefix_and_size_and_strong() {
        let e = strong_etag(SHA, 1_048_576, None);
        assert_eq!(e, "\"9f86d081884c7d659a2feaa0c55ad015-100000\"");
        assert_ne!(e, strong_etag(SHA, 1_048_575, None));
        let t1 = strong_etag(SHA, 10, Some("alice"));
        let t2 = strong_etag(SHA, 10, Some("bob"));
        assert_ne!(t1, t2);
        assert!(t1.starts_with("\"9f86d081884c7d659a2feaa0c55ad015-a-") && t1.len() == 2 + 32 + 2 + 1 + 16);
        // Whatever the catalog holds, the value is a valid entity-tag.
        let odd = strong_etag("ZZ\"\r\nAB", 1, None);
        assert_eq!(odd, "\"ab-1\"");
    }

    #[test]
    fn http_dates_format_and_parse() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(last_modified_secs(1_767_225_600_999), 1_767_225_600);
        assert_eq!(last_modified_secs(-1), -1);
    }

    const E: &str = "\"abc-10\"";
    const LM: i64 = 784_111_777;
    const LM_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const EARLIER: &str = "Sun, 06 Nov 1994 08:49:36 GMT";

    fn eval(c: Conditionals) -> Precondition {
        evaluate(&c, E, LM)
    }

    #[test]
    fn if_none_match_gives_304_on_weak_match_or_star() {
        use Precondition::*;
        let inm = |v| {
            eval(Conditionals {
                if_none_match: Some(v),
                ..Default::default()
            })
        };
        assert_eq!(inm(E), NotModified);
        assert_eq!(inm("W/\"abc-10\""), NotModified, "weak comparison");
        assert_eq!(inm("\"x\", \"abc-10\""), NotModified);
        assert_eq!(inm("*"), NotModified);
        assert_eq!(inm("\"x\""), Proceed);
        assert_eq!(inm("\"a,b\", \"abc-10\""), NotModified, "comma inside a tag");
        assert_eq!(inm("abc-10"), Proceed, "unquoted: invalid, ignored");
        // If-None-Match present: If-Modified-Since is not looked at.
        let c = Conditionals {
            if_none_match: Some("\"x\""),
            if_modified_since: Some(LM_DATE),
            ..Default::default()
        };
        assert_eq!(eval(c), Proceed);
    }

    #[test]
    fn if_modified_since_compares_seconds() {
        use Precondition::*;
        let ims = |v| {
            eval(Conditionals {
                if_modified_since: Some(v),
                ..Default::default()
            })
        };
        assert_eq!(ims(LM_DATE), NotModified);
        assert_eq!(ims("Sun, 06 Nov 1994 08:49:38 GMT"), NotModified);
        assert_eq!(ims(EARLIER), Proceed);
        assert_eq!(ims("not a date"), Proceed);
    }

    #[test]
    fn if_match_and_if_unmodified_since_give_412() {
        use Precondition::*;
        let im = |v| {
            eval(Conditionals {
                if_match: Some(v),
                ..Default::default()
            })
        };
        assert_eq!(im(E), Proceed);
        assert_eq!(im("*"), Proceed);
        assert_eq!(im("\"nope\""), Failed);
        assert_eq!(im("W/\"abc-10\""), Failed, "strong comparison");
        let ius = |v| {
            eval(Conditionals {
                if_unmodified_since: Some(v),
                ..Default::default()
            })
        };
        assert_eq!(ius(LM_DATE), Proceed);
        assert_eq!(ius(EARLIER), Failed);
        // If-Match present: If-Unmodified-Since is not looked at.
        let c = Conditionals {
            if_match: Some(E),
            if_unmodified_since: Some(EARLIER),
            ..Default::default()
        };
        assert_eq!(eval(c), Proceed);
        // 412 wins over 304.
        let c = Conditionals {
            if_match: Some("\"nope\""),
            if_none_match: Some(E),
            ..Default::default()
        };
        assert_eq!(eval(c), Failed);
    }

    #[test]
    fn etag_lists_parse_strictly() {
        assert_eq!(parse_etag_list("*"), Some(EtagList::Any));
        assert_eq!(
            parse_etag_list(" \"a\" ,W/\"b\",, \"\" "),
            Some(EtagList::Tags(vec![
                (false, "\"a\""),
                (true, "\"b\""),
                (false, "\"\"")
            ]))
        );
        for bad in [
            "",
            "a",
            "\"a",
            "\"a\"b",
            "W/a",
            "\"a b\"",
            "\"a\" \"b\"",
            "*, \"a\"",
        ] {
            assert_eq!(parse_etag_list(bad), None, "{bad:?}");
        }
    }
}
