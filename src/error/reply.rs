//! Writing a final reply on a connection that pingora does not answer for us, then
//! closing it so that the client reads the whole reply.

use super::{wire, ProxyError};
use pingora::protocols::Stream;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Writes all of `bytes` and flushes them.
pub async fn write_all_flush<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// Answers with an error (in plain text: the request's `Accept` is unknown or moot) and
/// closes; returns the bytes of the answer.
pub async fn reject(client: &mut Stream, err: &ProxyError) -> usize {
    let reply = wire::final_reply(err);
    answer_and_close(client, &reply).await;
    reply.len()
}

/// Writes a final response, then closes gently: half-close and discard what the client
/// is still sending for a moment, so that unread bytes do not turn the close into a
/// reset that destroys the response before the client reads it.
pub async fn answer_and_close(client: &mut Stream, response: &[u8]) {
    const LINGER: Duration = Duration::from_secs(1);
    const LINGER_BYTES: usize = 1 << 20;
    if write_all_flush(client, response).await.is_err() {
        return;
    }
    let _ = AsyncWriteExt::shutdown(client).await;
    let _ = tokio::time::timeout(LINGER, async {
        // On the heap: an array here would sit inside every connection's task (the
        // dispatcher awaits this future inline), 8 KiB per idle WebSocket.
        let mut sink = vec![0u8; 8192];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}
