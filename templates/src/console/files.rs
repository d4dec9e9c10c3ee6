//! Files: the searchable list with the upload form, one file's page (fields, archive
//! entries, revoke, delete) and the link maker.

use maud::{html, Markup};

use super::{copyable, flash, human_bytes, page, pager, Chrome, Pager};

#[derive(Debug, Clone, Default)]
pub struct FileItem {
    pub id: String,
    pub name: String,
    pub object_key: String,
    /// `file` or `archive`.
    pub kind: String,
    pub mime_type: String,
    pub size: u64,
    /// The pipeline's name (or id), empty without one.
    pub pipeline: String,
    pub created: String,
    /// Empty when it never expires.
    pub expires: String,
    pub autograph: bool,
    pub missing: bool,
}

/// (id, name) of a pipeline, for the filters and selects.
pub type PipelineChoice = (String, String);

#[derive(Debug, Clone, Default)]
pub struct FilesView {
    pub items: Vec<FileItem>,
    pub pager: Pager,
    /// The search text (name or object key).
    pub q: String,
    /// Filter: a pipeline id, `none`, or empty for all.
    pub pipeline: String,
    /// Filter: `file`, `archive` or empty.
    pub kind: String,
    pub pipelines: Vec<PipelineChoice>,
    pub max_upload_bytes: u64,
    pub notice: Option<String>,
    pub error: Option<String>,
}

fn pipeline_select(
    id: &str,
    name: &str,
    choices: &[PipelineChoice],
    selected: &str,
    any: Option<&str>,
) -> Markup {
    html! {
        select id=(id) name=(name) {
            @if let Some(any) = any { option value="" selected[selected.is_empty()] { (any) } }
            @else { option value="" selected[selected.is_empty()] { "(no pipeline)" } }
            @for (pid, pname) in choices {
                option value=(pid) selected[selected == pid] { (pname) " (" (pid) ")" }
            }
        }
    }
}

pub fn files(chrome: &Chrome, v: &FilesView) -> Markup {
    page(
        "Files",
        chrome,
        html! {
            h1 { "Files" }
            (flash(v.notice.as_deref(), v.error.as_deref()))
            form.card.filters #file-search method="get" action="/admin/files" role="search" {
                div.field {
                    label for="q" { "Name or object key contains" }
                    input #q type="search" name="q" value=(v.q) maxlength="200";
                }
                div.field {
                    label for="filter-pipeline" { "Pipeline" }
                    select #filter-pipeline name="pipeline" {
                        option value="" selected[v.pipeline.is_empty()] { "Any" }
                        @for (pid, pname) in &v.pipelines {
                            option value=(pid) selected[v.pipeline == *pid] { (pname) }
                        }
                    }
                }
                div.field {
                    label for="filter-type" { "Type" }
                    select #filter-type name="type" {
                        option value="" selected[v.kind.is_empty()] { "Any" }
                        option value="file" selected[v.kind == "file"] { "Plain files" }
                        option value="archive" selected[v.kind == "archive"] { "Archives" }
                    }
                }
                div.field { button #file-search-submit type="submit" { "Search" } }
            }
            div.table-wrap {
                table #files {
                    caption.sr-only { "Stored files" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Object key" } th scope="col" { "Type" }
                        th scope="col" { "Size" } th scope="col" { "Pipeline" } th scope="col" { "Created" } th scope="col" { "Expires" }
                    } }
                    tbody {
                        @for f in &v.items {
                            tr data-id=(f.id) {
                                td { a href={ "/admin/files/" (f.id) } { (f.name) }
                                    @if f.missing { " " span.error { "(bytes missing)" } }
                                    @if f.autograph { " " span.badge { "AutoGraph" } } }
                                td { code { (f.object_key) } }
                                td { (f.kind) br; span.muted { (f.mime_type) } }
                                td { (human_bytes(f.size)) }
                                td { (f.pipeline) }
                                td { (f.created) }
                                td { @if f.expires.is_empty() { span.muted { "never" } } @else { (f.expires) } }
                            }
                        }
                    }
                }
            }
            (pager(&v.pager))
            form.card #upload method="post" action="/admin/files/upload" enctype="multipart/form-data" data-progress {
                h2 { "Upload a file" }
                input type="hidden" name="csrf" value=(chrome.csrf);
                div.field {
                    label for="upload-key" { "Object key (optional; default: the new file's id)" }
                    input #upload-key type="text" name="object_key" maxlength="1024" placeholder="films/movie.mp4";
                }
                div.field {
                    label for="upload-pipeline" { "Pipeline" }
                    (pipeline_select("upload-pipeline", "pipeline_id", &v.pipelines, "", None))
                }
                div.field {
                    label for="upload-days" { "Expires after (days; empty = the server's default)" }
                    input #upload-days type="number" name="expires_in_days" min="1" max="36500" step="1";
                }
                div.field.check {
                    input #upload-autograph type="checkbox" name="autograph" value="true";
                    label for="upload-autograph" { "Allow tagged (AutoGraph) downloads" }
                }
                div.field {
                    label for="upload-file" { "File (at most " (human_bytes(v.max_upload_bytes)) ")" }
                    input #upload-file type="file" name="file" required;
                }
                p { button #upload-submit type="submit" { "Upload" } }
                div.upload-progress #upload-progress hidden {
                    label for="upload-bar" { "Uploading" }
                    progress #upload-bar max="100" value="0" {}
                    span.upload-status #upload-status aria-live="polite" {}
                }
            }
        },
    )
}

