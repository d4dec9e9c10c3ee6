//! How a served file presents itself to a browser: `Content-Disposition` (RFC 6266,
//! RFC 8187) and the rule that keeps script-capable types from rendering on our
//! origin. Pure.
//!
//! A file that a browser could execute (HTML, SVG, XML with XSLT, JavaScript, …) would,
//! if rendered inline, run with this host's origin: it could read other links' answers
//! and the admin console's pages. So for such types [`presentation`] forces
//! `attachment` *and* asks for `Content-Security-Policy: sandbox` (an opaque origin, no
//! scripts) as a second wall for clients that render attachments anyway. Every
//! delivery answer also carries `X-Content-Type-Options: nosniff`, so a type declared
//! harmless is not sniffed into HTML. The sandbox is not applied to every type: it
//! would stop Chromium's PDF viewer and gains nothing for media.

pub use crate::links::Disposition;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The `Content-Security-Policy` value for script-capable answers.
pub const SANDBOX_CSP: &str = "sandbox";
/// The `X-Content-Type-Options` value for every delivery answer.
pub const NOSNIFF: &str = "nosniff";

/// RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~"; everything else is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="…"; filename*=UTF-8''…` (or `inline; …`) for `name`.
/// `filename` is an ASCII stand-in for old clients (see [`ascii_fallback`]);
/// `filename*` carries the real UTF-8 name and wins wherever it is understood.
pub fn content_disposition(disposition: Disposition, name: &str) -> String {
    let name = if name.is_empty() { "download" } else { name };
    format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        disposition.as_str(),
        ascii_fallback(name),
        utf8_percent_encode(name, ATTR_CHAR)
    )
}

