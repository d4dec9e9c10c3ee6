//! The download audit trail with its filters.

use maud::{html, Markup};

use super::{flash, human_bytes, page, pager, Chrome, Pager};

#[derive(Debug, Clone, Default)]
pub struct DownloadItem {
    pub id: i64,
    pub last: String,
    pub file_id: String,
    pub client: String,
    /// `None` for a delivery, else the refusal's reason.
    pub reason: Option<String>,
    pub status: u16,
    pub requests: i64,
    pub bytes: u64,
    pub app_id: String,
    pub tag: String,
    pub anti_fraud: bool,
}

/// The filters as typed.
#[derive(Debug, Clone, Default)]
pub struct AuditFilters {
    pub reason: String,
    pub file_id: String,
    pub client_id: String,
    pub client: String,
    /// `true`, `false` or empty.
    pub refused: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), as a `datetime-local` input sends it.
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuditView {
    pub downloads: Vec<DownloadItem>,
    pub pager: Pager,
    pub filters: AuditFilters,
    /// Reasons seen so far, for the filter's suggestions.
    pub reasons: Vec<String>,
    pub error: Option<String>,
}

pub fn audit(chrome: &Chrome, v: &AuditView) -> Markup {
    let f = &v.filters;
    page(
        "Audit trail",
        chrome,
        html! {
            h1 { "Audit trail" }
            p.muted { "Every delivery and refusal of a link: one row per link, client and outcome (a client's many Range requests are one row). Most recent first; times in UTC." }
            (flash(None, v.error.as_deref()))
            form.card.filters #audit-filter method="get" action="/admin/audit" {
                div.field {
                    label for="f-refused" { "Outcome" }
                    select #f-refused name="refused" {
                        option value="" selected[f.refused.is_empty()] { "Everything" }
                        option value="true" selected[f.refused == "true"] { "Refusals only" }
                        option value="false" selected[f.refused == "false"] { "Deliveries only" }
                    }
                }
                div.field {
                    label for="f-reason" { "Refusal reason" }
                    input #f-reason type="text" name="reason" value=(f.reason) list="reasons" maxlength="64";
                    datalist #reasons { @for r in &v.reasons { option value=(r) {} } }
                }
                div.field { label for="f-file" { "File id" } input #f-file type="text" name="file_id" value=(f.file_id) maxlength="24"; }
                div.field { label for="f-app" { "Application (client_id)" } input #f-app type="text" name="client_id" value=(f.client_id) maxlength="24"; }
                div.field { label for="f-client" { "Client address" } input #f-client type="text" name="client" value=(f.client) maxlength="45"; }
                div.field { label for="f-from" { "Active from (UTC)" } input #f-from type="datetime-local" name="from" value=(f.from); }
                div.field { label for="f-to" { "Begun before (UTC)" } input #f-to type="datetime-local" name="to" value=(f.to); }
                div.field { button #audit-filter-submit type="submit" { "Filter" } " " a href="/admin/audit" { "Clear" } }
            }
            div.table-wrap {
                table #downloads {
                    thead { tr {
                        th scope="col" { "Last" } th scope="col" { "File" } th scope="col" { "Client" } th scope="col" { "Outcome" }
                        th scope="col" { "Requests" } th scope="col" { "Sent" } th scope="col" { "Application" } th scope="col" { "Tag" }
                    } }
                    tbody {
                        @for d in &v.downloads {
                            tr data-id=(d.id) data-reason=(d.reason.as_deref().unwrap_or("")) {
                                td { (d.last) }
                                td { @if d.file_id.is_empty() { span.muted { "(unverified link)" } } @else { a href={ "/admin/files/" (d.file_id) } { code { (d.file_id) } } } }
                                td { code { (d.client) } }
                                td {
                                    @if let Some(r) = &d.reason { span.error { (d.status) " " (r) } }
                                    @else { span.ok { (d.status) } }
                                    @if d.anti_fraud { " " span.badge { "anti-fraud" } }
                                }
                                td { (d.requests) } td { (human_bytes(d.bytes)) }
                                td {
                                    @if !d.app_id.is_empty() { code { (d.app_id) } }
                                    @else if !d.file_id.is_empty() { span.muted { "console" } }
                                }
                                td { (d.tag) }
                            }
                        }
                    }
                }
            }
            (pager(&v.pager))
        },
    )
}
