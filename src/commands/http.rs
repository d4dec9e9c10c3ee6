//! A minimal blocking HTTP/1.1 client over `std::net::TcpStream`, for `filegate upload`
//! talking to a server on this host or network. Plain `http://` only: TLS would bring
//! a TLS stack into the appliance for one command; use curl against an https:// URL.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Where the server is: `http://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// `host:port`, as connected to and sent in `Host`.
    pub authority: String,
    /// Path prefix without a trailing slash (empty for the root).
    pub prefix: String,
}

impl Base {
    pub fn parse(url: &str) -> Result<Base, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "{url}: https:// is not supported by this command; use the server's http:// \
                     address on its host (--server http://127.0.0.1:8080) or curl"
                ))
            }
            _ => return Err(format!("{url}: expected an http:// URL")),
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains(['@', '?', '#', ' ']) {
            return Err(format!("{url}: no usable host"));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Base {
            authority,
            prefix: prefix.to_string(),
        })
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A request body: some bytes, then optionally a reader of known length, then more bytes.
pub struct Body<'a> {
    pub head: Vec<u8>,
    pub stream: Option<(&'a mut dyn Read, u64)>,
    pub tail: Vec<u8>,
}

impl Body<'_> {
    pub fn bytes(b: Vec<u8>) -> Body<'static> {
        Body {
            head: b,
            stream: None,
            tail: Vec::new(),
        }
    }
    fn len(&self) -> u64 {
        self.head.len() as u64 + self.stream.as_ref().map_or(0, |s| s.1) + self.tail.len() as u64
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer. `progress` is
/// called with the bytes of the streamed part sent so far. If the server answers early
/// (e.g. 413) and closes, the answer is still read and returned.
pub fn send(
    base: &Base,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    mut body: Body<'_>,
    progress: &mut dyn FnMut(u64, &[u8]),
) -> io::Result<Response> {
    let mut sock = TcpStream::connect(&base.authority)?;
    sock.set_read_timeout(Some(Duration::from_secs(3600)))?;
    let mut head = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        base.prefix,
        base.authority,
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let written = write_body(&mut sock, head.as_bytes(), &mut body, progress);
    let answer = read_response(&mut sock);
    match (written, answer) {
        (_, Ok(r)) => Ok(r),
        (Err(e), Err(_)) | (Ok(()), Err(e)) => Err(e),
    }
}

fn write_body(
    sock: &mut TcpStream,
    head: &[u8],
    body: &mut Body<'_>,
    progress: &mut dyn FnMut(u64, &[u8]),
) -> io::Result<()> {
    sock.write_all(head)?;
    sock.write_all(&body.head)?;
    if let Some((reader, len)) = body.stream.as_mut() {
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        while sent < *len {
            let want = buf.len().min((*len - sent) as usize);
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while sending",
                ));
            }
            sock.write_all(&buf[..n])?;
            sent += n as u64;
            progress(sent, &buf[..n]);
        }
    }
    sock.write_all(&body.tail)?;
    sock.flush()
}

fn read_response(sock: &mut TcpStream) -> io::Result<Response> {
    let mut r = BufReader::new(sock);
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("not an HTTP answer"))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("answer ended in its headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::Base;

    #[test]
    fn base_urls() {
        let b = Base::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!((b.authority.as_str(), b.prefix.as_str()), ("127.0.0.1:8080", ""));
        let b = Base::parse("http://files.example/fg").unwrap();
        assert_eq!(
            (b.authority.as_str(), b.prefix.as_str()),
            ("files.example:80", "/fg")
        );
        let b = Base::parse("http://[::1]:9000").unwrap();
        assert_eq!(b.authority, "[::1]:9000");
        assert!(Base::parse("https://x").unwrap_err().contains("https"));
        assert!(Base::parse("ftp://x").is_err());
        assert!(Base::parse("http://").is_err());
    }
}
