//! Reading an HTTP upgrade request the plane accepted itself, and answering it as `ws` would.
//!
//! The plane answers only what it is sure `ws` would accept as it is: a complete, origin-form
//! `GET` request over HTTP/1.1 with the headers of a WebSocket handshake, each once, in the
//! forms `ws` reads without doubt. Anything else is [`Head::HandOver`]: the connection goes to
//! Node's HTTP server untouched, where `ws` (or the server's own request handler) answers it.
//! Handing over is always correct, so every rule here errs towards it.

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Most headers an upgrade request the plane answers may have; one with more is handed over.
const MAX_HEADERS: usize = 64;
/// `ws`'s rule for a `Sec-WebSocket-Key`: 16 bytes in base64.
const KEY_LENGTH: usize = 24;

/// What the owner of the listening socket lets the plane answer, from its `WebSocketServer`'s
/// options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeRules {
    /// `ws`'s `path` option: only requests for exactly this path name are answered.
    pub path: Option<String>,
    /// `ws` negotiates permessage-deflate: a request offering extensions is handed over.
    pub deflate: bool,
    /// `ws` has `handleProtocols`: a request offering subprotocols is handed over.
    pub handles_protocols: bool,
}

/// An upgrade request the plane answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// Length of the request head, which the answer consumes; what follows is WebSocket frames.
    pub head_len: usize,
    /// The request target, as Node's `request.url`.
    pub target: String,
    /// The `Sec-WebSocket-Key`.
    pub key: String,
    /// The subprotocol chosen: the first one offered, as `ws` chooses without `handleProtocols`.
    pub protocol: Option<String>,
    /// The whole 101 response, byte for byte as `ws` writes it.
    pub response: Vec<u8>,
}

/// What the bytes read so far from an accepted connection call for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    Upgrade(Upgrade),
    /// The request is not complete yet.
    Partial,
    HandOver,
}

/// Reads a request head from the bytes a connection sent first.
pub fn read_head(bytes: &[u8], rules: &UpgradeRules) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(head_len)) => answer(&request, head_len, rules)
            .map(Head::Upgrade)
            .unwrap_or(Head::HandOver),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(_) => Head::HandOver,
    }
}

/// The answer to a complete request, or `None` to hand it over.
fn answer(request: &httparse::Request, head_len: usize, rules: &UpgradeRules) -> Option<Upgrade> {
    if request.method != Some("GET") || request.version != Some(1) {
        return None;
    }
    let target = request.path?;
    if !target.starts_with('/') || !path_matches(target, rules.path.as_deref()) {
        return None;
    }
    let headers = Handshake::of(request.headers)?;
    if !headers
        .connection?
        .split(',')
        .any(|token| trim(token).eq_ignore_ascii_case("upgrade"))
        || !headers.upgrade?.eq_ignore_ascii_case("websocket")
        || !matches!(headers.version?, "13" | "8")
        || headers.has_body
        || (rules.deflate && headers.extensions.is_some())
    {
        return None;
    }
    let key = headers.key.filter(|key| is_key(key))?;
    let protocols = match headers.protocol {
        Some(offered) => subprotocols(offered)?,
        None => Vec::new(),
    };
    if rules.handles_protocols && !protocols.is_empty() {
        return None;
    }
    let protocol = protocols.first().map(|protocol| protocol.to_string());
    Some(Upgrade {
        head_len,
        target: target.to_owned(),
        key: key.to_owned(),
        response: response(key, protocol.as_deref()),
        protocol,
    })
}

/// `ws`'s `shouldHandle`: the target's path name, before any query, must be `path` if set.
fn path_matches(target: &str, path: Option<&str>) -> bool {
    path.is_none_or(|path| target.split('?').next() == Some(path))
}

/// The headers a handshake is judged by, each present at most once.
#[derive(Default)]
struct Handshake<'a> {
    connection: Option<&'a str>,
    upgrade: Option<&'a str>,
    key: Option<&'a str>,
    version: Option<&'a str>,
    protocol: Option<&'a str>,
    extensions: Option<&'a str>,
    has_body: bool,
}

impl<'a> Handshake<'a> {
    /// `None` if one of them is repeated (Node would join the values) or not text.
    fn of(headers: &[httparse::Header<'a>]) -> Option<Self> {
        let mut handshake = Handshake::default();
        for header in headers {
            let name = header.name;
            let slot = if name.eq_ignore_ascii_case("connection") {
                &mut handshake.connection
            } else if name.eq_ignore_ascii_case("upgrade") {
                &mut handshake.upgrade
            } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                &mut handshake.key
            } else if name.eq_ignore_ascii_case("sec-websocket-version") {
                &mut handshake.version
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                &mut handshake.protocol
            } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
                &mut handshake.extensions
            } else {
                handshake.has_body |= name.eq_ignore_ascii_case("content-length")
                    || name.eq_ignore_ascii_case("transfer-encoding");
                continue;
            };
            let value = std::str::from_utf8(header.value).ok()?;
            if slot.replace(trim(value)).is_some() {
                return None;
            }
        }
        Some(handshake)
    }
}

