//! Backtraces: trace a suspect copy (upload with progress), the past backtraces with
//! paging, and one backtrace (the mark found, its link as issued, its downloads).

use maud::{html, Markup};

use super::{flash, human_bytes, page, pager, Chrome, Pager};

/// What a backtrace concluded, in words: (title, explanation).
pub fn result_words(result: &str) -> (&'static str, &'static str) {
    match result {
        "found" => (
            "Found",
            "This copy carries a mark made by this server: it was served by the tagged link below.",
        ),
        "forged_mark" => (
            "Forged mark",
            "This copy carries marks, but none was made with this server's key (a tag edited, or a mark from another installation). Nothing they claim is taken as fact.",
        ),
        _ => (
            "No mark",
            "Nothing in this copy looks like a mark: it was not served by a tagged link, or its container was rewritten (re-encoded, re-zipped).",
        ),
    }
}

fn result_badge(result: &str) -> Markup {
    let (title, _) = result_words(result);
    html! {
        @if result == "found" { span.ok { (title) } }
        @else if result == "forged_mark" { span.error { (title) } }
        @else { span.muted { (title) } }
    }
}

/// Who asked: an application's client_id, or the console.
fn asked_by(app_id: &str) -> Markup {
    html! {
        @if app_id.is_empty() { span.muted { "console" } } @else { code { (app_id) } }
    }
}

#[derive(Debug, Clone, Default)]
pub struct BacktraceItem {
    pub id: String,
    pub created: String,
    /// `found`, `no_mark` or `forged_mark`.
    pub result: String,
    /// The suspect copy's file name as sent (may be empty).
    pub name: String,
    pub size: u64,
    /// For `found`: the file and tag of the first authentic mark.
    pub file_id: String,
    pub tag: String,
    /// The application that asked; empty for the console.
    pub app_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct BacktracesView {
    pub items: Vec<BacktraceItem>,
    pub pager: Pager,
    /// Filter: a result or empty for all.
    pub result: String,
    pub max_upload_bytes: u64,
    pub error: Option<String>,
}

pub fn backtraces(chrome: &Chrome, v: &BacktracesView) -> Markup {
    page(
        "Backtraces",
        chrome,
        html! {
            h1 { "Backtraces" }
            p.muted { "Upload a copy of a file found where it should not be: if it was served by a tagged (AutoGraph) link, its mark says which link, and the audit trail who downloaded it. The copy is scanned as it arrives and not kept; only its name, size and SHA-256 are." }
            (flash(None, v.error.as_deref()))
            form.card #backtrace-form method="post" action="/admin/backtraces" enctype="multipart/form-data" data-progress {
                h2 { "Trace a suspect copy" }
                input type="hidden" name="csrf" value=(chrome.csrf);
                div.field {
                    label for="backtrace-file" { "Suspect copy (at most " (human_bytes(v.max_upload_bytes)) ")" }
                    input #backtrace-file type="file" name="file" required;
                }
                p { button #backtrace-submit type="submit" { "Trace" } }
                div.upload-progress #backtrace-progress hidden {
                    label for="backtrace-bar" { "Uploading" }
                    progress #backtrace-bar max="100" value="0" {}
                    span.upload-status #backtrace-status aria-live="polite" {}
                }
            }
            h2 { "Past backtraces" }
            form.card.filters #backtrace-filter method="get" action="/admin/backtraces" {
                div.field {
                    label for="bt-result" { "Result" }
                    select #bt-result name="result" {
                        option value="" selected[v.result.is_empty()] { "Any" }
                        @for r in ["found", "no_mark", "forged_mark"] {
                            option value=(r) selected[v.result == r] { (result_words(r).0) }
                        }
                    }
                }
                div.field { button #backtrace-filter-submit type="submit" { "Filter" } }
            }
            div.table-wrap {
                table #backtraces {
                    caption.sr-only { "Past backtraces, newest first" }
                    thead { tr {
                        th scope="col" { "When (UTC)" } th scope="col" { "Result" } th scope="col" { "Suspect copy" }
                        th scope="col" { "File" } th scope="col" { "Tag" } th scope="col" { "Asked by" }
                    } }
                    tbody {
                        @for b in &v.items {
                            tr data-id=(b.id) data-result=(b.result) {
                                td { a href={ "/admin/backtraces/" (b.id) } aria-label={ "Backtrace of " (b.created) } { (b.created) } }
                                td { (result_badge(&b.result)) }
                                td { @if b.name.is_empty() { span.muted { "(no name)" } } @else { (b.name) } br; span.muted { (human_bytes(b.size)) } }
                                td { @if !b.file_id.is_empty() { code { (b.file_id) } } }
                                td { (b.tag) }
                                td { (asked_by(&b.app_id)) }
                            }
                        }
                    }
                }
            }
            (pager(&v.pager))
        },
    )
}

/// A delivery (or refusal) of the traced link, from the audit trail.
#[derive(Debug, Clone, Default)]
pub struct DownloadSeen {
    pub id: i64,
    pub client: String,
    pub first: String,
    pub last: String,
    pub requests: i64,
    pub bytes: u64,
    pub status: u16,
    /// The refusal's reason; `None` for a delivery.
    pub reason: Option<String>,
}

