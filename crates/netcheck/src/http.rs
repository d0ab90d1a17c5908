//! Just enough HTTP/1.1 over a probe stream (one request, `Connection: close`, bounded body) to check HTTPS, the WebSocket upgrade and call the REST API through the same paths as media.
use crate::connect::{read_head, status_code, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response body read.
const MAX_BODY: usize = 256 * 1024;

/// A response: status, head (lower-case header names searched by [`header`]) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

/// The value of header `name` in a response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends one request and reads the response; for 101 only the head is read.
pub async fn request(
    mut s: Stream,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: iris-netcheck\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    if let Some(b) = body {
        s.write_all(b).await?;
    }
    s.flush().await?;
    let head = read_head(&mut s).await?;
    let status = status_code(&head).unwrap_or(0);
    if status == 101 {
        return Ok(Response {
            status,
            head,
            body: Vec::new(),
        });
    }
    let mut raw = Vec::new();
    let limit = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok());
    let mut chunk = [0u8; 8192];
    while raw.len() < limit.unwrap_or(MAX_BODY).min(MAX_BODY) {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    let chunked =
        header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(&raw) } else { raw };
    Ok(Response { status, head, body })
}

/// Decodes a chunked body (stops at the first malformed chunk).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(raw.get(..eol).unwrap_or_default()).into_owned();
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 {
            break;
        }
        let Some(data) = raw.get(eol + 2..eol + 2 + size) else {
            break;
        };
        out.extend_from_slice(data);
        raw = raw.get(eol + 4 + size..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
        assert_eq!(dechunk(b"zz\r\n"), b"");
    }

    #[test]
    fn headers_are_found_case_insensitively() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(header(head, "content-length"), Some("12"));
        assert_eq!(header(head, "UPGRADE"), Some("websocket"));
        assert_eq!(header(head, "x"), None);
    }
}
