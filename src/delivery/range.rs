//! `Range` / `If-Range` (RFC 9110 §14) and `multipart/byteranges` framing. Pure.
//!
//! Decisions, all permitted by RFC 9110 §14.2:
//! - An invalid `Range` (bad syntax, unknown unit, `last < first`) is ignored: 200 with
//!   the whole representation.
//! - More than [`MAX_RANGES`] range-specs: ignored as well (200), as nginx does beyond
//!   `max_ranges`; a client asking for that many pieces is broken or hostile, and the
//!   whole file is what a plain GET would get anyway.
//! - Range-specs that are not satisfiable are dropped; if none is left → 416 with
//!   `Content-Range: bytes */LEN` ([`unsatisfied_content_range`]).
//! - If any two satisfiable ranges overlap or touch, all of them are sorted and
//!   coalesced (so no byte is sent twice and a multipart answer is never larger than
//!   the file); otherwise they are served in the order asked.
//! - One range left → a plain 206 with `Content-Range`; several → 206
//!   `multipart/byteranges` ([`MultipartBody`]).
//! - A zero-length representation is always served whole (200): no byte range of it
//!   exists to send.

use super::validators;

/// Most range-specs honoured in one `Range` header.
pub const MAX_RANGES: usize = 16;
/// Most list elements (including empty ones, which RFC 9110 §5.6.1 says to skip) read
/// before the header is judged abusive and ignored.
const MAX_ELEMENTS: usize = 64;

/// Bytes `start..=end` of the representation (both inclusive, as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never empty: a range always holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for this range of a `total`-byte representation.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, total)
    }
}

/// The `Content-Range` value of a 416 answer.
pub fn unsatisfied_content_range(total: u64) -> String {
    format!("bytes */{total}")
}

/// What to send for a GET given its `Range` header. (A HEAD answers with the header
/// fields the same GET would get.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
    /// 200, the whole representation (no `Range`, or one to ignore).
    Full,
    /// 206 with `Content-Range`.
    Partial(ByteRange),
    /// 206 `multipart/byteranges`, parts in this order (2..=MAX_RANGES of them).
    Multipart(Vec<ByteRange>),
    /// 416 with `Content-Range: bytes */total`.
    Unsatisfiable,
}

/// Evaluates `Range` together with `If-Range` (RFC 9110 §13.1.5, §14.2): `If-Range`
/// without `Range` is ignored; a `Range` whose `If-Range` does not hold is ignored.
pub fn evaluate(
    range: Option<&str>,
    if_range: Option<&str>,
    total: u64,
    etag: &str,
    last_modified_secs: i64,
) -> RangeAnswer {
    let Some(range) = range else {
        return RangeAnswer::Full;
    };
    if let Some(cond) = if_range {
        if !if_range_holds(cond, etag, last_modified_secs) {
            return RangeAnswer::Full;
        }
    }
    parse(range, total)
}

/// True when the `If-Range` validator matches the current representation: a strong
/// entity-tag equal to `etag` (strong comparison; a weak tag never matches), or an
/// HTTP-date exactly equal to Last-Modified. Anything else, unparsable included, is
/// false (→ send the whole representation, which is always safe).
pub fn if_range_holds(if_range: &str, etag: &str, last_modified_secs: i64) -> bool {
    let v = if_range.trim_matches([' ', '\t']);
    if v.starts_with('"') || v.starts_with("W/") {
        // A weak tag starts with `W/`, not a quote, so it never gets past this.
        return v.len() >= 2 && v.starts_with('"') && v.ends_with('"') && v == etag;
    }
    validators::parse_http_date(v) == Some(last_modified_secs)
}

/// Parses a `Range` value against a `total`-byte representation (see the module docs).
pub fn parse(value: &str, total: u64) -> RangeAnswer {
    let Some(specs) = parse_specs(value) else {
        return RangeAnswer::Full;
    };
    if total == 0 {
        return RangeAnswer::Full;
    }
    let mut ranges: Vec<ByteRange> = specs
        .into_iter()
        .filter_map(|s| match s {
            Spec::From(first, last) if first < total => Some(ByteRange {
                start: first,
                end: last.map_or(total - 1, |l| l.min(total - 1)),
            }),
            Spec::Suffix(n) if n > 0 => Some(ByteRange {
                start: total.saturating_sub(n),
                end: total - 1,
            }),
            _ => None,
        })
        .collect();
    match ranges.len() {
        0 => return RangeAnswer::Unsatisfiable,
        1 => return RangeAnswer::Partial(ranges[0]),
        _ => {}
    }
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| r.start);
    let touching = sorted
        .windows(2)
        .any(|w| w[1].start <= w[0].end.saturating_add(1));
    if touching {
        ranges = coalesce(sorted);
    }
    if ranges.len() == 1 {
        RangeAnswer::Partial(ranges[0])
    } else {
        RangeAnswer::Multipart(ranges)
    }
}

