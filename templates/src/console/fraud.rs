//! The anti-fraud lists: sources and their entries, import, add, remove, check.

use maud::{html, Markup};

use super::{flash, page, Chrome};

#[derive(Debug, Clone, Default)]
pub struct SourceItem {
    pub source: String,
    pub entries: i64,
    pub imported: String,
    /// The first entries (as stored), for removing one by one.
    pub sample: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ListView {
    /// `blocklist` or `anonymizers`.
    pub name: &'static str,
    /// Ranges after merging every source.
    pub ranges: usize,
    pub sources: Vec<SourceItem>,
}

#[derive(Debug, Clone, Default)]
pub struct CheckView {
    pub ip: String,
    /// `None` when the address did not parse.
    pub lists: Option<Vec<&'static str>>,
    /// (list, source, entry) holding it.
    pub entries: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct FraudView {
    pub lists: Vec<ListView>,
    pub check: Option<CheckView>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

fn list_select(id: &str) -> Markup {
    html! {
        select id=(id) name="list" {
            option value="blocklist" { "blocklist" }
            option value="anonymizers" { "anonymizers" }
        }
    }
}

pub fn fraud(chrome: &Chrome, v: &FraudView) -> Markup {
    page(
        "Anti-fraud",
        chrome,
        html! {
            h1 { "Anti-fraud lists" }
            (flash(v.notice.as_deref(), v.error.as_deref()))
            form.card.filters #check method="get" action="/admin/fraud" role="search" {
                div.field {
                    label for="check-ip" { "Check an address" }
                    input #check-ip type="text" name="ip" value=(v.check.as_ref().map(|c| c.ip.as_str()).unwrap_or("")) required maxlength="45" spellcheck="false";
                }
                div.field { button #check-submit type="submit" { "Check" } }
            }
            @if let Some(c) = &v.check {
                div.card #check-result role="status" {
                    @match &c.lists {
                        None => p.error { (c.ip) " is not an IP address." },
                        Some(l) if l.is_empty() => p.ok { (c.ip) " is on no list." },
                        Some(l) => p.error { (c.ip) " is on: " (l.join(", ")) },
                    }
                    @if !c.entries.is_empty() {
                        ul { @for (l, s, e) in &c.entries { li { (l) " / " (s) ": " code { (e) } } } }
                    }
                }
            }
            @for l in &v.lists {
                section.card data-list=(l.name) aria-labelledby={ "list-" (l.name) } {
                    h2 id={ "list-" (l.name) } { (l.name) " " span.muted { "(" (l.ranges) " merged ranges)" } }
                    @if l.sources.is_empty() { p.muted { "Empty." } }
                    @for s in &l.sources {
                        div.source data-source=(s.source) {
                            h3 { (s.source) " " span.muted { (s.entries) " entries, imported " (s.imported) } }
                            form.inline method="post" action="/admin/fraud/remove-source" {
                                input type="hidden" name="csrf" value=(chrome.csrf);
                                input type="hidden" name="list" value=(l.name);
                                input type="hidden" name="source" value=(s.source);
                                button.danger type="submit" aria-label={ "Remove source " (s.source) " of " (l.name) } { "Remove this source" }
                            }
                            ul.entries {
                                @for e in &s.sample {
                                    li {
                                        code { (e) } " "
                                        form.inline method="post" action="/admin/fraud/remove-entry" {
                                            input type="hidden" name="csrf" value=(chrome.csrf);
                                            input type="hidden" name="list" value=(l.name);
                                            input type="hidden" name="source" value=(s.source);
                                            input type="hidden" name="entry" value=(e);
                                            button.secondary.small type="submit" aria-label={ "Remove " (e) " from " (s.source) } { "Remove" }
                                        }
                                    }
                                }
                                @if (s.sample.len() as i64) < s.entries { li.muted { "… and " (s.entries - s.sample.len() as i64) " more" } }
                            }
                        }
                    }
                }
            }
            form.card #import method="post" action="/admin/fraud/import" enctype="multipart/form-data" {
                h2 { "Import a list file" }
                p.muted { "One address or CIDR range per line, " code { "#" } " starts a comment. Replaces the source it is imported into; a file with a bad line changes nothing." }
                input type="hidden" name="csrf" value=(chrome.csrf);
                div.field { label for="import-list" { "List" } (list_select("import-list")) }
                div.field { label for="import-source" { "Source name" } input #import-source type="text" name="source" value="default" required maxlength="64" pattern="[A-Za-z0-9._-]{1,64}"; }
                div.field { label for="import-file" { "File" } input #import-file type="file" name="file" required; }
                p { button #import-submit type="submit" { "Import" } }
            }
            form.card #add method="post" action="/admin/fraud/add" {
                h2 { "Add ranges" }
                input type="hidden" name="csrf" value=(chrome.csrf);
                div.field { label for="add-list" { "List" } (list_select("add-list")) }
                div.field { label for="add-source" { "Source name" } input #add-source type="text" name="source" value="manual" required maxlength="64" pattern="[A-Za-z0-9._-]{1,64}"; }
                div.field { label for="add-entries" { "Addresses or CIDR ranges, one per line" } textarea #add-entries name="entries" rows="3" required {} }
                p { button #add-submit type="submit" { "Add" } }
            }
            form.card #remove method="post" action="/admin/fraud/remove-entry" {
                h2 { "Remove a range" }
                input type="hidden" name="csrf" value=(chrome.csrf);
                div.field { label for="remove-list" { "List" } (list_select("remove-list")) }
                div.field { label for="remove-source" { "Source name" } input #remove-source type="text" name="source" required maxlength="64"; }
                div.field { label for="remove-entry" { "Address or CIDR range" } input #remove-entry type="text" name="entry" required maxlength="64"; }
                p { button #remove-submit type="submit" { "Remove" } }
            }
        },
    )
}
