//! The admin console's pages: the chrome every page shares, login, dashboard and
//! applications here; the other pages in the submodules, one per noun.

pub mod audit;
pub mod backtraces;
pub mod files;
pub mod fraud;
pub mod ops;

use maud::{html, Markup, DOCTYPE};

/// What every console page needs besides its body.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The CSRF token of the session (empty when logged out).
    pub csrf: String,
    /// The nav entry to mark as current.
    pub current: &'static str,
}

/// The console's sections: (key matched against `Chrome::current`, label, path).
/// A new page is one more line here.
const NAV: &[(&str, &str, &str)] = &[
    ("dashboard", "Dashboard", "/admin"),
    ("files", "Files", "/admin/files"),
    ("links", "Link maker", "/admin/links"),
    ("applications", "Applications", "/admin/apps"),
    ("pipelines", "Pipelines", "/admin/pipelines"),
    ("jobs", "Jobs", "/admin/jobs"),
    ("keys", "Signing keys", "/admin/keys"),
    ("fraud", "Anti-fraud", "/admin/fraud"),
    ("audit", "Audit trail", "/admin/audit"),
    ("backtraces", "Backtraces", "/admin/backtraces"),
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
                script src="/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/admin" { "filegate" }
                    @if !chrome.csrf.is_empty() {
                        nav aria-label="Console" {
                            @for (name, label, href) in NAV {
                                @if *name == chrome.current {
                                    a href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        form #logout method="post" action="/admin/logout" {
                            input type="hidden" name="csrf" value=(chrome.csrf);
                            button.secondary type="submit" { "Log out" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// A success notice and/or a refusal, announced to screen readers.
pub fn flash(notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(n) = notice { p.ok.flash #notice role="status" { (n) } }
        @if let Some(e) = error { p.error.flash #error role="alert" { (e) } }
    }
}

/// Where a paged table stands, and the links to its neighbours (built by the handler,
/// which knows the filters).
#[derive(Debug, Clone, Default)]
pub struct Pager {
    pub first: u64,
    pub last: u64,
    pub total: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub fn pager(p: &Pager) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if p.total == 0 { span { "Nothing found." } }
            @else { span { (p.first) "–" (p.last) " of " (p.total) } }
            @if let Some(h) = &p.prev { " " a rel="prev" href=(h) { "← Previous" } }
            @if let Some(h) = &p.next { " " a rel="next" href=(h) { "Next →" } }
        }
    }
}

/// A read-only text field holding `value` (a URL, a secret) with a copy button that the
/// script shows; without JavaScript the field can still be selected and copied.
pub fn copyable(id: &str, label: &str, value: &str) -> Markup {
    html! {
        div.copy {
            label for=(id) { (label) }
            div.copy-row {
                input type="text" id=(id) value=(value) readonly spellcheck="false";
                button.secondary type="button" data-copy=(id) hidden { "Copy" }
            }
        }
    }
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
    pub files: u64,
    pub stored_bytes: u64,
    /// Deliveries begun since midnight UTC (one per link × client).
    pub served_today: u64,
    /// Refused requests since midnight UTC, by reason, most frequent first.
    pub refusals_today: Vec<(String, u64)>,
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
                div.card.stat { b #stat-files { (v.files) } "files" }
                div.card.stat { b #stat-stored { (human_bytes(v.stored_bytes)) } "stored" }
                div.card.stat { b #stat-served { (v.served_today) } "downloads today" }
                div.card.stat { b #stat-refused { (v.refusals_today.iter().map(|r| r.1).sum::<u64>()) } "refusals today" }
                div.card.stat { b #stat-apps { (v.applications) } "applications" }
                div.card.stat { b #stat-tokens { (v.active_tokens) } "active tokens" }
                div.card.stat { b #stat-catalog { (human_bytes(v.catalog_bytes)) } "catalog" }
                @if let Some(free) = v.disk_free_bytes {
                    div.card.stat { b #stat-disk-free { (human_bytes(free)) } "disk free" }
                }
            }
            h2 { "Refusals today by reason" }
            @if v.refusals_today.is_empty() {
                p.muted #refusals-none { "None since midnight (UTC)." }
            } @else {
                div.table-wrap {
                    table #refusals {
                        thead { tr { th scope="col" { "Reason" } th scope="col" { "Requests" } } }
                        tbody {
                            @for (reason, n) in &v.refusals_today {
                                tr { td { a href={ "/admin/audit?reason=" (reason) } { code { (reason) } } } td { (n) } }
                            }
                        }
                    }
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
                    p { button.secondary type="button" data-copy="created-secret" hidden { "Copy the secret" } }
                }
            }
            @if let Some(e) = &v.error { p.error role="alert" { (e) } }
            div.table-wrap {
                table #apps {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "client_id" } th scope="col" { "Scopes" } th scope="col" { "State" } th scope="col" { "Created" } th scope="col" { "Action" } } }
                    tbody {
                        @for a in &v.apps {
                            tr data-id=(a.id) {
                                td { (a.name) } td { code { (a.id) } } td { (a.scopes) }
                                td { @if a.enabled { span.ok { "enabled" } } @else { span.error { "disabled" } } }
                                td { (a.created) }
                                td {
                                    form method="post" action={ "/admin/apps/" (a.id) (if a.enabled { "/disable" } else { "/enable" }) } {
                                        input type="hidden" name="csrf" value=(chrome.csrf);
                                        @if a.enabled { button.danger type="submit" aria-label={ "Disable " (a.name) } { "Disable" } }
                                        @else { button type="submit" aria-label={ "Enable " (a.name) } { "Enable" } }
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
