//! The admin console's pages.

use maud::{html, Markup, DOCTYPE};

/// What every console page needs besides its body.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The CSRF token of the session (empty when logged out).
    pub csrf: String,
    /// The nav entry to mark as current.
    pub current: &'static str,
}

const NAV: &[(&str, &str)] = &[
    ("dashboard", "/admin"),
    ("applications", "/admin/apps"),
    ("downloads", "/admin/downloads"),
];

pub fn page(title: &str, chrome: &Chrome, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — filegate" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header.top {
                    a.brand href="/admin" { "filegate" }
                    @if !chrome.csrf.is_empty() {
                        nav aria-label="Console" {
                            @for (name, href) in NAV {
                                @if *name == chrome.current {
                                    a href=(href) aria-current="page" { (capitalize(name)) }
                                } @else {
                                    a href=(href) { (capitalize(name)) }
                                }
                            }
                        }
                        form #logout method="post" action="/admin/logout" {
                            input type="hidden" name="csrf" value=(chrome.csrf);
                            button.secondary type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Default)]
pub struct LoginView {
    pub csrf: String,
    pub error: Option<String>,
    /// No password has been set yet: say how to set one.
    pub unset: bool,
}

pub fn login(v: &LoginView) -> Markup {
    page(
        "Log in",
        &Chrome::default(),
        html! {
            h1 { "Log in to filegate" }
            @if v.unset {
                p.error #login-unset { "No console password is set. On the server, run "
                    code { "filegate admin set-password" } "." }
            }
            @if let Some(e) = &v.error { p.error #login-error role="alert" { (e) } }
            form.card #login method="post" action="/admin/login" {
                input type="hidden" name="csrf" value=(v.csrf);
                label for="username" { "User" }
                input #username type="text" name="username" value="admin" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required autofocus;
                p { button #login-submit type="submit" { "Log in" } }
            }
        },
    )
}

#[derive(Debug, Clone, Default)]
pub struct DashboardView {
    pub applications: u64,
    pub active_tokens: u64,
    pub catalog_bytes: u64,
    pub disk_free_bytes: Option<u64>,
}

pub fn dashboard(chrome: &Chrome, v: &DashboardView) -> Markup {
    page(
        "Dashboard",
        chrome,
        html! {
            h1 { "Dashboard" }
            div.stats #stats {
                div.card.stat { b #stat-apps { (v.applications) } "applications" }
                div.card.stat { b #stat-tokens { (v.active_tokens) } "active tokens" }
                div.card.stat { b #stat-catalog { (human_bytes(v.catalog_bytes)) } "catalog" }
                @if let Some(free) = v.disk_free_bytes {
                    div.card.stat { b #stat-disk-free { (human_bytes(free)) } "disk free" }
                }
            }
        },
    )
}

#[derive(Debug, Clone)]
pub struct AppItem {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub enabled: bool,
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct CreatedApp {
    pub id: String,
    pub secret: String,
}

#[derive(Debug, Clone, Default)]
pub struct AppsView {
    pub apps: Vec<AppItem>,
    pub all_scopes: Vec<&'static str>,
    pub created: Option<CreatedApp>,
    pub error: Option<String>,
}

pub fn apps(chrome: &Chrome, v: &AppsView) -> Markup {
    page(
        "Applications",
        chrome,
        html! {
            h1 { "Applications" }
            @if let Some(c) = &v.created {
                div.card #created role="status" {
                    p.ok { "Application created. Copy the secret now: it is not shown again." }
                    p { "client_id" code #created-id { (c.id) } }
                    p { "client_secret" code.secret #created-secret { (c.secret) } }
                }
            }
            @if let Some(e) = &v.error { p.error role="alert" { (e) } }
            div.table-wrap {
                table #apps {
                    thead { tr { th { "Name" } th { "client_id" } th { "Scopes" } th { "State" } th { "Created" } th { "" } } }
                    tbody {
                        @for a in &v.apps {
                            tr data-id=(a.id) {
                                td { (a.name) } td { code { (a.id) } } td { (a.scopes) }
                                td { @if a.enabled { span.ok { "enabled" } } @else { span.error { "disabled" } } }
                                td { (a.created) }
                                td {
                                    form method="post" action={ "/admin/apps/" (a.id) (if a.enabled { "/disable" } else { "/enable" }) } {
                                        input type="hidden" name="csrf" value=(chrome.csrf);
                                        @if a.enabled { button.danger type="submit" { "Disable" } }
                                        @else { button type="submit" { "Enable" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.card #create-app method="post" action="/admin/apps" {
                h2 { "New application" }
                input type="hidden" name="csrf" value=(chrome.csrf);
                label for="app-name" { "Name" }
                input #app-name type="text" name="name" required maxlength="200";
                fieldset {
                    legend { "Scopes" }
                    @for s in &v.all_scopes {
                        label { input type="checkbox" name="scope" value=(s) checked[*s == "mediahub"]; " " (s) }
                    }
                }
                p { button #create-app-submit type="submit" { "Create" } }
            }
        },
    )
}

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
}

#[derive(Debug, Clone, Default)]
pub struct ListItem {
    pub list: String,
    pub source: String,
    pub entries: i64,
    pub imported: String,
}

#[derive(Debug, Clone, Default)]
pub struct DownloadsView {
    pub downloads: Vec<DownloadItem>,
    pub total: u64,
    /// Showing refusals only.
    pub refused_only: bool,
    pub lists: Vec<ListItem>,
}

/// The audit trail's latest entries and the anti-fraud lists (read-only).
pub fn downloads(chrome: &Chrome, v: &DownloadsView) -> Markup {
    page(
        "Downloads",
        chrome,
        html! {
            h1 { "Downloads" }
            p {
                @if v.refused_only {
                    "Refusals only. " a #show-all href="/admin/downloads" { "Show everything" }
                } @else {
                    a #show-refused href="/admin/downloads?refused=1" { "Show refusals only" }
                }
                " — " (v.downloads.len()) " of " (v.total) ", most recent first."
            }
            div.table-wrap {
                table #downloads {
                    thead { tr { th { "Last" } th { "File" } th { "Client" } th { "Outcome" } th { "Requests" } th { "Sent" } th { "Application" } th { "Tag" } } }
                    tbody {
                        @for d in &v.downloads {
                            tr data-id=(d.id) {
                                td { (d.last) } td { code { (d.file_id) } } td { code { (d.client) } }
                                td {
                                    @if let Some(r) = &d.reason { span.error { (d.status) " " (r) } }
                                    @else { span.ok { (d.status) } }
                                }
                                td { (d.requests) } td { (human_bytes(d.bytes)) }
                                td { code { (d.app_id) } } td { (d.tag) }
                            }
                        }
                    }
                }
            }
            h2 { "Anti-fraud lists" }
            div.table-wrap {
                table #fraud-lists {
                    thead { tr { th { "List" } th { "Source" } th { "Entries" } th { "Imported" } } }
                    tbody {
                        @for l in &v.lists {
                            tr { td { (l.list) } td { (l.source) } td { (l.entries) } td { (l.imported) } }
                        }
                    }
                }
            }
            p { "Import with " code { "filegate fraud import --list blocklist|anonymizers [--source NAME] FILE" }
                " or " code { "PUT /v1/fraud/lists/NAME/" } "." }
        },
    )
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A short page for refusals in the console (bad CSRF token, throttled login).
pub fn message(title: &str, text: &str) -> Markup {
    page(
        title,
        &Chrome::default(),
        html! { h1 { (title) } p #message { (text) } p { a href="/admin" { "Back to the console" } } },
    )
}
