//! `GET /healthz`: is the catalog answering and the store writable?

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let catalog = state
        .catalog
        .call(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await
        .is_ok();
    let store = {
        let s = state.store.clone();
        web::block(move || s.check_writable())
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    };
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    let body = json!({"status": word(catalog && store), "catalog": word(catalog), "store": word(store)});
    if catalog && store {
        HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Cache-Control", "no-store"))
            .json(body)
    }
}
