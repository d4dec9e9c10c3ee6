//! `filegate upload FILE`: sends a file to a running server as one multipart POST, with
//! an application's credentials, and checks the server's sha256 against its own.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::http::{self, Base, Body};
use super::progress::Progress;
use crate::cli::UploadArgs;
use crate::config::Config;
use crate::error::StartupError;
use crate::ids;

pub fn run(config: &Config, args: UploadArgs) -> Result<(), StartupError> {
    let err = StartupError::Other;
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| default_server(&config.server.listen));
    let base = Base::parse(&server).map_err(err)?;
    let (Some(client_id), Some(client_secret)) = (args.client_id.clone(), args.client_secret.clone()) else {
        return Err(err(
            "credentials needed: --client-id and --client-secret, or FILEGATE_CLIENT_ID and \
             FILEGATE_CLIENT_SECRET"
                .into(),
        ));
    };
    let mut file = File::open(&args.file).map_err(|e| err(format!("{}: {e}", args.file.display())))?;
    let size = file
        .metadata()
        .map_err(|e| err(format!("{}: {e}", args.file.display())))?
        .len();

    let token = fetch_token(&base, &client_id, &client_secret)?;
    let name = file_name(&args.file);
    let mut query = Vec::new();
    if let Some(k) = &args.object_key {
        query.push(("object_key", k.clone()));
    }
    if let Some(p) = &args.pipeline {
        query.push(("pipeline_id", p.clone()));
    }
    if let Some(e) = args.expires_at {
        query.push(("expires_at", e.to_string()));
    }
    if args.autograph {
        query.push(("autograph", "true".into()));
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();

    let mut boundary_raw = [0u8; 16];
    ids::random_bytes(&mut boundary_raw);
    let boundary = format!("filegate-{}", ids::hex(&boundary_raw));
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n",
        quote(&name)
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let body = Body {
        head: head.into_bytes(),
        stream: Some((&mut file, size)),
        tail: tail.into_bytes(),
    };

    let mut bar = Progress::new(size, std::io::stderr().is_terminal());
    let mut hasher = Sha256::new();
    let res = http::send(
        &base,
        "POST",
        &format!("/v1/files/uploads/?{query}"),
        &[
            ("Authorization", format!("Bearer {token}")),
            (
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            ),
        ],
        body,
        &mut |sent, bytes| {
            hasher.update(bytes);
            bar.update(sent);
        },
    )
    .map_err(|e| err(format!("{server}: {e}")))?;
    bar.finish();
    let v = answer(&res.body);
    if res.status != 201 {
        return Err(err(format!("upload refused: {}", describe(res.status, &v))));
    }
    let f = &v["upload"]["file"];
    let sha = ids::hex(hasher.finalize().as_slice());
    let id = f["id"].as_str().unwrap_or_default().to_string();
    if f["sha256"].as_str() != Some(sha.as_str()) {
        // Something between us and the disk changed the bytes: do not leave a bad copy.
        let _ = http::send(
            &base,
            "DELETE",
            &format!("/v1/files/{id}"),
            &[("Authorization", format!("Bearer {token}"))],
            Body::bytes(Vec::new()),
            &mut |_, _| {},
        );
        return Err(err(format!(
            "the server stored sha256 {} but the file has {sha}; the copy was deleted",
            f["sha256"]
        )));
    }
    let mut out = std::io::stdout().lock();
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "never".into(),
        other => other.to_string(),
    };
    for key in [
        "id",
        "name",
        "object_key",
        "size",
        "mime_type",
        "md5_checksum",
        "sha256",
        "expires_at",
        "uri",
    ] {
        let _ = writeln!(out, "{key}: {}", show(&f[key]));
    }
    Ok(())
}

/// `http://` and the listen address, with a wildcard address replaced by loopback.
fn default_server(listen: &str) -> String {
    let addr = match listen.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    };
    format!("http://{addr}")
}

fn fetch_token(base: &Base, id: &str, secret: &str) -> Result<String, StartupError> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let res = http::send(
        base,
        "POST",
        "/v1/oauth2/token",
        &[
            ("Authorization", format!("Basic {basic}")),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        Body::bytes(b"grant_type=client_credentials".to_vec()),
        &mut |_, _| {},
    )
    .map_err(|e| StartupError::Other(format!("cannot reach the server: {e}")))?;
    let v = answer(&res.body);
    match v["access_token"].as_str() {
        Some(t) if res.status == 200 => Ok(t.to_string()),
        _ => Err(StartupError::Other(format!(
            "no token for {id}: {}",
            describe(res.status, &v)
        ))),
    }
}

fn answer(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// `413 upload_too_large` or `409 object_key_exists (object_key)`.
fn describe(status: u16, v: &Value) -> String {
    let e = &v["error"];
    let mut s = format!("HTTP {status}");
    if let Some(r) = e["reason"].as_str() {
        s.push(' ');
        s.push_str(r);
    }
    if let Some(p) = e["param"].as_str() {
        s.push_str(&format!(" ({p})"));
    }
    s
}

/// The file's own name, as the display name.
fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

/// A name inside a quoted multipart header parameter: `"` and `\` escaped, no line breaks.
fn quote(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(default_server("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(default_server("127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(quote("a\"b\\c\nd"), "a\\\"b\\\\cd");
    }
}
