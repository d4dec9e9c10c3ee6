//! filegate: an on-prem file store handing out time-limited signed download links,
//! speaking the file part of the Xvid MediaHub API.

pub mod admin;
pub mod api;
pub mod archive;
pub mod audit;
pub mod auth;
pub mod autograph;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod error;
pub mod files;
pub mod fraud;
#[doc(hidden)]
pub mod fuzz;
pub mod ids;
pub mod jobs;
pub mod limits;
pub mod links;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod notify;
pub mod pipelines;
pub mod server;
pub mod state;
pub mod store;

use actix_web::body::MessageBody;
use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse, Resource};

use api::render::Rendering;
use error::{ApiError, ErrorKind};
use state::AppState;

/// The one route table, used by `filegate serve` and by the tests.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    cfg.app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(64 * 1024))
        .service(
            // One root scope so that every route, in the binary and in tests, is observed
            // (log line, metrics) by the same middleware.
            web::scope("")
                .wrap(from_fn(limits::guard))
                .wrap(from_fn(logging::observe))
                // Links first, under a static prefix: the router tries routes in order
                // and matches patterns with `{…}` segments by regex, which was a tenth
                // of the CPU time of serving a 4 KiB file. `deliver` checks the shape.
                .service(web::scope("/d").default_service(web::to(delivery::serve::deliver)))
                .service(
                    web::scope("/v1")
                        // Inside `render_errors`, so its refusals are rendered like any other.
                        .wrap(from_fn(auth::signed::check))
                        .wrap(from_fn(render_errors))
                        .configure(api_v1)
                        .default_service(web::to(no_route)),
                )
                .route("/healthz", web::get().to(api::health::healthz))
                .route("/metrics", web::get().to(api::health::metrics))
                .route("/static/{file}", web::get().to(api::assets::asset))
                .configure(admin::configure)
                .default_service(web::to(no_route)),
        );
}

/// The MediaHub-compatible API under `/v1`; every path also answers with a trailing slash.
fn api_v1(cfg: &mut web::ServiceConfig) {
    cfg.service(slashed("/oauth2/token", |r| {
        r.route(web::post().to(api::oauth2::token))
    }))
    .service(slashed("/files", |r| r.route(web::get().to(api::files::list))))
    .service(slashed("/files/downloads", |r| {
        r.route(web::get().to(api::downloads::downloads))
    }))
    .service(slashed("/files/uploads", |r| {
        r.route(web::post().to(api::uploads::create))
    }))
    .service(slashed("/files/uploads/{id}", |r| {
        r.route(web::get().to(api::uploads::get))
            .route(web::put().to(api::uploads::complete))
    }))
    .service(slashed("/files/uploads/{id}/form", |r| {
        r.route(web::post().to(api::uploads::form_post))
    }))
    // Only id-shaped segments, so `/files/downloads` & co. never land here.
    .service(slashed("/files/{id:[0-9a-f]{24}}", |r| {
        r.route(web::get().to(api::files::get))
            .route(web::delete().to(api::files::delete))
    }))
    .service(slashed("/files/{id:[0-9a-f]{24}}/revoke", |r| {
        r.route(web::post().to(api::files::revoke))
    }))
    .configure(api_v1_pipelines_jobs)
    .configure(fraud_and_audit)
    .configure(backtraces);
}

/// AutoGraph backtraces (issue 9, SPEC §7).
fn backtraces(cfg: &mut web::ServiceConfig) {
    cfg.service(slashed("/backtraces", |r| {
        r.route(web::get().to(api::backtraces::list))
            .route(web::post().to(api::backtraces::create))
    }))
    .service(slashed("/backtraces/{id}", |r| {
        r.route(web::get().to(api::backtraces::get))
    }));
}

/// Pipelines and jobs (SPEC §4).
fn api_v1_pipelines_jobs(cfg: &mut web::ServiceConfig) {
    cfg.service(slashed("/pipelines", |r| {
        r.route(web::get().to(api::pipelines::list))
            .route(web::post().to(api::pipelines::create))
    }))
    .service(slashed("/pipelines/{id}", |r| {
        r.route(web::get().to(api::pipelines::get))
            .route(web::delete().to(api::pipelines::delete))
    }))
    .service(slashed("/jobs", |r| {
        r.route(web::get().to(api::jobs::list))
            .route(web::post().to(api::jobs::create))
    }))
    .service(slashed("/jobs/{id}", |r| {
        r.route(web::get().to(api::jobs::get))
            .route(web::put().to(api::jobs::update))
    }));
}

/// The download audit trail and the anti-fraud lists (issue 8).
fn fraud_and_audit(cfg: &mut web::ServiceConfig) {
    cfg.service(slashed("/downloads", |r| {
        r.route(web::get().to(api::audit::list))
    }))
    .service(slashed("/downloads/{id:[0-9]{1,18}}", |r| {
        r.route(web::get().to(api::audit::get))
    }))
    .service(slashed("/fraud/lists", |r| {
        r.route(web::get().to(api::fraud::lists))
    }))
    .service(slashed("/fraud/lists/{name}", |r| {
        r.route(web::put().to(api::fraud::import))
            .route(web::delete().to(api::fraud::remove))
    }))
    .service(slashed("/fraud/check", |r| {
        r.route(web::get().to(api::fraud::check))
    }));
}

/// The resource `build` makes, at `path` and at `path/`, answering 405 in our error
/// shape for other methods. Two resources, not one with two patterns: actix matches a
/// resource of several patterns with a regex set, even when both are static, and that
/// was a tenth of the CPU time of issuing a link.
fn slashed(path: &'static str, build: impl Fn(Resource) -> Resource) -> Slashed {
    let one = |p: String| {
        build(web::resource(p)).default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::new(ErrorKind::MethodNotAllowed, "method_not_allowed"))
        }))
    };
    Slashed([one(path.to_string()), one(format!("{path}/"))])
}

struct Slashed([Resource; 2]);

impl HttpServiceFactory for Slashed {
    fn register(self, config: &mut AppService) {
        for r in self.0 {
            r.register(config);
        }
    }
}

async fn no_route(_req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorKind::NotFound("resource"), "no_such_route"))
}

/// Errors are built as JSON; when the request asked for XML, `human` or HTML, render
/// them again in that form (the error travels in the response's extensions).
async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let rendering = Rendering::lenient(req.request());
    let res = next.call(req).await?;
    let err = res.response().extensions().get::<ApiError>().cloned();
    match err {
        Some(err) if rendering != Rendering::default() => {
            let (req, old) = res.into_parts();
            // The old body may hold an unread request body that must outlive the answer
            // (see api::multipart::keep_unread_on_error).
            let new = api::multipart::holding(rendering.error(&err), Box::new(old.into_body()));
            Ok(ServiceResponse::new(req, new).map_into_boxed_body())
        }
        _ => Ok(res.map_into_boxed_body()),
    }
}