fn coalesce(sorted: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut out: Vec<ByteRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last`.
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// `bytes=` 1#range-spec; None when the header is to be ignored.
fn parse_specs(value: &str) -> Option<Vec<Spec>> {
    let value = value.trim_matches([' ', '\t']);
    let (unit, set) = value.split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for (i, element) in set.split(',').enumerate() {
        if i >= MAX_ELEMENTS {
            return None;
        }
        let element = element.trim_matches([' ', '\t']);
        if element.is_empty() {
            continue;
        }
        if specs.len() == MAX_RANGES {
            return None;
        }
        let (first, last) = element.split_once('-')?;
        let spec = if first.is_empty() {
            Spec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            let last = if last.is_empty() {
                None
            } else {
                Some(digits(last)?)
            };
            if last.is_some_and(|l| l < first) {
                return None;
            }
            Spec::From(first, last)
        };
        specs.push(spec);
    }
    if specs.is_empty() {
        None
    } else {
        Some(specs)
    }
}

/// 1*DIGIT, saturating: a position past u64 is past any file, which is what it means.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// The framing of a `multipart/byteranges` body, computed up front so that the
/// answer can carry `Content-Length`. The body is, for each part in order,
/// `part_head(i)` then the bytes of the range, and finally [`MultipartBody::tail`]:
///
/// ```text
/// --BOUNDARY CRLF Content-Type: T CRLF Content-Range: bytes a-b/N CRLF CRLF <bytes>
/// CRLF --BOUNDARY CRLF … CRLF CRLF <bytes>
/// CRLF --BOUNDARY-- CRLF
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartBody {
    boundary: String,
    parts: Vec<(String, ByteRange)>,
    tail: String,
    content_length: u64,
}

impl MultipartBody {
    /// Framing for `ranges` of a `total`-byte representation of type `content_type`.
    /// `boundary` must not occur in the content: make it from random bytes with
    /// [`boundary_from`].
    pub fn new(ranges: &[ByteRange], content_type: &str, total: u64, boundary: &str) -> MultipartBody {
        // The type comes from the catalog; never let it break the framing.
        let ct = if content_type.is_empty() || content_type.bytes().any(|b| b.is_ascii_control()) {
            "application/octet-stream"
        } else {
            content_type
        };
        let mut content_length = 0u64;
        let parts: Vec<(String, ByteRange)> = ranges
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let head = format!(
                    "{}--{boundary}\r\nContent-Type: {ct}\r\nContent-Range: {}\r\n\r\n",
                    if i == 0 { "" } else { "\r\n" },
                    r.content_range(total)
                );
                content_length += head.len() as u64 + r.len();
                (head, *r)
            })
            .collect();
        let tail = format!("\r\n--{boundary}--\r\n");
        content_length += tail.len() as u64;
        MultipartBody {
            boundary: boundary.to_string(),
            parts,
            tail,
            content_length,
        }
    }

    /// The answer's `Content-Type`.
    pub fn content_type(&self) -> String {
        format!("multipart/byteranges; boundary={}", self.boundary)
    }

    /// The exact length of the whole body.
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// Each part's header block (to send before its bytes) and range.
    pub fn parts(&self) -> impl Iterator<Item = (&str, ByteRange)> {
        self.parts.iter().map(|(h, r)| (h.as_str(), *r))
    }

    /// What follows the last part's bytes.
    pub fn tail(&self) -> &str {
        &self.tail
    }
}

/// A boundary from 16 random bytes: 32 hex characters (RFC 2046 allows up to 70).
pub fn boundary_from(random: &[u8; 16]) -> String {
    format!("filegate-{}", crate::ids::hex(random))
}

