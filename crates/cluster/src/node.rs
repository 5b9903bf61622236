//! Who a node is: a random id per server, so a node knows its own messages when Redis hands
//! them back and never mistakes another process's, even on the same machine.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId([u8; NodeId::BYTES]);

impl NodeId {
    pub const BYTES: usize = 16;

    pub fn random() -> NodeId {
        NodeId(rand::random())
    }

    #[cfg(test)]
    pub(crate) const fn from_bytes(bytes: [u8; NodeId::BYTES]) -> NodeId {
        NodeId(bytes)
    }

    /// `bytes` must be exactly [`NodeId::BYTES`] long.
    pub(crate) fn from_slice(bytes: &[u8]) -> NodeId {
        let mut id = [0; NodeId::BYTES];
        id.copy_from_slice(bytes);
        NodeId(id)
    }

    pub fn as_bytes(&self) -> &[u8; NodeId::BYTES] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}
