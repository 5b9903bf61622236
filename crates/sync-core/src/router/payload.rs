//! A relayed payload: UTF-8 text in a reference-counted buffer, so one broadcast is built once
//! and shared by every recipient's queue.

use bytes::Bytes;

/// UTF-8 text that is cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(Bytes);

impl Payload {
    pub fn as_str(&self) -> &str {
        // SAFETY: the only constructor takes a String, so the bytes are always valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The shared bytes, valid UTF-8.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Self {
        Payload(Bytes::from(text))
    }
}
