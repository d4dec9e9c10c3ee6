//! The admin console: server-rendered pages under `/admin`, a password login, an
//! in-memory session (HttpOnly, SameSite=Strict cookie) and a CSRF token on every form.
//! Views live in the `filegate-templates` crate; handlers here gather plain data.

// Helpers return the refusal page itself as the error; the console is no hot path.
#![allow(clippy::result_large_err)]

mod audit;
mod backtraces;
mod files;
mod fraud;
mod ops;
pub mod password;
pub mod session;

use std::net::IpAddr;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use filegate_templates::console::{self as views, Chrome};
use maud::Markup;

use crate::auth::{apps as auth_apps, Scope, Scopes};
use crate::catalog::apps;
use crate::error::ApiError;
use crate::fraud::client;
use crate::state::AppState;
use session::{same, Session, COOKIE, LOGIN_COOKIE};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard))
        .route("/admin/", web::get().to(dashboard))
        .route("/admin/login", web::get().to(login_form))
        .route("/admin/login", web::post().to(login))
        .route("/admin/logout", web::post().to(logout))
        .route("/admin/apps", web::get().to(apps_page))
        .route("/admin/apps", web::post().to(apps_create))
        .route("/admin/apps/{id}/{action}", web::post().to(apps_toggle))
        .configure(files::configure)
        .configure(ops::configure)
        .configure(fraud::configure)
        .configure(audit::configure)
        .configure(backtraces::configure);
}

/// Security headers for every console page.
fn html(status: StatusCode, m: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // `no-referrer` would make Chromium send `Origin: null` on our own form posts.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(m.into_string())
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn client_ip(state: &AppState, req: &HttpRequest) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    client::client_addr(peer, req.headers(), &state.config.trusted_proxies())
}

/// Cookies get `Secure` when the console is reached over https.
fn is_https(state: &AppState, req: &HttpRequest) -> bool {
    if state.config.server.public_url.starts_with("https://") {
        return true;
    }
    let peer = req.peer_addr().map(|a| a.ip());
    let host = req.connection_info().host().to_string();
    client::origin(peer, req.headers(), &host, &state.config.trusted_proxies()).0 == "https"
}

fn cookie<'a>(
    state: &AppState,
    req: &HttpRequest,
    name: &'a str,
    value: String,
    path: &'a str,
) -> Cookie<'a> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(state, req))
        .finish()
}

fn removal(name: &str, path: &str) -> Cookie<'static> {
    let mut c = Cookie::build(name.to_string(), "")
        .path(path.to_string())
        .http_only(true)
        .finish();
    c.make_removal();
    c
}

/// The request's live session, or a redirect to the login page.
fn session(state: &AppState, req: &HttpRequest) -> Result<(String, Session), HttpResponse> {
    let now = state.clock.now_ms();
    req.cookie(COOKIE)
        .and_then(|c| {
            state
                .sessions
                .get(c.value(), now)
                .map(|s| (c.value().to_string(), s))
        })
        .ok_or_else(|| see_other("/admin/login"))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
    f.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn chrome(s: &Session, current: &'static str) -> Chrome {
    Chrome {
        csrf: s.csrf.clone(),
        current,
    }
}

/// The session of a page view (a GET), or the redirect to the login page.
fn viewer(state: &AppState, req: &HttpRequest) -> Result<Session, HttpResponse> {
    session(state, req).map(|(_, s)| s)
}

/// A posted form: the live session, its fields, and the CSRF (and origin) check passed.
fn posted(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Session, Vec<(String, String)>), HttpResponse> {
    let (_, s) = session(state, req)?;
    let f = form(body);
    check_post(req, &s.csrf, &f)?;
    Ok((s, f))
}

/// The query string's pairs.
fn query(req: &HttpRequest) -> Vec<(String, String)> {
    form(req.query_string().as_bytes())
}

/// A refusal of the domain code, readable: "Invalid Input: expiry_in_past (expiry_time)".
fn refusal(e: &ApiError) -> String {
    let (_, _, message) = e.kind.parts();
    format!("{message}: {e}")
}

fn failed(status: StatusCode, text: &str) -> HttpResponse {
    html(status, views::message("Error", text))
}

fn catalog_failed() -> HttpResponse {
    failed(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The catalog could not be read; see the log.",
    )
}

/// Fixed notices shown after a redirect (`?done=CODE`), so no text travels in URLs.
fn notice(req: &HttpRequest) -> Option<String> {
    let code = query(req).into_iter().find(|(k, _)| k == "done")?.1;
    Some(
        match code.as_str() {
            "uploaded" => "File stored.",
            "deleted" => "File deleted; its links stopped working.",
            "revoked" => "Links revoked: every link issued until now answers 410 link_revoked.",
            "pipeline_created" => "Pipeline created.",
            "pipeline_deleted" => "Pipeline deleted.",
            "job_created" => "Job created.",
            "job_updated" => "Job updated.",
            "rotated" => "New signing key created; new links are signed with it.",
            "retired" => "Key retired: links signed with it stopped working.",
            "imported" => "List imported.",
            "added" => "Ranges added.",
            "entry_removed" => "Range removed.",
            "source_removed" => "Source removed.",
            "traced" => "The copy was scanned and the backtrace recorded; the copy itself was not kept.",
            _ => return None,
        }
        .to_string(),
    )
}

/// Every state-changing form carries the session's CSRF token, and a browser's
/// `Origin` (when sent) must be this host.
fn check_post(req: &HttpRequest, expected: &str, f: &[(String, String)]) -> Result<(), HttpResponse> {
    let origin_ok = match req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(o) => {
            let host = req.connection_info().host().to_string();
            o.split_once("://").is_some_and(|(_, h)| h == host)
        }
    };
    if !origin_ok || !same(field(f, "csrf"), expected) {
        tracing::warn!(origin_ok, "console form refused: CSRF token or origin mismatch");
        return Err(html(
            StatusCode::FORBIDDEN,
            views::message(
                "Refused",
                "This form has expired or did not come from this console. Reload the page and try again.",
            ),
        ));
    }
    Ok(())
}

