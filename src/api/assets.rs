//! Static assets of the console (CSS, icons), embedded in the binary.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

pub async fn asset(path: web::Path<String>) -> HttpResponse {
    let name = path.into_inner();
    match Assets::get(&name) {
        Some(f) => HttpResponse::Ok()
            .content_type(mime_guess::from_path(&name).first_or_octet_stream().as_ref())
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((
                header::ETAG,
                format!("\"{}\"", crate::ids::hex(&f.metadata.sha256_hash()[..8])),
            ))
            .body(f.data.into_owned()),
        None => HttpResponse::NotFound().finish(),
    }
}
