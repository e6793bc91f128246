//! Reading a request head before anyone parses it, bounded in size and in time.
//!
//! pingora's own request reader applies its timeout to each read, so a client that sends
//! one byte every few seconds (slowloris) could hold a connection forever. Reading the
//! head here, against one deadline, closes that hole and also tells the dispatcher
//! whether the request is a `CONNECT`.

use bytes::BufMut;
use pingora::time::timeout;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Largest request head read here. A longer head is refused with 431, HTTP and CONNECT
/// alike, so every head is bounded by the one head deadline and checked here.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bytes asked for per read; most request heads fit in one.
const READ_CHUNK: usize = 4096;

/// The outcome of reading one request head.
#[derive(Debug)]
pub enum Head {
    /// The head is complete; the buffer may hold bytes that follow it.
    Complete(Vec<u8>),
    /// More than [`MAX_HEAD_BYTES`] arrived without the end of the head.
    TooLarge(Vec<u8>),
    /// The client closed or the read failed.
    Closed,
    /// No byte came within the idle wait: a quiet close, no answer owed.
    Idle,
    /// The head started but did not finish within the head timeout.
    TimedOut,
    /// The first byte cannot start an HTTP/1 request (a TLS handshake, say): answered at
    /// once instead of waiting out the head timeout for a line end that never comes.
    NotHttp(u8),
}

/// Whether `byte` can start a request: a method is a token (RFC 9110 section 5.6.2),
/// and empty lines before the request line are allowed (RFC 9112 section 2.2).
fn can_start_request(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~\r\n".contains(&byte)
}

/// Position just past the blank line that ends a head, if the buffer has one. A line may
/// end in LF alone (RFC 9112 section 2.2 lets a recipient accept that, and pingora's
/// parser does): `printf 'GET / HTTP/1.1\n...\n\n' | nc` is a request, not a wait for
/// the head timeout.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n') {
        let lf = from + i;
        match &buf[lf + 1..] {
            [b'\n', ..] => return Some(lf + 2),
            [b'\r', b'\n', ..] => return Some(lf + 3),
            _ => from = lf + 1,
        }
    }
    None
}

/// What is wrong with the request target of a head's request line, if anything: a
/// control character (NUL, 0x01-0x1F, 0x7F) or a bare space, which pingora would
/// percent-escape and forward, so that the proxy and the target would disagree about
/// what was asked. nginx answers both with 400, as this proxy does.
pub fn request_target_flaw(head: &[u8]) -> Option<&'static str> {
    // Empty lines may come before the request line (RFC 9112 section 2.2).
    let start = head.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = &head[start..];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let method_end = line.iter().position(|&b| b == b' ')?;
    let rest = &line[method_end + 1..];
    // The target runs to the last space: what follows is the version.
    let target = &rest[..rest.iter().rposition(|&b| b == b' ').unwrap_or(rest.len())];
    if target.iter().any(|&b| b < 0x20 || b == 0x7f) {
        Some("a control character")
    } else if target.contains(&b' ') {
        Some("a space")
    } else {
        None
    }
}

/// What is wrong with a head's `Content-Length`, if anything: more than one header, or a
/// value that is not one plain number (`3, 3`, `+3`, empty). pingora would forward such
/// a value as it is, and the target could frame the body differently than the proxy did.
pub fn content_length_flaw(head: &[u8]) -> Option<&'static str> {
    let end = head_end(head).unwrap_or(head.len());
    let mut seen = 0;
    for line in head[..end].split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon].eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        seen += 1;
        if seen > 1 {
            return Some("more than one Content-Length header");
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Some("the value is not one number");
        }
    }
    None
}

