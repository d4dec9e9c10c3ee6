//! Finding marks in a suspect copy as it streams past: only a window of
//! [`super::MAX_TEXT`] bytes plus the current piece is kept, whatever the copy's size,
//! and a mark split across pieces is found all the same.

use super::{parse, Candidate, MAGIC, MAX_TEXT};

/// Most candidate marks kept from one copy (a copy holds one; more is someone playing).
pub const MAX_CANDIDATES: usize = 64;

#[derive(Debug, Default)]
pub struct Scanner {
    /// Bytes not yet looked at, and the start of a mark waiting for its end.
    buf: Vec<u8>,
    /// Offset in `buf` up to which every possible start of [`MAGIC`] was looked at.
    checked: usize,
    found: Vec<Candidate>,
    /// Things that started like a mark but were not shaped like one.
    misshapen: u64,
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Looks at the next piece of the copy.
    pub fn feed(&mut self, piece: &[u8]) {
        self.buf.extend_from_slice(piece);
        self.scan(false);
    }

    /// The end of the copy: every mark-shaped candidate, in order, without duplicates.
    pub fn finish(mut self) -> (Vec<Candidate>, u64) {
        self.scan(true);
        (self.found, self.misshapen)
    }

    fn scan(&mut self, eof: bool) {
        loop {
            match memchr::memmem::find(&self.buf[self.checked..], MAGIC) {
                Some(i) => {
                    let p = self.checked + i;
                    if self.buf.len() - p < MAX_TEXT && !eof {
                        // Maybe cut off: wait for more bytes (or the end).
                        self.checked = p;
                        break;
                    }
                    let end = (p + MAX_TEXT).min(self.buf.len());
                    match parse(&self.buf[p..end]) {
                        Some(c) => {
                            if !self.found.contains(&c) && self.found.len() < MAX_CANDIDATES {
                                self.found.push(c);
                            }
                        }
                        None => self.misshapen += 1,
                    }
                    self.checked = p + 1;
                }
                None => {
                    // A start of MAGIC may hide in the last MAGIC.len() - 1 bytes.
                    self.checked = self.buf.len().saturating_sub(MAGIC.len() - 1).max(self.checked);
                    break;
                }
            }
        }
        self.buf.drain(..self.checked);
        self.checked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::MarkKey;
    use super::*;

    #[test]
    fn marks_are_found_whatever_the_piece_boundaries() {
        let k = MarkKey::new([3; 32]);
        let m1 = k.mark(&[1; 16], "6b08ff8271f7fb127f98db8d", "alice");
        let m2 = k.mark(&[2; 16], "6b08ff8271f7fb127f98db8d", "bob");
        let mut copy = vec![0u8; 3000];
        copy.extend(b"filegate-autograph:1:broken");
        copy.extend(vec![7u8; 500]);
        copy.extend(&m1);
        copy.extend(vec![9u8; 1000]);
        copy.extend(&m2);
        copy.extend(&m1);
        for piece in [1usize, 2, 7, 20, 21, 22, 100, 999, 10_000] {
            let mut s = Scanner::new();
            for c in copy.chunks(piece) {
                s.feed(c);
                assert!(s.buf.len() < piece + MAX_TEXT + MAGIC.len(), "bounded window");
            }
            let (found, misshapen) = s.finish();
            assert_eq!(
                found.iter().map(|c| c.tag.as_str()).collect::<Vec<_>>(),
                ["alice", "bob"],
                "piece {piece}"
            );
            assert_eq!(misshapen, 1);
        }
        // A mark at the very end, and a copy with none.
        let mut s = Scanner::new();
        s.feed(&m2);
        assert_eq!(s.finish().0.len(), 1);
        let mut s = Scanner::new();
        s.feed(&[0; 100]);
        assert_eq!(s.finish(), (vec![], 0));
    }
}
