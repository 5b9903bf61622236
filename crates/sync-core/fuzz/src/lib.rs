//! What the fuzz targets share: how an input is cut into steps, the reference validator and
//! the message generator it is checked on.
//!
//! Inputs are cut at `0xFF` bytes rather than decoded with `arbitrary`: no UTF-8 text contains
//! that byte, so every step's text survives whole, and a seed is just captured payloads joined
//! with `0xFF` and a step byte, which a script can write and a person can read.

pub mod generate;
pub mod reference;

use std::borrow::Cow;

/// Ends one step of an input; it never occurs in UTF-8 text.
pub const STEP_END: u8 = 0xFF;

/// One step of an input: its leading control bytes and the text after them.
pub struct Step<'a> {
    bytes: &'a [u8],
}

impl<'a> Step<'a> {
    /// The `index`th control byte, 0 where the step is too short to have one, so that every
    /// prefix of an input still means something.
    pub fn byte(&self, index: usize) -> u8 {
        self.bytes.get(index).copied().unwrap_or(0)
    }

    /// The step after its first `skip` control bytes, as text. Invalid UTF-8 becomes U+FFFD
    /// rather than dropping the step, which keeps mutated seeds doing something.
    pub fn text(&self, skip: usize) -> Cow<'a, str> {
        String::from_utf8_lossy(self.bytes.get(skip..).unwrap_or_default())
    }
}

/// Cuts an input into steps at each [`STEP_END`].
pub fn steps(data: &[u8]) -> impl Iterator<Item = Step<'_>> {
    data.split(|&byte| byte == STEP_END)
        .map(|bytes| Step { bytes })
}