/// Optional white space around a header value or list item, as `ws` and Node skip it.
fn trim(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

fn is_key(key: &str) -> bool {
    key.len() == KEY_LENGTH
        && key.ends_with("==")
        && key[..KEY_LENGTH - 2]
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/')
}

/// The subprotocols offered, in order; `None` where `ws` would refuse the header (an empty or
/// repeated one, or one that is not a token).
fn subprotocols(offered: &str) -> Option<Vec<&str>> {
    let protocols: Vec<&str> = offered.split(',').map(trim).collect();
    let valid = protocols
        .iter()
        .enumerate()
        .all(|(index, protocol)| is_token(protocol) && !protocols[..index].contains(protocol));
    valid.then_some(protocols)
}

/// An RFC 7230 token.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

fn response(key: &str, protocol: Option<&str>) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(protocol) = protocol {
        response.push_str("Sec-WebSocket-Protocol: ");
        response.push_str(protocol);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    response.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn rules() -> UpgradeRules {
        UpgradeRules::default()
    }

    fn request(target: &str, extra: &str) -> String {
        format!(
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    fn upgrade(bytes: &str, rules: &UpgradeRules) -> Option<Upgrade> {
        match read_head(bytes.as_bytes(), rules) {
            Head::Upgrade(upgrade) => Some(upgrade),
            Head::HandOver | Head::Partial => None,
        }
    }

    #[test]
    fn a_plain_handshake_is_answered_with_the_accept_key_of_rfc_6455() {
        // A frame sent right behind the request is not part of its head.
        let bytes = request("/path?x=1", "") + "\x01";
        let answered = upgrade(&bytes, &rules()).expect("answered");
        assert_eq!(answered.head_len, bytes.len() - 1);
        assert_eq!(answered.target, "/path?x=1");
        assert_eq!(answered.key, KEY);
        assert_eq!(answered.protocol, None);
        // The example of RFC 6455, section 1.3.
        assert_eq!(
            String::from_utf8(answered.response).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn the_first_subprotocol_offered_is_chosen() {
        let bytes = request("/", "Sec-WebSocket-Protocol: \ttinybase , other\r\n");
        let answered = upgrade(&bytes, &rules()).expect("answered");
        assert_eq!(answered.protocol.as_deref(), Some("tinybase"));
        assert!(String::from_utf8(answered.response)
            .unwrap()
            .ends_with("Sec-WebSocket-Protocol: tinybase\r\n\r\n"));
    }

    #[test]
    fn header_names_and_tokens_are_read_regardless_of_case() {
        let bytes = "GET / HTTP/1.1\r\nconnection: keep-alive, UPGRADE\r\nupgrade: WebSocket\r\n\
                     sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 8\r\n\r\n";
        assert!(upgrade(bytes, &rules()).is_some());
    }

    #[test]
    fn an_unfinished_head_waits_for_more() {
        let bytes = request("/", "");
        assert_eq!(
            read_head(&bytes.as_bytes()[..bytes.len() - 2], &rules()),
            Head::Partial
        );
    }

    #[test]
    fn requests_ws_would_refuse_or_judge_itself_are_handed_over() {
        let handed_over = [
            request("/", "").replace("GET", "POST"),
            request("/", "").replace("HTTP/1.1", "HTTP/1.0"),
            request("http://localhost/", ""),
            request("/", "").replace("Connection: Upgrade", "Connection: keep-alive"),
            request("/", "").replace("Upgrade: websocket", "Upgrade: h2c"),
            request("/", "").replace(KEY, "short=="),
            request("/", "").replace(KEY, "dGhlIHNhbXBsZSBub25jZQ=x"),
            request("/", "").replace("Version: 13", "Version: 12"),
            // ws reads `+' 13.0'` as 13, but the plane leaves such forms to it.
            request("/", "").replace("Version: 13", "Version: 13.0"),
            request("/", &format!("Sec-WebSocket-Key: {KEY}\r\n")),
            request("/", "Sec-WebSocket-Protocol: a, a\r\n"),
            request("/", "Sec-WebSocket-Protocol: a,\r\n"),
            request("/", "Sec-WebSocket-Protocol: a b\r\n"),
            request("/", "Content-Length: 0\r\n"),
            "GET / HTTP/1.1\r\nBad Header\r\n\r\n".to_owned(),
        ];
        for bytes in handed_over {
            assert_eq!(
                read_head(bytes.as_bytes(), &rules()),
                Head::HandOver,
                "{bytes}"
            );
        }
    }

    #[test]
    fn the_servers_options_leave_what_they_govern_to_ws() {
        let path = UpgradeRules {
            path: Some("/sync".to_owned()),
            ..rules()
        };
        assert!(upgrade(&request("/sync?a", ""), &path).is_some());
        assert!(upgrade(&request("/sync/a", ""), &path).is_none());

        let offers = request("/", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert!(upgrade(&offers, &rules()).is_some());
        let deflate = UpgradeRules {
            deflate: true,
            ..rules()
        };
        assert!(upgrade(&offers, &deflate).is_none());
        assert!(upgrade(&request("/", ""), &deflate).is_some());

        let protocols = UpgradeRules {
            handles_protocols: true,
            ..rules()
        };
        assert!(upgrade(&request("/", "Sec-WebSocket-Protocol: a\r\n"), &protocols).is_none());
        assert!(upgrade(&request("/", ""), &protocols).is_some());
    }
}
