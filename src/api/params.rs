//! Query parameters: parsed once, unknown and repeated names refused.

use crate::error::ApiError;

/// Accepted on every endpoint (SPEC §1).
pub const COMMON: &[&str] = &[
    "format",
    "human",
    "access_token",
    "show_null",
    "expand",
    "expand_all",
];
/// The MediaHub signed-URL parameters, accepted on `/v1/files/…` GETs that a signature
/// authorises (see `auth::signed::accepted_params`).
pub const SIGNED: &[&str] = &["client_id", "expiry_time", "signature", "multi_use"];
/// Accepted on every list endpoint.
pub const LIST: &[&str] = &["start", "limit", "sort", "direction"];

pub const DEFAULT_LIMIT: u64 = 1000;
pub const MAX_LIMIT: u64 = 5000;

#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `query`; any name outside `COMMON` and `allowed` → 400 `unknown_parameter`,
    /// a name given twice → 400 `duplicate_parameter`.
    pub fn parse(query: &str, allowed: &[&[&str]]) -> Result<Params, ApiError> {
        Self::from_pairs(Self::parse_lenient(query).pairs, allowed)
    }

    /// Like [`parse`](Self::parse), for names and values gathered elsewhere (form fields).
    pub fn from_pairs(pairs: Vec<(String, String)>, allowed: &[&[&str]]) -> Result<Params, ApiError> {
        for (i, (k, _)) in pairs.iter().enumerate() {
            if !COMMON.contains(&k.as_str()) && !allowed.iter().any(|set| set.contains(&k.as_str())) {
                return Err(ApiError::invalid("unknown_parameter", k.clone()));
            }
            if pairs[..i].iter().any(|(p, _)| p == k) {
                return Err(ApiError::invalid("duplicate_parameter", k.clone()));
            }
        }
        Ok(Params { pairs })
    }

    /// Parses without judging the names (for error rendering).
    pub fn parse_lenient(query: &str) -> Params {
        Params {
            pairs: form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean (`true`/`false`/`1`/`0`); anything else → 400 `invalid_boolean`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid("invalid_boolean", name)),
        }
    }

    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    /// A whole number in `min..=max`, else 400 `reason` for `name`.
    pub fn u64_in(
        &self,
        name: &str,
        min: u64,
        max: u64,
        reason: &'static str,
    ) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) && is_plain_digits(v) => Ok(Some(n)),
                _ => Err(ApiError::invalid(reason, name)),
            },
        }
    }

    /// `start`, `limit` (default 1000, max 5000) and `direction` (1 or -1; default `default_dir`).
    pub fn paging(&self, default_dir: i8) -> Result<Paging, ApiError> {
        let start = self
            .u64_in("start", 0, i64::MAX as u64, "invalid_start")?
            .unwrap_or(0);
        let limit = self
            .u64_in("limit", 0, MAX_LIMIT, "invalid_limit")?
            .unwrap_or(DEFAULT_LIMIT);
        let direction = match self.get("direction") {
            None => default_dir,
            Some("1") => 1,
            Some("-1") => -1,
            Some(_) => return Err(ApiError::invalid("invalid_direction", "direction")),
        };
        Ok(Paging {
            start,
            limit,
            direction,
        })
    }

    /// Every name and value, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub start: u64,
    pub limit: u64,
    pub direction: i8,
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Digits only: no sign, no spaces, no leading `+` (one canonical spelling).
fn is_plain_digits(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_names_are_refused_with_the_name() {
        let e = Params::parse("file_id=1&anti_frad=true", &[&["file_id"]]).unwrap_err();
        assert_eq!(
            (e.reason.as_ref(), e.param.as_deref()),
            ("unknown_parameter", Some("anti_frad"))
        );
        let e = Params::parse("file_id=1&file_id=2", &[&["file_id"]]).unwrap_err();
        assert_eq!(e.reason, "duplicate_parameter");
        assert!(Params::parse("format=json&human=true", &[]).is_ok());
    }

    #[test]
    fn booleans_are_true_false_one_zero_only() {
        let p = Params::parse("a=1&b=false&c=yes", &[&["a", "b", "c"]]).unwrap();
        assert_eq!(p.bool("a").unwrap(), Some(true));
        assert_eq!(p.bool("b").unwrap(), Some(false));
        assert_eq!(p.bool("c").unwrap_err().reason, "invalid_boolean");
        assert_eq!(p.bool("d").unwrap(), None);
    }

    #[test]
    fn paging_bounds() {
        let p = Params::parse("limit=5001", &[LIST]).unwrap();
        assert_eq!(p.paging(1).unwrap_err().reason, "invalid_limit");
        let p = Params::parse("start=-1", &[LIST]).unwrap();
        assert_eq!(p.paging(1).unwrap_err().reason, "invalid_start");
        let p = Params::parse("direction=-1&limit=20", &[LIST]).unwrap();
        assert_eq!(
            p.paging(1).unwrap(),
            Paging {
                start: 0,
                limit: 20,
                direction: -1
            }
        );
    }
}
