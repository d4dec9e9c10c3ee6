//! `expand` and `expand_all` (SPEC §1): which of an endpoint's links (`{id, href}`)
//! become the whole object they point at. Every endpoint parses them here, with the
//! link names it can expand; another name → 400 `invalid_expand` (param `expand`).

use super::params::Params;
use crate::error::ApiError;

/// The links a request asked to expand, among its endpoint's `names`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expand {
    names: &'static [&'static str],
    /// Bit `i` set: `names[i]` is expanded.
    on: u32,
}

impl Expand {
    /// `expand` (comma separated, trimmed, empty names ignored) and `expand_all`
    /// (a boolean, as [`Params::flag`]) for an endpoint whose expandable links are `names`.
    pub fn parse(p: &Params, names: &'static [&'static str]) -> Result<Expand, ApiError> {
        debug_assert!(names.len() <= 32);
        let mut on = if p.flag("expand_all")? {
            (1u32 << names.len()) - 1
        } else {
            0
        };
        for name in p.get("expand").unwrap_or("").split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            match names.iter().position(|n| *n == name) {
                Some(i) => on |= 1 << i,
                None => return Err(ApiError::invalid("invalid_expand", "expand")),
            }
        }
        Ok(Expand { names, on })
    }

    /// For an endpoint whose answer has no links: `expand` must name nothing (an empty
    /// `expand=` and `expand_all` are fine).
    pub fn nothing(p: &Params) -> Result<(), ApiError> {
        Self::parse(p, &[]).map(drop)
    }

    /// True when link `name` is to be expanded.
    pub fn has(&self, name: &str) -> bool {
        self.names
            .iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.on & (1 << i) != 0)
    }

    /// True when some link is to be expanded.
    pub fn any(&self) -> bool {
        self.on != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str, names: &'static [&'static str]) -> Result<Expand, ApiError> {
        Expand::parse(&Params::parse(q, &[]).unwrap(), names)
    }

    #[test]
    fn names_are_comma_separated_trimmed_and_empty_ones_ignored() {
        let x = parse("expand=%20file%20,,", &["file", "pipeline"]).unwrap();
        assert!(x.has("file") && !x.has("pipeline") && x.any());
        let x = parse("expand=", &["file"]).unwrap();
        assert!(!x.any());
        let x = parse("expand=pipeline,file", &["file", "pipeline"]).unwrap();
        assert!(x.has("file") && x.has("pipeline"));
        assert!(!x.has("job"), "a name the endpoint does not have is never on");
    }

    #[test]
    fn expand_all_turns_every_link_on_and_is_a_boolean() {
        let x = parse("expand_all=true", &["file", "pipeline"]).unwrap();
        assert!(x.has("file") && x.has("pipeline"));
        assert!(!parse("expand_all=0", &["file"]).unwrap().any());
        let e = parse("expand_all=yes", &["file"]).unwrap_err();
        assert_eq!(
            (e.reason.as_ref(), e.param.as_deref()),
            ("invalid_boolean", Some("expand_all"))
        );
    }

    #[test]
    fn an_unknown_name_is_invalid_expand() {
        let e = parse("expand=file,bogus", &["file"]).unwrap_err();
        assert_eq!(
            (e.reason.as_ref(), e.param.as_deref()),
            ("invalid_expand", Some("expand"))
        );
        let p = Params::parse("expand=file", &[]).unwrap();
        assert_eq!(Expand::nothing(&p).unwrap_err().reason, "invalid_expand");
        let p = Params::parse("expand=&expand_all=true", &[]).unwrap();
        assert!(Expand::nothing(&p).is_ok());
    }
}