#[cfg(test)]
mod tests {
    use super::RangeAnswer::*;
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse("bytes=0-0", 100), Partial(r(0, 0)));
        assert_eq!(parse("bytes=0-99", 100), Partial(r(0, 99)));
        assert_eq!(parse("bytes=10-19", 100), Partial(r(10, 19)));
        assert_eq!(parse("bytes=90-500", 100), Partial(r(90, 99)), "last clamped");
        assert_eq!(
            parse("bytes=0-99999999999999999999999", 100),
            Partial(r(0, 99)),
            "huge last saturates then clamps"
        );
        assert_eq!(r(10, 19).len(), 10);
        assert_eq!(r(10, 19).content_range(100), "bytes 10-19/100");
    }

    #[test]
    fn suffix_and_open_ended_ranges() {
        assert_eq!(parse("bytes=-10", 100), Partial(r(90, 99)));
        assert_eq!(parse("bytes=-100", 100), Partial(r(0, 99)));
        assert_eq!(
            parse("bytes=-5000", 100),
            Partial(r(0, 99)),
            "longer suffix = whole"
        );
        assert_eq!(parse("bytes=50-", 100), Partial(r(50, 99)));
        assert_eq!(parse("bytes=99-", 100), Partial(r(99, 99)));
        assert_eq!(parse("bytes=0-", 100), Partial(r(0, 99)));
    }

    #[test]
    fn unsatisfiable_ranges_give_416() {
        assert_eq!(parse("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse("bytes=100-100, 200-", 100), Unsatisfiable);
        assert_eq!(parse("bytes=99999999999999999999999-", 100), Unsatisfiable);
        assert_eq!(unsatisfied_content_range(100), "bytes */100");
        // Unsatisfiable specs next to satisfiable ones are dropped.
        assert_eq!(parse("bytes=500-600,0-1", 100), Partial(r(0, 1)));
        assert_eq!(parse("bytes=-0,5-9", 100), Partial(r(5, 9)));
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-a",
            "bytes=--5",
            "bytes=5--",
            "bytes=5",
            "bytes=+5-6",
            "bytes=5-6-7",
            "bytes=10-5",
            "bytes=0x10-20",
            "bytes = 0-5",
            "bytes= 0 -5",
            "bytes=0- 5",
            "items=0-5",
            "0-5",
            "bytes=0-5;x",
            "bytes=1-2,3-x",
            "bytes=1-2,5-3",
            "bytes=٣-٤",
        ] {
            assert_eq!(parse(bad, 100), Full, "{bad:?}");
        }
    }

    #[test]
    fn whitespace_case_and_empty_elements_follow_the_list_rules() {
        assert_eq!(parse("  bytes=0-1\t", 100), Partial(r(0, 1)));
        assert_eq!(
            parse("BYTES=0-1", 100),
            Partial(r(0, 1)),
            "units are case-insensitive"
        );
        assert_eq!(parse("Bytes=0-1", 100), Partial(r(0, 1)));
        assert_eq!(
            parse("bytes=0-1 , 5-6,\t9-9", 100),
            Multipart(vec![r(0, 1), r(5, 6), r(9, 9)])
        );
        assert_eq!(
            parse("bytes=,0-1,,  ,5-6,", 100),
            Multipart(vec![r(0, 1), r(5, 6)])
        );
    }

    #[test]
    fn multiple_ranges_keep_their_order_unless_they_overlap() {
        assert_eq!(parse("bytes=50-59,0-9", 100), Multipart(vec![r(50, 59), r(0, 9)]));
        assert_eq!(parse("bytes=0-9,-10", 100), Multipart(vec![r(0, 9), r(90, 99)]));
        // Overlapping → sorted and merged.
        assert_eq!(
            parse("bytes=50-59,0-9,55-70", 100),
            Multipart(vec![r(0, 9), r(50, 70)])
        );
        // Adjacent → merged too.
        assert_eq!(parse("bytes=0-9,10-19", 100), Partial(r(0, 19)));
        // The classic abuse: the whole file many times over collapses to one range.
        assert_eq!(parse("bytes=0-,0-,0-,0-,1-,2-", 100), Partial(r(0, 99)));
        assert_eq!(parse("bytes=-50,0-", 100), Partial(r(0, 99)));
    }

    #[test]
    fn too_many_ranges_are_ignored() {
        let ok: Vec<String> = (0..MAX_RANGES).map(|i| format!("{}-{}", i * 2, i * 2)).collect();
        match parse(&format!("bytes={}", ok.join(",")), 1000) {
            Multipart(v) => assert_eq!(v.len(), MAX_RANGES),
            other => panic!("{other:?}"),
        }
        let too: Vec<String> = (0..=MAX_RANGES).map(|i| format!("{}-{}", i * 2, i * 2)).collect();
        assert_eq!(parse(&format!("bytes={}", too.join(",")), 1000), Full);
        // Empty elements do not count as ranges, but there is a bound on them too.
        assert_eq!(
            parse(&format!("bytes=0-1{}", ",".repeat(10)), 100),
            Partial(r(0, 1))
        );
        assert_eq!(
            parse(&format!("bytes=0-1{}", ",".repeat(MAX_ELEMENTS)), 100),
            Full
        );
    }

    #[test]
    fn empty_files_are_served_whole() {
        assert_eq!(parse("bytes=0-0", 0), Full);
        assert_eq!(parse("bytes=-5", 0), Full);
    }

    const ETAG: &str = "\"0123456789abcdef0123456789abcdef-64\"";
    const LM: i64 = 784_198_117; // Mon, 07 Nov 1994 08:48:37 GMT

    #[test]
    fn if_range_with_a_matching_strong_etag_or_exact_date_keeps_the_range() {
        assert!(if_range_holds(ETAG, ETAG, LM));
        assert!(if_range_holds(
            " \"0123456789abcdef0123456789abcdef-64\" ",
            ETAG,
            LM
        ));
        assert!(if_range_holds("Mon, 07 Nov 1994 08:48:37 GMT", ETAG, LM));
        assert!(!if_range_holds("Mon, 07 Nov 1994 08:48:38 GMT", ETAG, LM));
        assert!(!if_range_holds("Mon, 07 Nov 1994 08:48:36 GMT", ETAG, LM));
        assert!(!if_range_holds("\"other\"", ETAG, LM));
        assert!(
            !if_range_holds(&format!("W/{ETAG}"), ETAG, LM),
            "weak never matches"
        );
        assert!(!if_range_holds("garbage", ETAG, LM));
        assert!(!if_range_holds("\"", ETAG, LM));
        assert!(!if_range_holds("", ETAG, LM));
    }

    #[test]
    fn evaluate_applies_if_range_only_with_range() {
        assert_eq!(evaluate(None, Some(ETAG), 100, ETAG, LM), Full);
        assert_eq!(evaluate(Some("bytes=0-1"), None, 100, ETAG, LM), Partial(r(0, 1)));
        assert_eq!(
            evaluate(Some("bytes=0-1"), Some(ETAG), 100, ETAG, LM),
            Partial(r(0, 1))
        );
        assert_eq!(evaluate(Some("bytes=0-1"), Some("\"old\""), 100, ETAG, LM), Full);
        assert_eq!(evaluate(Some("bytes=500-"), Some("\"old\""), 100, ETAG, LM), Full);
        assert_eq!(
            evaluate(Some("bytes=500-"), Some(ETAG), 100, ETAG, LM),
            Unsatisfiable
        );
    }

    #[test]
    fn multipart_framing_and_length_are_exact() {
        let data: Vec<u8> = (0..100u8).collect();
        let ranges = [r(0, 2), r(97, 99)];
        let m = MultipartBody::new(&ranges, "video/mp4", 100, "B0UND");
        assert_eq!(m.content_type(), "multipart/byteranges; boundary=B0UND");
        let mut body = Vec::new();
        for (head, range) in m.parts() {
            body.extend_from_slice(head.as_bytes());
            body.extend_from_slice(&data[range.start as usize..=range.end as usize]);
        }
        body.extend_from_slice(m.tail().as_bytes());
        let mut want = b"--B0UND\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-2/100\r\n\r\n".to_vec();
        want.extend([0, 1, 2]);
        want.extend(b"\r\n--B0UND\r\nContent-Type: video/mp4\r\nContent-Range: bytes 97-99/100\r\n\r\n");
        want.extend([97, 98, 99]);
        want.extend(b"\r\n--B0UND--\r\n");
        assert_eq!(body, want);
        assert_eq!(m.content_length(), body.len() as u64);
    }

    #[test]
    fn multipart_content_type_cannot_break_the_framing() {
        let m = MultipartBody::new(&[r(0, 0), r(2, 2)], "text/plain\r\nX-Evil: 1", 3, "b");
        assert!(m
            .parts()
            .all(|(h, _)| h.contains("Content-Type: application/octet-stream\r\n")));
        assert!(!m.parts().any(|(h, _)| h.contains("X-Evil")));
    }

    #[test]
    fn boundaries_are_long_and_token_safe() {
        let b = boundary_from(&[0xab; 16]);
        assert_eq!(b, format!("filegate-{}", "ab".repeat(16)));
        assert!(b.len() <= 70 && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }
}
