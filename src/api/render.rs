//! Answers in the form the client asked for: JSON, XML, indented (`human=true`), or an
//! HTML page for a browser with `human=true` (SPEC §1).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde_json::{Map, Value};

use super::params::{parse_bool, Params};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Json,
    Xml,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendering {
    pub form: Form,
    pub human: bool,
    /// `None`: JSON keeps nulls, XML leaves them out; `Some(b)`: both follow `b`.
    pub show_null: Option<bool>,
}

impl Default for Rendering {
    fn default() -> Self {
        Rendering {
            form: Form::Json,
            human: false,
            show_null: None,
        }
    }
}

impl Rendering {
    /// Reads `format`, `human`, `show_null` and `Accept`; a bad value → 400.
    pub fn negotiate(req: &HttpRequest, params: &Params) -> Result<Rendering, ApiError> {
        let human = params.flag("human")?;
        let show_null = params.bool("show_null")?;
        let form = match params.get("format") {
            Some("json") => Form::Json,
            Some("xml") => Form::Xml,
            Some(_) => return Err(ApiError::invalid("invalid_format", "format")),
            None => from_accept(req, human),
        };
        Ok(Rendering {
            form,
            human,
            show_null,
        })
    }

    /// Like [`negotiate`](Self::negotiate) but never fails: for rendering errors.
    pub fn lenient(req: &HttpRequest) -> Rendering {
        let params = Params::parse_lenient(req.query_string());
        let human = params.get("human").and_then(parse_bool).unwrap_or(false);
        let show_null = params.get("show_null").and_then(parse_bool);
        let form = match params.get("format") {
            Some("xml") => Form::Xml,
            Some(_) => Form::Json,
            None => from_accept(req, human),
        };
        Rendering {
            form,
            human,
            show_null,
        }
    }

    /// 200 with `value`, a one-key object `{"resource": …}` or a list wrapper.
    pub fn ok(&self, value: Value) -> HttpResponse {
        self.respond(StatusCode::OK, value)
    }

    pub fn respond(&self, status: StatusCode, value: Value) -> HttpResponse {
        let value = self.prune(value);
        let mut res = HttpResponse::build(status);
        res.insert_header((header::VARY, "Accept"));
        match self.form {
            Form::Json => {
                let body = if self.human {
                    serde_json::to_string_pretty(&value)
                } else {
                    serde_json::to_string(&value)
                }
                .unwrap_or_default();
                res.content_type("application/json").body(body)
            }
            Form::Xml => res
                .content_type("application/xml; charset=utf-8")
                .body(to_xml(&value, self.human)),
            Form::Html => {
                let title = value
                    .as_object()
                    .and_then(|o| o.keys().next().cloned())
                    .unwrap_or_default();
                let page = filegate_templates::answer_page(&title, status.as_u16(), &value);
                res.content_type("text/html; charset=utf-8")
                    .body(page.into_string())
            }
        }
    }

    /// Renders an error in this form, keeping the error's status and headers.
    pub fn error(&self, err: &ApiError) -> HttpResponse {
        let mut res = self.respond(err.status(), err.to_value());
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        if err.kind == crate::error::ErrorKind::InvalidToken {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        res
    }

    fn prune(&self, v: Value) -> Value {
        let keep_null = self.show_null.unwrap_or(self.form != Form::Xml);
        if keep_null {
            v
        } else {
            drop_nulls(v)
        }
    }
}

fn drop_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(drop_nulls).collect()),
        other => other,
    }
}

/// Picks JSON or XML from `Accept` (highest q wins, JSON on ties and by default); HTML
/// only for `human=true` from a client that prefers `text/html`.
fn from_accept(req: &HttpRequest, human: bool) -> Form {
    let Some(accept) = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Form::Json;
    };
    let mut best: Option<(f32, Form)> = None;
    let mut html_q = 0.0f32;
    for part in accept.split(',') {
        let mut it = part.split(';');
        let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
            .next()
            .unwrap_or(1.0);
        let form = match media.as_str() {
            "application/json" => Form::Json,
            "application/xml" | "text/xml" => Form::Xml,
            "text/html" => {
                html_q = html_q.max(q);
                continue;
            }
            _ => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, form));
        }
    }
    if human && html_q > 0.0 && best.is_none_or(|(bq, _)| html_q >= bq) {
        return Form::Html;
    }
    match best {
        Some((q, f)) if q > 0.0 => f,
        _ => Form::Json,
    }
}