/// The tagged link as it was issued.
#[derive(Debug, Clone, Default)]
pub struct IssuedAs {
    /// The application that asked for it; empty for the console.
    pub app_id: String,
    pub issued: String,
    pub expires: String,
}

/// An authentic mark, traced.
#[derive(Debug, Clone, Default)]
pub struct TracedMark {
    pub mark_id: String,
    pub file_id: String,
    /// The file's name while it exists; `None` once deleted or expired.
    pub file_name: Option<String>,
    pub tag: String,
    /// `None` when the link's row is missing.
    pub link: Option<IssuedAs>,
    pub downloads: Vec<DownloadSeen>,
}

/// A mark whose MAC is not ours: what it claims, shown as a claim.
#[derive(Debug, Clone, Default)]
pub struct ForgedMark {
    pub mark_id: String,
    pub file_id: String,
    pub tag: String,
}

#[derive(Debug, Clone, Default)]
pub struct BacktraceDetail {
    pub id: String,
    pub created: String,
    pub result: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub app_id: String,
    /// Authentic marks, in the order found (the first is the API's answer).
    pub found: Vec<TracedMark>,
    pub forged: Vec<ForgedMark>,
    pub notice: Option<String>,
}

pub fn backtrace(chrome: &Chrome, b: &BacktraceDetail) -> Markup {
    let (title, words) = result_words(&b.result);
    page(
        &format!("Backtrace: {title}"),
        chrome,
        html! {
            p { a href="/admin/backtraces" { "← Backtraces" } }
            h1 { "Backtrace" }
            (flash(b.notice.as_deref(), None))
            section.card #backtrace-result data-result=(b.result) aria-labelledby="result-title" {
                h2 #result-title { (result_badge(&b.result)) }
                p { (words) }
            }
            div.table-wrap {
                table.answer #suspect {
                    caption.sr-only { "The suspect copy" }
                    tr { th scope="row" { "suspect copy" } td { @if b.name.is_empty() { span.muted { "(no name)" } } @else { (b.name) } } }
                    tr { th scope="row" { "size" } td { (human_bytes(b.size)) " (" (b.size) " bytes)" } }
                    tr { th scope="row" { "sha256" } td { code { (b.sha256) } } }
                    tr { th scope="row" { "traced" } td { (b.created) " UTC" } }
                    tr { th scope="row" { "asked by" } td { (asked_by(&b.app_id)) } }
                    tr { th scope="row" { "id" } td { code { (b.id) } } }
                }
            }
            @for (n, m) in b.found.iter().enumerate() {
                section.card.found id={ "found-" (n) } data-mark=(m.mark_id) aria-labelledby={ "found-title-" (n) } {
                    h2 id={ "found-title-" (n) } { @if b.found.len() > 1 { "Mark " (n + 1) } @else { "The mark" } }
                    div.table-wrap {
                        table.answer {
                            tr { th scope="row" { "file" } td.mark-file {
                                @if let Some(name) = &m.file_name { a href={ "/admin/files/" (m.file_id) } { (name) } " " }
                                code { (m.file_id) }
                                @if m.file_name.is_none() { " " span.muted { "(deleted or expired)" } }
                            } }
                            tr { th scope="row" { "tag" } td { strong.mark-tag { (m.tag) } } }
                            tr { th scope="row" { "mark id" } td { code.mark-id { (m.mark_id) } } }
                            @match &m.link {
                                Some(l) => {
                                    tr { th scope="row" { "link issued" } td.mark-issued { (l.issued) " UTC to " (asked_by(&l.app_id)) } }
                                    tr { th scope="row" { "link expiry" } td { (l.expires) " UTC" } }
                                }
                                None => {
                                    tr { th scope="row" { "link issued" } td { span.muted { "not recorded" } } }
                                }
                            }
                        }
                    }
                    h3 { "Downloads of this link" }
                    @if m.downloads.is_empty() {
                        p.muted.no-downloads { "The audit trail has no download of this link (none yet, or forgotten after the retention period)." }
                    } @else {
                        div.table-wrap {
                            table.downloads {
                                thead { tr {
                                    th scope="col" { "Client" } th scope="col" { "First (UTC)" } th scope="col" { "Last (UTC)" }
                                    th scope="col" { "Requests" } th scope="col" { "Sent" } th scope="col" { "Status" }
                                } }
                                tbody {
                                    @for d in &m.downloads {
                                        tr data-id=(d.id) data-client=(d.client) data-bytes=(d.bytes) {
                                            td { code { (d.client) } }
                                            td { (d.first) } td { (d.last) } td { (d.requests) }
                                            td { (human_bytes(d.bytes)) }
                                            td {
                                                @if let Some(r) = &d.reason { span.error { (d.status) " " (r) } }
                                                @else { span.ok { (d.status) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !b.forged.is_empty() {
                section.card #forged aria-labelledby="forged-title" {
                    h2 #forged-title { "Marks not made by this server" }
                    p.muted { "What these marks claim; their MAC does not match, so none of it is evidence." }
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Mark id" } th scope="col" { "Claimed file" } th scope="col" { "Claimed tag" } } }
                            tbody {
                                @for m in &b.forged {
                                    tr { td { code { (m.mark_id) } } td { code { (m.file_id) } } td { (m.tag) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