#[derive(Debug, Clone, Default)]
pub struct EntryItem {
    pub name: String,
    pub size: u64,
    pub mime_type: String,
}

#[derive(Debug, Clone, Default)]
pub struct FileDetail {
    pub id: String,
    pub name: String,
    pub object_key: String,
    pub kind: String,
    pub subtype: String,
    pub mime_type: String,
    pub size: u64,
    pub md5: String,
    pub sha256: String,
    pub autograph: bool,
    pub pipeline: String,
    pub job: String,
    pub created: String,
    pub expires: String,
    pub missing: bool,
    /// Links issued before this were revoked (empty: never).
    pub revoked: String,
    pub entries: Vec<EntryItem>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub fn file(chrome: &Chrome, f: &FileDetail) -> Markup {
    let link_maker = format!("/admin/links?file_id={}", f.id);
    page(
        &f.name,
        chrome,
        html! {
            p { a href="/admin/files" { "← Files" } }
            h1 #file-name { (f.name) }
            (flash(f.notice.as_deref(), f.error.as_deref()))
            div.table-wrap {
                table.answer #file-fields {
                    tr { th scope="row" { "id" } td { code { (f.id) } } }
                    tr { th scope="row" { "object_key" } td { code { (f.object_key) } } }
                    tr { th scope="row" { "type" } td { (f.kind) @if !f.subtype.is_empty() { " (" (f.subtype) ")" } } }
                    tr { th scope="row" { "mime_type" } td { (f.mime_type) } }
                    tr { th scope="row" { "size" } td { (human_bytes(f.size)) " (" (f.size) " bytes)" } }
                    tr { th scope="row" { "md5_checksum" } td { code { (f.md5) } } }
                    tr { th scope="row" { "sha256" } td { code { (f.sha256) } } }
                    tr { th scope="row" { "autograph" } td { (f.autograph) } }
                    tr { th scope="row" { "pipeline" } td { (f.pipeline) } }
                    tr { th scope="row" { "job" } td { (f.job) } }
                    tr { th scope="row" { "created" } td { (f.created) } }
                    tr { th scope="row" { "expires" } td { @if f.expires.is_empty() { "never" } @else { (f.expires) } } }
                    tr { th scope="row" { "links revoked before" } td { @if f.revoked.is_empty() { "never" } @else { (f.revoked) } } }
                    @if f.missing { tr { th scope="row" { "missing" } td.error { "its bytes are missing or damaged (filegate verify)" } } }
                }
            }
            p.actions { a.button #make-link href=(link_maker) { "Make a download link" } }
            @if f.kind == "archive" {
                h2 { "Archive entries" }
                div.table-wrap {
                    table #entries {
                        thead { tr { th scope="col" { "Entry" } th scope="col" { "Size" } th scope="col" { "Type" } th scope="col" { "Link" } } }
                        tbody {
                            @for e in &f.entries {
                                tr {
                                    td { code { (e.name) } } td { (human_bytes(e.size)) } td { (e.mime_type) }
                                    td { a href={ (link_maker) "&item=" (encode(&e.name)) } aria-label={ "Make a link to " (e.name) } { "Make a link" } }
                                }
                            }
                        }
                    }
                }
            }
            div.card {
                h2 { "Revoke links" }
                p { "Every link to this file issued until now stops working (410 " code { "link_revoked" } "); links made afterwards work." }
                form #revoke method="post" action={ "/admin/files/" (f.id) "/revoke" } {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    button.danger #revoke-submit type="submit" { "Revoke all links" }
                }
            }
            div.card {
                h2 { "Delete" }
                form #delete method="post" action={ "/admin/files/" (f.id) "/delete" } {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    div.field.check {
                        input #delete-confirm type="checkbox" name="confirm" value="yes" required;
                        label for="delete-confirm" { "Yes, delete " (f.name) " and stop its links" }
                    }
                    button.danger #delete-submit type="submit" { "Delete the file" }
                }
            }
        },
    )
}

/// Percent-encodes a query value (the templates crate has no URL library).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the link maker's form holds (as typed, so a refused form comes back intact).
#[derive(Debug, Clone, Default)]
pub struct LinkForm {
    pub file_id: String,
    pub object_key: String,
    pub pipeline_id: String,
    pub item: String,
    /// Seconds from now, one of the choices; used when `expiry_time` is empty.
    pub valid_for: String,
    /// Unix seconds, UTC.
    pub expiry_time: String,
    pub ip: String,
    pub streaming: bool,
    pub anti_fraud: bool,
    pub autograph_tag: String,
    pub max_parallel_downloads: String,
}

