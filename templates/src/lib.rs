//! filegate's HTML views: pure functions of plain data, returning maud `Markup`.
//! No database access, no I/O: the caller gathers the data.

pub mod console;

use maud::{html, Markup};
use serde_json::Value;

/// An API answer shown to a person: the same fields as JSON, as a nested table.
pub fn answer_page(title: &str, status: u16, value: &Value) -> Markup {
    console::page(
        title,
        &console::Chrome::default(),
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
