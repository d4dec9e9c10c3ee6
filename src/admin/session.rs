//! Console sessions, CSRF tokens and login throttling. Sessions live in memory: a
//! restart logs admins out, which is the safe failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids;

pub const COOKIE: &str = "filegate_session";
pub const LOGIN_COOKIE: &str = "filegate_login";
/// A session dies after this long without a request…
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// …and in any case after this long.
pub const ABSOLUTE_MS: i64 = 12 * 3600 * 1000;
/// Failed logins allowed per client address within `WINDOW_MS`.
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub created_ms: i64,
    pub last_ms: i64,
}

#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    ids::random_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

/// Constant-time equality of two tokens.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// Starts a session; returns (cookie value, session).
    pub fn create(&self, now_ms: i64) -> (String, Session) {
        let cookie = random_token();
        let s = Session {
            csrf: random_token(),
            created_ms: now_ms,
            last_ms: now_ms,
        };
        if let Ok(mut m) = self.live.lock() {
            m.retain(|_, s| alive(s, now_ms));
            m.insert(key(&cookie), s.clone());
        }
        (cookie, s)
    }

    /// The live session of this cookie, refreshed; expired ones are dropped.
    pub fn get(&self, cookie: &str, now_ms: i64) -> Option<Session> {
        let mut m = self.live.lock().ok()?;
        let k = key(cookie);
        let s = m.get_mut(&k)?;
        if !alive(s, now_ms) {
            m.remove(&k);
            return None;
        }
        s.last_ms = now_ms;
        Some(s.clone())
    }

    pub fn destroy(&self, cookie: &str) {
        if let Ok(mut m) = self.live.lock() {
            m.remove(&key(cookie));
        }
    }

    /// Milliseconds this address must wait before trying again, if it is throttled.
    pub fn throttled(&self, ip: IpAddr, now_ms: i64) -> Option<i64> {
        let m = self.failures.lock().ok()?;
        let (n, start) = *m.get(&ip)?;
        (n >= MAX_FAILURES && now_ms - start < WINDOW_MS).then(|| WINDOW_MS - (now_ms - start))
    }

    pub fn failed(&self, ip: IpAddr, now_ms: i64) {
        if let Ok(mut m) = self.failures.lock() {
            let e = m.entry(ip).or_insert((0, now_ms));
            if now_ms - e.1 >= WINDOW_MS {
                *e = (0, now_ms);
            }
            e.0 += 1;
        }
    }

    pub fn succeeded(&self, ip: IpAddr) {
        if let Ok(mut m) = self.failures.lock() {
            m.remove(&ip);
        }
    }
}

fn alive(s: &Session, now_ms: i64) -> bool {
    now_ms - s.last_ms < IDLE_MS && now_ms - s.created_ms < ABSOLUTE_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_absolutely() {
        let s = Sessions::default();
        let (c, _) = s.create(0);
        assert!(s.get(&c, IDLE_MS - 1).is_some());
        assert!(s.get(&c, 2 * IDLE_MS - 2).is_some(), "refreshed by use");
        assert!(s.get(&c, 4 * IDLE_MS).is_none());
        let (c, _) = s.create(0);
        let mut t = 0;
        while t < ABSOLUTE_MS - IDLE_MS {
            t += IDLE_MS / 2;
            s.get(&c, t);
        }
        assert!(s.get(&c, ABSOLUTE_MS).is_none());
        assert!(s.get("forged", 0).is_none());
    }

    #[test]
    fn five_failures_throttle_an_address_for_the_window() {
        let s = Sessions::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(s.throttled(ip, 10).is_none());
            s.failed(ip, 10);
        }
        assert!(s.throttled(ip, 11).is_some());
        assert!(s.throttled("192.0.2.2".parse().unwrap(), 11).is_none());
        assert!(s.throttled(ip, 10 + WINDOW_MS).is_none());
    }
}