/// The element name for one entry of an array named `plural`.
pub fn singular(plural: &str) -> String {
    match plural {
        "entries" => "entry".into(),
        "items" => "item".into(),
        p if p.ends_with("ies") => format!("{}y", &p[..p.len() - 3]),
        p if p.ends_with('s') && p.len() > 1 => p[..p.len() - 1].into(),
        _ => "item".into(),
    }
}

/// SPEC §1's mapping: the wrapper key is the root element; for a list wrapper
/// (`{"files":[…],"total":N,…}`) the root holds the entries and then the other fields.
pub fn to_xml(value: &Value, human: bool) -> String {
    let mut w = if human {
        Writer::new_with_indent(Vec::new(), b' ', 2)
    } else {
        Writer::new(Vec::new())
    };
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    match value {
        Value::Object(m) if !m.is_empty() => {
            let mut it = m.iter();
            let (root, first) = it.next().expect("non-empty");
            let root = xml_name(root);
            let _ = w.write_event(Event::Start(BytesStart::new(root.as_str())));
            match first {
                Value::Array(a) => {
                    let child = singular(&root);
                    for v in a {
                        write_field(&mut w, &child, v);
                    }
                }
                Value::Object(inner) => write_children(&mut w, inner),
                other => write_text(&mut w, other),
            }
            for (k, v) in it {
                write_field(&mut w, k, v);
            }
            let _ = w.write_event(Event::End(BytesEnd::new(root.as_str())));
        }
        _ => {
            let _ = w.write_event(Event::Empty(BytesStart::new("response")));
        }
    }
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

fn write_children(w: &mut Writer<Vec<u8>>, m: &Map<String, Value>) {
    for (k, v) in m {
        write_field(w, k, v);
    }
}

fn write_field(w: &mut Writer<Vec<u8>>, key: &str, v: &Value) {
    let name = xml_name(key);
    let mut start = BytesStart::new(name.as_str());
    if name != key {
        start.push_attribute(("name", key));
    }
    match v {
        Value::Null => {
            let _ = w.write_event(Event::Empty(start));
            return;
        }
        _ => {
            let _ = w.write_event(Event::Start(start));
        }
    }
    match v {
        Value::Object(m) => write_children(w, m),
        Value::Array(a) => {
            let child = singular(&name);
            for item in a {
                write_field(w, &child, item);
            }
        }
        other => write_text(w, other),
    }
    let _ = w.write_event(Event::End(BytesEnd::new(name.as_str())));
}

fn write_text(w: &mut Writer<Vec<u8>>, v: &Value) {
    let text = match v {
        Value::String(s) => xml_safe(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let _ = w.write_event(Event::Text(BytesText::new(&text)));
}

/// Characters XML 1.0 cannot carry at all become U+FFFD (escaping cannot help them).
fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// `key` if it is a safe XML element name, else `field` (the key goes in a `name` attribute).
fn xml_name(key: &str) -> String {
    let ok = !key.is_empty()
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !key.to_ascii_lowercase().starts_with("xml");
    if ok {
        key.to_string()
    } else {
        "field".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn xml_maps_wrapper_arrays_nulls_and_escapes() {
        let v = json!({"files":[{"id":"a","name":"x<&>\"y","n":null,"ok":true}],"total":1});
        let x = to_xml(&v, false);
        assert!(x.contains("<files><file><id>a</id><name>x&lt;&amp;&gt;&quot;y</name><n/><ok>true</ok></file><total>1</total></files>"), "{x}");
        let x = to_xml(
            &json!({"job":{"outputs":[{"output_name":"a"}],"user_data":{"weird key":"\u{1}"}}}),
            true,
        );
        assert!(
            x.contains("<outputs>")
                && x.contains("<output>")
                && x.contains("<field name=\"weird key\">\u{FFFD}</field>"),
            "{x}"
        );
    }

    #[test]
    fn singulars() {
        assert_eq!(singular("files"), "file");
        assert_eq!(singular("entries"), "entry");
        assert_eq!(singular("items"), "item");
        assert_eq!(singular("data"), "item");
    }
}