async fn login_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    login_page(&state, &req, None, StatusCode::OK).await
}

async fn login_page(
    state: &AppState,
    req: &HttpRequest,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let unset = state
        .catalog
        .call(|c| Ok(!password::is_set(c)?))
        .await
        .unwrap_or(false);
    let csrf = session::random_token();
    let mut res = html(
        status,
        views::login(&views::LoginView {
            csrf: csrf.clone(),
            error,
            unset,
        }),
    );
    let _ = res.add_cookie(&cookie(state, req, LOGIN_COOKIE, csrf, "/admin"));
    res
}

async fn login(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let f = form(&body);
    let ip = client_ip(&state, &req);
    let now = state.clock.now_ms();
    // The login form is protected by a double-submit token: cookie and field must match.
    let cookie_token = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if cookie_token.is_empty() || check_post(&req, &cookie_token, &f).is_err() {
        return login_page(
            &state,
            &req,
            Some("The form expired; try again.".into()),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    if let Some(wait) = state.sessions.throttled(ip, now) {
        tracing::warn!(client = %ip, "console login throttled");
        return login_page(
            &state,
            &req,
            Some(format!(
                "Too many failed attempts. Try again in {} s.",
                (wait + 999) / 1000
            )),
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
    }
    let password = field(&f, "password").to_string();
    let ok = field(&f, "username") == "admin"
        && state
            .catalog
            .call(move |c| Ok(password::verify(c, &password)?))
            .await
            .unwrap_or(false);
    if !ok {
        state.sessions.failed(ip, now);
        tracing::warn!(client = %ip, "console login failed");
        return login_page(
            &state,
            &req,
            Some("Wrong user or password.".into()),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    state.sessions.succeeded(ip);
    tracing::info!(client = %ip, "console login");
    let (value, _) = state.sessions.create(now);
    let mut res = see_other("/admin");
    let _ = res.add_cookie(&cookie(&state, &req, COOKIE, value, "/"));
    let _ = res.add_removal_cookie(&removal(LOGIN_COOKIE, "/admin"));
    res
}

async fn logout(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (cookie_value, s) = match session(&state, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = check_post(&req, &s.csrf, &form(&body)) {
        return r;
    }
    state.sessions.destroy(&cookie_value);
    let mut res = see_other("/admin/login");
    let _ = res.add_removal_cookie(&removal(COOKIE, "/"));
    res
}

async fn dashboard(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = state.clock.now_ms();
    let midnight = now - now.rem_euclid(86_400_000);
    let dir = state.config.data_dir().to_path_buf();
    let view = state
        .catalog
        .call(move |c| {
            let applications = apps::list(c)?.len() as u64;
            let active_tokens = crate::catalog::tokens::count_active(c, now)?;
            let (files, stored_bytes) = crate::catalog::files::totals(c)?;
            let (served_today, refusals_today) = crate::catalog::audit::summary_since(c, midnight)?;
            let catalog_bytes = ["catalog.sqlite3", "catalog.sqlite3-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum();
            let disk_free_bytes = rustix::fs::statvfs(&dir)
                .ok()
                .map(|v| v.f_bavail.saturating_mul(v.f_frsize));
            Ok(views::DashboardView {
                applications,
                active_tokens,
                files,
                stored_bytes,
                served_today,
                refusals_today,
                catalog_bytes,
                disk_free_bytes,
            })
        })
        .await;
    match view {
        Ok(v) => html(StatusCode::OK, views::dashboard(&chrome(&s, "dashboard"), &v)),
        Err(_) => catalog_failed(),
    }
}

async fn apps_view(
    state: &AppState,
    created: Option<views::CreatedApp>,
    error: Option<String>,
) -> views::AppsView {
    let rows = state
        .catalog
        .call(|c| Ok(apps::list(c)?))
        .await
        .unwrap_or_default();
    views::AppsView {
        apps: rows
            .into_iter()
            .map(|a| views::AppItem {
                id: a.id,
                name: a.name,
                scopes: a.scopes,
                enabled: a.enabled,
                created: format_ms(a.created_at),
            })
            .collect(),
        all_scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
        created,
        error,
    }
}

async fn apps_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (_, s) = match session(&state, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let v = apps_view(&state, None, None).await;
    html(
        StatusCode::OK,
        views::apps(
            &Chrome {
                csrf: s.csrf,
                current: "applications",
            },
            &v,
        ),
    )
}

async fn apps_create(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (_, s) = match session(&state, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let f = form(&body);
    if let Err(r) = check_post(&req, &s.csrf, &f) {
        return r;
    }
    let chrome = Chrome {
        csrf: s.csrf.clone(),
        current: "applications",
    };
    let name = field(&f, "name").trim().to_string();
    let words: Vec<&str> = f
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let scopes = Scopes::parse(&words.join(","));
    let problem = match &scopes {
        _ if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) => {
            Some("The name must be 1–200 printable characters.")
        }
        Ok(s) if s.is_empty() => Some("Choose at least one scope."),
        Err(_) => Some("Unknown scope."),
        Ok(_) => None,
    };
    if let Some(p) = problem {
        let v = apps_view(&state, None, Some(p.into())).await;
        return html(StatusCode::BAD_REQUEST, views::apps(&chrome, &v));
    }
    let scopes = scopes.unwrap_or_default();
    let now = state.clock.now_ms();
    let st = state.clone();
    let created = state
        .catalog
        .call(move |c| Ok(auth_apps::create(c, &st.secrets, &name, scopes, now)?))
        .await;
    match created {
        Ok(app) => {
            tracing::info!(client_id = %app.client_id, "application created in the console");
            let v = apps_view(
                &state,
                Some(views::CreatedApp {
                    id: app.client_id,
                    secret: app.client_secret,
                }),
                None,
            )
            .await;
            html(StatusCode::CREATED, views::apps(&chrome, &v))
        }
        Err(_) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            views::message("Error", "The application could not be created."),
        ),
    }
}

async fn apps_toggle(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (_, s) = match session(&state, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = check_post(&req, &s.csrf, &form(&body)) {
        return r;
    }
    let (id, action) = path.into_inner();
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => {
            return html(
                StatusCode::NOT_FOUND,
                views::message("Not found", "No such action."),
            )
        }
    };
    let now = state.clock.now_ms();
    let app_id = id.clone();
    let changed = state
        .catalog
        .call(move |c| Ok(apps::set_enabled(c, &id, enabled, now)?))
        .await
        .unwrap_or(false);
    // Its tokens and links change meaning at once in this process (others: within TTL_MS).
    state.cache.invalidate_app(&app_id);
    if !changed {
        return html(
            StatusCode::NOT_FOUND,
            views::message("Not found", "No such application."),
        );
    }
    see_other("/admin/apps")
}

/// `YYYY-MM-DD HH:MM` UTC from Unix milliseconds (no time-zone database needed).
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil-from-days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_ms_is_utc_civil_time() {
        assert_eq!(super::format_ms(0), "1970-01-01 00:00");
        assert_eq!(super::format_ms(1_767_225_600_000), "2026-01-01 00:00");
        assert_eq!(
            super::format_ms(951_782_400_000 + 3_600_000 * 13 + 60_000 * 7),
            "2000-02-29 13:07"
        );
    }
}
