//! A minimal HTTP/1.1 client for the local servers (plain HTTP on loopback only): enough to
//! see that a server answers and to create a bucket or a container.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("`{url}` is not a plain http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse().with_context(|| format!("bad port in `{url}`"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            bail!("no host in `{url}`");
        }
        Ok(Url {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Send one request (`Connection: close`) and read the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<Response> {
    let url = Url::parse(url)?;
    let address = (url.host.as_str(), url.port)
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("{} does not resolve", url.host))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nContent-Length: 0\r\n",
        url.path, url.host, url.port
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| {
            format!(
                "not an HTTP response: {:?}",
                text.chars().take(80).collect::<String>()
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = Url::parse("http://127.0.0.1:10000/devstoreaccount1?comp=list").unwrap();
        assert_eq!(
            url,
            Url {
                host: "127.0.0.1".into(),
                port: 10000,
                path: "/devstoreaccount1?comp=list".into()
            }
        );
        assert_eq!(Url::parse("http://localhost").unwrap().path, "/");
        assert!(Url::parse("https://example.com").is_err());
        assert!(Url::parse("http://:80/").is_err());
    }

    #[test]
    fn a_request_against_a_one_shot_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            conn.write_all(b"HTTP/1.1 409 Conflict\r\nContent-Length: 6\r\n\r\nexists")
                .unwrap();
            request
        });
        let response = request(
            "PUT",
            &format!("http://127.0.0.1:{port}/bucket"),
            &[("x-test", "1".into())],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(response.status, 409);
        assert_eq!(response.body, "exists");
        let seen = server.join().unwrap();
        assert!(seen.starts_with("PUT /bucket HTTP/1.1\r\n"), "{seen}");
        assert!(seen.contains("x-test: 1\r\n"), "{seen}");
    }
}