/// The name with every character that could end or escape the quoted-string, or that
/// old clients misread, replaced by `_`: anything outside printable ASCII (so CR, LF,
/// other controls and every non-ASCII character, one `_` each), `"`, `\`, and `%`
/// (RFC 6266 §4.3: some clients percent-decode `filename`).
pub fn ascii_fallback(name: &str) -> String {
    let out: String = name
        .chars()
        .map(|c| match c {
            '"' | '\\' | '%' => '_',
            ' '..='~' => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() {
        "download".into()
    } else {
        out
    }
}

/// How a file of this type may be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    pub disposition: Disposition,
    /// Send `Content-Security-Policy: sandbox` ([`SANDBOX_CSP`]).
    pub sandbox: bool,
}

/// What the link asked for, unless the type could run script on our origin: then
/// attachment and sandbox, whatever was asked.
pub fn presentation(requested: Disposition, mime_type: &str) -> Presentation {
    if is_script_capable(mime_type) {
        Presentation {
            disposition: Disposition::Attachment,
            sandbox: true,
        }
    } else {
        Presentation {
            disposition: requested,
            sandbox: false,
        }
    }
}

/// True for media types a browser may execute or render as an active document.
/// Compares the essence (`type/subtype`, parameters dropped, case-insensitive).
/// A missing or malformed type counts as script-capable: the browser would sniff it.
pub fn is_script_capable(mime_type: &str) -> bool {
    let essence = mime_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim_matches([' ', '\t'])
        .to_ascii_lowercase();
    let Some((top, sub)) = essence.split_once('/') else {
        return true;
    };
    if top.is_empty() || sub.is_empty() || sub.contains('/') {
        return true;
    }
    if sub.ends_with("+xml") || sub == "xml" {
        // application/xml, text/xml, image/svg+xml, application/xhtml+xml, …
        return true;
    }
    matches!(
        essence.as_str(),
        "text/html"
            | "text/xsl"
            | "text/javascript"
            | "text/ecmascript"
            | "text/jscript"
            | "text/livescript"
            | "text/x-javascript"
            | "text/x-ecmascript"
            | "text/vbscript"
            | "text/x-component"
            | "text/cache-manifest"
            | "application/javascript"
            | "application/ecmascript"
            | "application/x-javascript"
            | "application/x-ecmascript"
            | "application/x-shockwave-flash"
            | "application/vnd.adobe.flash-movie"
            | "application/hta"
            | "application/x-ms-application"
            | "multipart/x-mixed-replace"
            | "message/rfc822"
            | "application/x-unknown-content-type"
            | "unknown/unknown"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_value_ok(v: &str) {
        // What actix will accept as a header value, and nothing that ends the header.
        assert!(actix_web::http::header::HeaderValue::from_str(v).is_ok(), "{v:?}");
        assert!(!v.contains(['\r', '\n', '\0']), "{v:?}");
        assert!(v.is_ascii(), "{v:?}");
    }

    /// The quoted filename must hold no unescaped `"` or `\`: exactly two quotes.
    fn quoted_is_closed(v: &str) {
        let start = v.find("filename=\"").unwrap() + "filename=\"".len();
        let end = start + v[start..].find('"').unwrap();
        let rest = &v[end + 1..];
        assert!(rest.starts_with("; filename*=UTF-8''"), "{v:?}");
        assert!(!v[start..end].contains('\\'), "{v:?}");
        assert!(!rest.contains('"'), "{v:?}");
    }

    #[test]
    fn plain_names() {
        assert_eq!(
            content_disposition(Disposition::Attachment, "movie.mp4"),
            "attachment; filename=\"movie.mp4\"; filename*=UTF-8''movie.mp4"
        );
        assert_eq!(
            content_disposition(Disposition::Inline, "a b.mp4"),
            "inline; filename=\"a b.mp4\"; filename*=UTF-8''a%20b.mp4"
        );
    }

    #[test]
    fn quotes_backslashes_and_percent_are_replaced() {
        let v = content_disposition(Disposition::Attachment, "say \"hi\" \\o/ 100%.txt");
        assert_eq!(
            v,
            "attachment; filename=\"say _hi_ _o/ 100_.txt\"; \
             filename*=UTF-8''say%20%22hi%22%20%5Co%2F%20100%25.txt"
        );
        header_value_ok(&v);
        quoted_is_closed(&v);
    }

    #[test]
    fn cr_lf_and_controls_never_reach_the_header() {
        let v = content_disposition(Disposition::Attachment, "a\r\nSet-Cookie: x=1\0\t.txt");
        assert_eq!(
            v,
            "attachment; filename=\"a__Set-Cookie: x=1__.txt\"; \
             filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x%3D1%00%09.txt"
        );
        header_value_ok(&v);
        quoted_is_closed(&v);
    }

    #[test]
    fn non_ascii_names_get_a_fallback_and_the_exact_utf8() {
        let v = content_disposition(Disposition::Attachment, "Résumé 日本.pdf");
        assert_eq!(
            v,
            "attachment; filename=\"R_sum_ __.pdf\"; \
             filename*=UTF-8''R%C3%A9sum%C3%A9%20%E6%97%A5%E6%9C%AC.pdf"
        );
        header_value_ok(&v);
        // attr-char punctuation stays as is.
        let v = content_disposition(Disposition::Attachment, "a!#$&+-.^_`|~b");
        assert!(v.ends_with("filename*=UTF-8''a!#$&+-.^_`|~b"), "{v}");
        assert!(
            content_disposition(Disposition::Attachment, "x;y=z'(1)*").ends_with("x%3By%3Dz%27%281%29%2A")
        );
    }

    #[test]
    fn a_300_character_name_is_kept_whole() {
        let name = format!("{}\r\nabc.mkv", "é\"\\\nx".repeat(59));
        assert_eq!(name.chars().count(), 304);
        let v = content_disposition(Disposition::Inline, &name);
        header_value_ok(&v);
        quoted_is_closed(&v);
        let fallback = ascii_fallback(&name);
        assert_eq!(fallback, format!("{}__abc.mkv", "____x".repeat(59)));
        let enc = v.split("filename*=UTF-8''").nth(1).unwrap();
        let back = percent_encoding::percent_decode_str(enc).decode_utf8().unwrap();
        assert_eq!(back, name);
    }

    #[test]
    fn empty_names_become_download() {
        assert_eq!(ascii_fallback(""), "download");
        assert_eq!(
            content_disposition(Disposition::Attachment, ""),
            "attachment; filename=\"download\"; filename*=UTF-8''download"
        );
    }

    #[test]
    fn script_capable_types_are_recognised() {
        for t in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            " text/html ",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "application/xml",
            "application/rss+xml",
            "application/mathml+xml",
            "application/javascript",
            "text/javascript",
            "application/ecmascript",
            "text/xsl",
            "application/x-shockwave-flash",
            "multipart/x-mixed-replace; boundary=x",
            "",
            "html",
            "text/",
            "/html",
            "a/b/c",
        ] {
            assert!(is_script_capable(t), "{t:?}");
        }
        for t in [
            "video/mp4",
            "audio/mpeg",
            "image/png",
            "image/jpeg",
            "application/pdf",
            "application/zip",
            "application/octet-stream",
            "text/plain; charset=utf-8",
            "text/csv",
            "application/json",
            "video/webm",
            "application/x-matroska",
        ] {
            assert!(!is_script_capable(t), "{t:?}");
        }
    }

    #[test]
    fn script_capable_types_are_never_inline() {
        assert_eq!(
            presentation(Disposition::Inline, "text/html"),
            Presentation {
                disposition: Disposition::Attachment,
                sandbox: true
            }
        );
        assert_eq!(
            presentation(Disposition::Attachment, "image/svg+xml"),
            Presentation {
                disposition: Disposition::Attachment,
                sandbox: true
            }
        );
        assert_eq!(
            presentation(Disposition::Inline, "video/mp4"),
            Presentation {
                disposition: Disposition::Inline,
                sandbox: false
            }
        );
        assert_eq!(
            presentation(Disposition::Attachment, "video/mp4").disposition,
            Disposition::Attachment
        );
    }
}