/// Reads a request head: waits up to `idle` for its first byte, then up to
/// `head_timeout` (from that first byte) for the end of the head.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    idle: Duration,
    head_timeout: Duration,
) -> Head {
    // Read straight into the buffer's spare capacity: no zeroed scratch chunk to copy
    // from (that zeroing alone cost about 4,000 instructions per request).
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut deadline = Instant::now() + idle;
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let before = buf.len();
        // pingora's timer, as pingora's own keep-alive read uses. A tokio timer registered
        // here woke the runtime's driver through its eventfd on every request: strace
        // counted one write(2) and 0.4 epoll_wait(2) more per request than with this one,
        // and the proxy's CPU per sequential keep-alive request was 96-100 µs against
        // 103-107 µs (20,000 requests, three runs each).
        let left = deadline.saturating_duration_since(Instant::now());
        let read = timeout(left, stream.read_buf(&mut (&mut buf).limit(READ_CHUNK))).await;
        let n = match read {
            Err(_) if buf.is_empty() => return Head::Idle,
            Err(_) => return Head::TimedOut,
            Ok(Err(_)) | Ok(Ok(0)) => return Head::Closed,
            Ok(Ok(n)) => n,
        };
        if before == 0 {
            if !can_start_request(buf[0]) {
                return Head::NotHttp(buf[0]);
            }
            deadline = Instant::now() + head_timeout;
        }
        // The blank line's first LF may have come with the previous read.
        let search_from = before.saturating_sub(2);
        debug_assert_eq!(buf.len(), before + n);
        if let Some(end) = head_end(&buf[search_from..]) {
            if search_from + end > MAX_HEAD_BYTES {
                return Head::TooLarge(buf);
            }
            return Head::Complete(buf);
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Head::TooLarge(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn tls_handshake_is_not_http() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
        let head = read_head(&mut b, Duration::from_secs(5), Duration::from_secs(5)).await;
        assert!(matches!(head, Head::NotHttp(0x16)), "{head:?}");
        for start in [
            &b"\r\nGET / HTTP/1.1\r\n\r\n"[..],
            b"M-SEARCH * HTTP/1.1\r\n\r\n",
        ] {
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            a.write_all(start).await.unwrap();
            let head = read_head(&mut b, Duration::from_secs(5), Duration::from_secs(5)).await;
            assert!(matches!(head, Head::Complete(_)), "{head:?}");
        }
    }

    #[tokio::test]
    async fn complete_head_with_trailing_bytes() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest")
            .await
            .unwrap();
        match read_head(&mut b, Duration::from_secs(1), Duration::from_secs(1)).await {
            Head::Complete(buf) => {
                assert_eq!(head_end(&buf), Some(buf.len() - 4));
                assert!(buf.ends_with(b"rest"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn head_ends_at_the_first_blank_line_crlf_or_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\r\nbody"), Some(25));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r"), None);
        assert_eq!(head_end(b""), None);
    }

    #[tokio::test]
    async fn head_split_across_reads() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            for part in [&b"GET / HTTP/1.1\r\nHost: x\r"[..], b"\n", b"\r", b"\n"] {
                a.write_all(part).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            a
        });
        let got = read_head(&mut b, Duration::from_secs(1), Duration::from_secs(1)).await;
        assert!(matches!(got, Head::Complete(_)), "{got:?}");
        drop(writer.await);

        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            for part in [&b"GET / HTTP/1.1\nHost: x\n"[..], b"\n"] {
                a.write_all(part).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            a
        });
        let got = read_head(&mut b, Duration::from_secs(1), Duration::from_secs(1)).await;
        assert!(matches!(got, Head::Complete(_)), "{got:?}");
        drop(writer.await);
    }

    #[tokio::test]
    async fn slow_head_times_out_and_silence_is_idle() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let got = read_head(&mut b, Duration::from_millis(50), Duration::from_secs(5)).await;
        assert!(matches!(got, Head::Idle), "{got:?}");
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let got = read_head(&mut b, Duration::from_secs(1), Duration::from_millis(100)).await;
        assert!(matches!(got, Head::TimedOut), "{got:?}");
    }

    #[test]
    fn request_target_flaws() {
        assert_eq!(request_target_flaw(b"GET /a HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_target_flaw(b"\r\nGET /a?b=%20 HTTP/1.1\n\n"), None);
        assert_eq!(request_target_flaw(b"CONNECT x:1 HTTP/1.1\r\n\r\n"), None);
        assert_eq!(
            request_target_flaw(b"GET /a\x00b HTTP/1.1\r\n\r\n"),
            Some("a control character")
        );
        assert_eq!(
            request_target_flaw(b"GET /a\tb HTTP/1.1\r\n\r\n"),
            Some("a control character")
        );
        assert_eq!(
            request_target_flaw(b"GET /a b HTTP/1.1\r\n\r\n"),
            Some("a space")
        );
        assert_eq!(
            request_target_flaw(b"GET /a\x7f HTTP/1.1\r\n\r\n"),
            Some("a control character")
        );
    }

    #[test]
    fn content_length_must_be_one_number() {
        let flaw = |h: &str| content_length_flaw(h.as_bytes());
        assert_eq!(
            flaw("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
            None
        );
        assert_eq!(flaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(
            flaw("POST / HTTP/1.1\r\ncontent-length: 3, 3\r\n\r\n"),
            Some("the value is not one number")
        );
        assert_eq!(
            flaw("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
            Some("more than one Content-Length header")
        );
        assert_eq!(
            flaw("POST / HTTP/1.1\nContent-Length: +3\n\n"),
            Some("the value is not one number")
        );
        // A body that looks like a header is not the head.
        assert_eq!(
            flaw("POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nContent-Length: 1, 2"),
            None
        );
    }

    #[tokio::test]
    async fn oversized_head() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        a.write_all(&vec![b'a'; MAX_HEAD_BYTES + 10]).await.unwrap();
        let got = read_head(&mut b, Duration::from_secs(1), Duration::from_secs(1)).await;
        assert!(matches!(got, Head::TooLarge(_)), "{got:?}");
    }
}
