//! JSON request bodies: the resource wrapper, known fields only, typed values.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The object of `{"wrapper":{…}}`, or the whole body when it has no such wrapper.
/// Anything but a JSON object → 400 `invalid_body`.
pub fn object(raw: &[u8], wrapper: &str) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(raw).map_err(|_| ApiError::bad_request("invalid_body"))?;
    let Value::Object(mut m) = v else {
        return Err(ApiError::bad_request("invalid_body"));
    };
    if m.len() == 1 {
        if let Some(Value::Object(inner)) = m.remove(wrapper) {
            return Ok(inner);
        }
    }
    if m.contains_key(wrapper) {
        return Err(ApiError::bad_request("invalid_body").with_param(wrapper.to_string()));
    }
    Ok(m)
}

/// 400 `unknown_field` naming the first field of `m` outside `allowed` (a typo must not
/// be silently dropped); `prefix` is prepended to the name in the error.
pub fn only(m: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid("unknown_field", format!("{prefix}{k}"))),
        None => Ok(()),
    }
}

/// A string field; absent or null → `None`; another type → 400 `invalid_value`.
pub fn opt_string(m: &Map<String, Value>, key: &str, param: &str) -> Result<Option<String>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid("invalid_value", param.to_string())),
    }
}

/// A whole number given as a JSON integer or a string of digits (with an optional `-`);
/// absent or null → `None`; anything else → 400 `reason` for `key`.
pub fn opt_int(m: &Map<String, Value>, key: &str, reason: &'static str) -> Result<Option<i64>, ApiError> {
    let bad = || ApiError::invalid(reason, key.to_string());
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map(Some).map_err(|_| bad())
        }
        Some(_) => Err(bad()),
    }
}

/// The `id` of a link field given as `{"id":"…"}` (other fields of a link, such as
/// `href`, are ignored) or as the bare id string.
pub fn link_id(v: &Value, param: &str) -> Result<Option<String>, ApiError> {
    let id = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.as_str(),
        Value::Object(o) => match o.get("id") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(ApiError::invalid("invalid_id", param.to_string())),
        },
        _ => return Err(ApiError::invalid("invalid_id", param.to_string())),
    };
    if crate::ids::is_id(id) {
        Ok(Some(id.to_string()))
    } else {
        Err(ApiError::invalid("invalid_id", param.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrapper_is_optional_and_unknown_fields_are_named() {
        let m = object(br#"{"job":{"a":1}}"#, "job").unwrap();
        assert_eq!(m["a"], 1);
        let m = object(br#"{"a":1}"#, "job").unwrap();
        assert_eq!(m["a"], 1);
        assert_eq!(object(b"[1]", "job").unwrap_err().reason, "invalid_body");
        assert_eq!(object(b"", "job").unwrap_err().reason, "invalid_body");
        assert_eq!(
            object(br#"{"job":{},"x":1}"#, "job").unwrap_err().reason,
            "invalid_body"
        );
        let e = only(&m, &["b"], "job.").unwrap_err();
        assert_eq!(
            (e.reason.as_ref(), e.param.as_deref()),
            ("unknown_field", Some("job.a"))
        );
    }

    #[test]
    fn typed_values() {
        let m = json!({"n": 5, "s": "7", "neg": "-2", "f": 1.5, "bad": "1e3", "str": "x", "num": 3});
        let m = m.as_object().unwrap();
        assert_eq!(opt_int(m, "n", "r").unwrap(), Some(5));
        assert_eq!(opt_int(m, "s", "r").unwrap(), Some(7));
        assert_eq!(opt_int(m, "neg", "r").unwrap(), Some(-2));
        assert_eq!(opt_int(m, "missing", "r").unwrap(), None);
        assert!(opt_int(m, "f", "r").is_err());
        assert!(opt_int(m, "bad", "r").is_err());
        assert_eq!(opt_string(m, "str", "p").unwrap().as_deref(), Some("x"));
        assert_eq!(opt_string(m, "num", "p").unwrap_err().reason, "invalid_value");
        let id = "0123456789abcdef01234567";
        assert_eq!(
            link_id(&json!({"id": id, "href": "x"}), "p").unwrap().as_deref(),
            Some(id)
        );
        assert_eq!(link_id(&json!(id), "p").unwrap().as_deref(), Some(id));
        assert_eq!(
            link_id(&json!({"id": "nope"}), "p").unwrap_err().reason,
            "invalid_id"
        );
    }
}