/// One issued link: the file's, or an archive entry's.
#[derive(Debug, Clone, Default)]
pub struct IssuedLink {
    pub name: String,
    pub size: u64,
    pub url: String,
}

#[derive(Debug, Clone, Default)]
pub struct Issued {
    pub links: Vec<IssuedLink>,
    /// When they expire, readable, and as Unix seconds.
    pub expires: String,
    pub expiry_time: i64,
    /// What they do, in words (inline, bound to an address, anti-fraud…).
    pub traits: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LinkMakerView {
    pub form: LinkForm,
    pub pipelines: Vec<PipelineChoice>,
    /// Choices for `valid_for`: (seconds, label).
    pub durations: Vec<(u64, String)>,
    pub issued: Option<Issued>,
    pub error: Option<String>,
}

pub fn link_maker(chrome: &Chrome, v: &LinkMakerView) -> Markup {
    let f = &v.form;
    page(
        "Link maker",
        chrome,
        html! {
            h1 { "Link maker" }
            p.muted { "Issues a signed download link exactly as " code { "GET /v1/files/downloads" } " does, with the same checks. Links made here belong to no application." }
            (flash(None, v.error.as_deref()))
            @if let Some(i) = &v.issued {
                section.card #issued aria-labelledby="issued-title" {
                    h2 #issued-title { "Your link" @if i.links.len() > 1 { "s" } }
                    p { "Valid until " strong #issued-expiry data-expiry=(i.expiry_time) { (i.expires) } " UTC"
                        @for t in &i.traits { " · " (t) } }
                    @for (n, l) in i.links.iter().enumerate() {
                        (copyable(&format!("link-{n}"), &format!("{} ({})", l.name, human_bytes(l.size)), &l.url))
                        p { a.link-open href=(l.url) target="_blank" rel="noopener noreferrer" { "Open" } }
                    }
                }
            }
            form.card #link-form method="post" action="/admin/links" {
                input type="hidden" name="csrf" value=(chrome.csrf);
                fieldset {
                    legend { "Which file" }
                    div.field {
                        label for="link-file" { "File id" }
                        input #link-file type="text" name="file_id" value=(f.file_id) maxlength="24" pattern="[0-9a-f]{24}" spellcheck="false";
                    }
                    p.muted { "…or by object key:" }
                    div.field {
                        label for="link-key" { "Object key" }
                        input #link-key type="text" name="object_key" value=(f.object_key) maxlength="1024";
                    }
                    div.field {
                        label for="link-pipeline" { "Pipeline of the key" }
                        (pipeline_select("link-pipeline", "pipeline_id", &v.pipelines, &f.pipeline_id, None))
                    }
                    div.field {
                        label for="link-item" { "Archive entry (item; empty = every entry)" }
                        input #link-item type="text" name="item" value=(f.item) maxlength="1024";
                    }
                }
                fieldset {
                    legend { "Expiry" }
                    div.field {
                        label for="link-valid" { "Valid for" }
                        select #link-valid name="valid_for" {
                            @for (secs, label) in &v.durations {
                                option value=(secs) selected[f.valid_for == secs.to_string()] { (label) }
                            }
                        }
                    }
                    div.field {
                        label for="link-expiry" { "…or until (expiry_time, Unix seconds UTC)" }
                        input #link-expiry type="text" inputmode="numeric" name="expiry_time" value=(f.expiry_time) maxlength="18";
                    }
                }
                fieldset {
                    legend { "Delivery" }
                    div.field.check {
                        input #link-streaming type="checkbox" name="streaming" value="true" checked[f.streaming];
                        label for="link-streaming" { "Streaming: play in the browser tab (inline) instead of downloading" }
                    }
                    div.field.check {
                        input #link-anti-fraud type="checkbox" name="anti_fraud" value="true" checked[f.anti_fraud];
                        label for="link-anti-fraud" { "Anti-fraud: refuse listed and anonymizer clients, proxies, and any client but the first" }
                    }
                    div.field {
                        label for="link-ip" { "Only for this client address (ip: IPv4, IPv6 or MediaHub's 32-bit integer)" }
                        input #link-ip type="text" name="ip" value=(f.ip) maxlength="45" spellcheck="false";
                    }
                    div.field {
                        label for="link-parallel" { "At most this many downloads at once (max_parallel_downloads)" }
                        input #link-parallel type="number" name="max_parallel_downloads" value=(f.max_parallel_downloads) min="1" max="10000";
                    }
                    div.field {
                        label for="link-tag" { "AutoGraph tag (files uploaded with AutoGraph only)" }
                        input #link-tag type="text" name="autograph_tag" value=(f.autograph_tag) maxlength="128";
                    }
                }
                p { button #link-submit type="submit" { "Make the link" } }
            }
        },
    )
}
