//! filegate's HTML views: pure functions of plain data, returning maud `Markup`.
//! No database access, no I/O: the caller gathers the data.

use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

const STYLE: &str = r#"
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1f2a37;color:#fff;padding:.6rem 1rem}header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:1rem;max-width:72rem;margin:auto}
table.answer{border-collapse:collapse;background:#fff;width:100%}
table.answer th,table.answer td{border:1px solid #d6dae0;padding:.3rem .5rem;text-align:left;vertical-align:top;word-break:break-word}
table.answer th{background:#eef1f5;font-weight:600;width:12rem}
.null{color:#8a94a3;font-style:italic}.status{color:#5b6573}
"#;

/// The whole page around `body`.
pub fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — filegate" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header { a href="/admin" { "filegate" } }
                main { (body) }
            }
        }
    }
}

/// An API answer shown to a person: the same fields as JSON, as a nested table.
pub fn answer_page(title: &str, status: u16, value: &Value) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            p.status { "HTTP " (status) }
            div #answer { (value_table(value)) }
        },
    )
}

fn value_table(v: &Value) -> Markup {
    match v {
        Value::Object(m) => html! {
            table.answer {
                @for (k, v) in m {
                    tr { th scope="row" { (k) } td { (value_table(v)) } }
                }
            }
        },
        Value::Array(a) => html! {
            table.answer {
                @for (i, v) in a.iter().enumerate() {
                    tr { th scope="row" { (i) } td { (value_table(v)) } }
                }
            }
        },
        Value::Null => html! { span.null { "null" } },
        Value::String(s) => html! { (s) },
        other => html! { (other.to_string()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_page_escapes_and_nests() {
        let v = serde_json::json!({"file":{"name":"<script>","size":3,"job":null}});
        let s = answer_page("file", 200, &v).into_string();
        assert!(s.contains("&lt;script&gt;"));
        assert!(!s.contains("<script>"));
        assert!(s.matches("<table").count() == 2);
    }
}
