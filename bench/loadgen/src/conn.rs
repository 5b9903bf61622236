//! Opening client connections and draining their outgoing queues.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;
pub type Stream = SplitStream<WebSocketStream<TcpStream>>;

/// Opens a plain (single-path) TinyBase sync connection to `url/path`. The
/// server names the client after the handshake's `Sec-WebSocket-Key`.
pub async fn connect(url: &str, path: &str) -> Result<(Sink, Stream), String> {
    let host = url.trim_start_matches("ws://");
    let tcp = TcpStream::connect(host)
        .await
        .map_err(|error| format!("connect: {}", error.kind()))?;
    // Latency figures must not include Nagle's delay on small frames.
    tcp.set_nodelay(true)
        .map_err(|error| format!("nodelay: {}", error.kind()))?;
    let (socket, _) =
        tokio_tungstenite::client_async_with_config(format!("{url}/{path}"), tcp, Some(config()))
            .await
            .map_err(|error| format!("handshake: {error}"))?;
    Ok(socket.split())
}

/// Sends queued messages, batching whatever has accumulated into one flush,
/// until `stop` changes; then closes the socket politely.
pub async fn write_loop(
    mut sink: Sink,
    mut queue: mpsc::UnboundedReceiver<Message>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut batch = Vec::with_capacity(64);
    let result = loop {
        tokio::select! {
            received = queue.recv_many(&mut batch, 64) => {
                if received == 0 {
                    break Ok(());
                }
                let mut sent = Ok(());
                for message in batch.drain(..) {
                    sent = sink.feed(message).await;
                    if sent.is_err() {
                        break;
                    }
                }
                if let Err(error) = sent.and(sink.flush().await) {
                    break Err(format!("send: {error}"));
                }
            }
            _ = stopped(&mut stop) => break Ok(()),
        }
    };
    let _ = sink.close().await;
    result
}

/// Resolves once the run has been told to stop (or its controller is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Smaller read buffers than tungstenite's default 128 KiB: the storm holds
/// thousands of connections in one process, and their buffers would
/// otherwise dominate the load generator's memory and page-fault time.
/// Messages larger than the buffer are still read whole.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(16 * 1024)
}

pub fn describe_close(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(frame) => format!("closed by server: {} {}", frame.code, frame.reason),
        None => "closed by server".to_string(),
    }
}
