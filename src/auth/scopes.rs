//! MediaHub scopes; `mediahub` implies every other `mediahub_*`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Mediahub,
    MediahubRead,
    MediahubWrite,
    MediahubSubmitJobs,
    MediahubDownloadFiles,
    Autograph,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Mediahub,
        Scope::MediahubRead,
        Scope::MediahubWrite,
        Scope::MediahubSubmitJobs,
        Scope::MediahubDownloadFiles,
        Scope::Autograph,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Mediahub => "mediahub",
            Scope::MediahubRead => "mediahub_read",
            Scope::MediahubWrite => "mediahub_write",
            Scope::MediahubSubmitJobs => "mediahub_submit_jobs",
            Scope::MediahubDownloadFiles => "mediahub_download_files",
            Scope::Autograph => "autograph",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scope::ALL.into_iter().collect()
    }

    /// Parses a comma- or space-separated list; `Err(word)` names the first unknown scope.
    pub fn parse(s: &str) -> Result<Scopes, String> {
        let mut set = Scopes::default();
        for w in s.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty()) {
            set.0 |= Scope::parse(w).ok_or_else(|| w.to_string())?.bit();
        }
        Ok(set)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when this set grants `s`, directly or through `mediahub`.
    pub fn grants(self, s: Scope) -> bool {
        if self.0 & s.bit() != 0 {
            return true;
        }
        s != Scope::Autograph && s != Scope::Mediahub && self.0 & Scope::Mediahub.bit() != 0
    }

    /// True when every scope of `other` is granted by this set.
    pub fn covers(self, other: Scopes) -> bool {
        other.iter().all(|s| self.grants(s))
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.0 & s.bit() != 0)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(it: I) -> Self {
        Scopes(it.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

impl fmt::Display for Scopes {
    /// Space-separated, as in RFC 6749 answers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mediahub_implies_the_other_mediahub_scopes_but_not_autograph() {
        let s = Scopes::parse("mediahub").unwrap();
        assert!(s.grants(Scope::MediahubDownloadFiles));
        assert!(s.grants(Scope::MediahubWrite));
        assert!(!s.grants(Scope::Autograph));
        let r = Scopes::parse("mediahub_read").unwrap();
        assert!(!r.grants(Scope::Mediahub));
        assert!(!r.grants(Scope::MediahubWrite));
    }

    #[test]
    fn parse_takes_commas_and_spaces_and_names_unknown_words() {
        let s = Scopes::parse("mediahub_read, autograph mediahub_write").unwrap();
        assert_eq!(s.to_string(), "mediahub_read mediahub_write autograph");
        assert_eq!(Scopes::parse("mediahub,admin").unwrap_err(), "admin");
    }

    #[test]
    fn covers_uses_implication() {
        let app = Scopes::parse("mediahub,autograph").unwrap();
        assert!(app.covers(Scopes::parse("mediahub_read autograph").unwrap()));
        assert!(!Scopes::parse("mediahub_read").unwrap().covers(app));
    }
}
