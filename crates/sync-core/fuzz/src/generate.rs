//! Builds a TinyBase message from the fuzzer's bytes, for the differential check of `validate`.
//!
//! Mutating bytes seldom turns one valid message into another: nearly every mutant is broken
//! JSON, rejected long before the rules about hashes, stamps and HLCs are reached. Here the
//! bytes are choices instead. Each value follows the shape its message type asks for, with
//! leaves drawn from the edges of TinyBase's rules (2^32 - 1 and 2^32, `-0`, `1e400`, the
//! undefined marker, surrogates, HLCs one character short, repeated keys), and now and then
//! something of the wrong shape, so valid and invalid messages both come up often.

use sync_core::protocol::message::MAX_NESTING;

/// What a value is meant to look like, as TinyBase's checks name them.
#[derive(Clone, Copy)]
enum Shape {
    /// `isCellOrValueOrUndefined`, with `depth` levels of arrays and objects left to nest.
    Any(u8),
    Hash,
    Hlc,
    /// The third item of changes, which must be exactly the number 1.
    One,
    /// `isHashTree(_, depth)`
    HashTree(u8),
    /// `isStamp(_, depth)`
    Stamp(u8),
    ContentHashes,
    /// `isMergeableContentOrChanges`
    Changes,
    /// `isResponse`'s last form: a depth-3 stamp and a hash tree.
    StampAndHashes,
}

/// Leaves for one shape: ones TinyBase accepts, and edge cases, some accepted, most not.
struct Pool {
    valid: &'static [&'static str],
    edge: &'static [&'static str],
}

const REQUEST_IDS: Pool = Pool {
    valid: &["null", r#""r""#, r#""""#, r#""\ud800""#],
    edge: &["1", r#""\uFFFC""#, "[]", "{}"],
};
const MESSAGE_TYPES: Pool = Pool {
    valid: &["1.0", "-0", "1e0", "0.0e5"],
    edge: &["8", "-1", r#""1""#, "0.5", "1e400", "null"],
};
const HASHES: Pool = Pool {
    valid: &[
        "0",
        "42",
        "4294967295",
        "4.294967295e9",
        "4294967295.0000001",
        "-0",
        "1.0",
    ],
    edge: &["4294967296", "-1", "0.5", "1e400", r#""1""#, "null"],
};
const HLCS: Pool = Pool {
    valid: &[
        r#""""#,
        r#""P7LQ6dr---2xr3pO""#,
        r#""\u0050\u0037LQ6dr---2xr3pO""#,
    ],
    edge: &[
        r#""P7LQ6dr---2xr3p""#,
        r#""P7LQ6dr---2xr3pO_""#,
        r#""P7LQ6dr.--2xr3pO""#,
        r#""\uFFFC""#,
        "null",
    ],
};
const ONES: Pool = Pool {
    valid: &["1", "1.0", "1e0"],
    edge: &["true", r#""1""#, "2", "null"],
};
const EMPTY: Pool = Pool {
    valid: &[r#""""#],
    edge: &[r#"" ""#, r#""\uFFFC""#, "null"],
};
/// Keys with repeats, and keys that JSON spells differently or only UTF-16 tells apart.
const KEYS: Pool = Pool {
    valid: &[r#""a""#, r#""b""#, r#""\u0061""#, r#""""#],
    edge: &[
        r#""__proto__""#,
        r#""\ud800""#,
        r#""\udbff""#,
        r#""\uFFFC""#,
    ],
};
const CELLS: Pool = Pool {
    valid: &[
        "null",
        "true",
        "0",
        "-1.5",
        "1e-400",
        r#""x""#,
        r#""\uFFFC""#,
        "\"\u{FFFC}\"",
        r#""\ud800""#,
        r#""\udc00x""#,
        r#""\u0000""#,
        r#""😀""#,
    ],
    edge: &["1e400", "-1e400"],
};
const SPACES: &[&str] = &[" ", "\n", "\t", "\r"];

/// A message, `[requestId, messageType, body]`, chosen by `data`.
pub fn message(data: &[u8]) -> String {
    let mut generator = Generator {
        data,
        at: 0,
        out: String::new(),
    };
    generator.message();
    generator.out
}

struct Generator<'a> {
    data: &'a [u8],
    at: usize,
    out: String,
}

impl Generator<'_> {
    /// The next choice; 0 once the bytes run out, which always picks the smallest value of the
    /// intended shape, so generation ends.
    fn byte(&mut self) -> u8 {
        let byte = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte
    }

    /// One in `odds`, never once the bytes ran out.
    fn chance(&mut self, odds: u8) -> bool {
        self.byte() % odds == odds - 1
    }

    fn push(&mut self, from: &[&str]) {
        let text = from[usize::from(self.byte()) % from.len()];
        self.out.push_str(text);
    }

    /// Mostly a valid leaf, one time in six an edge case.
    fn pick(&mut self, pool: &Pool) {
        let from = if self.chance(6) {
            pool.edge
        } else {
            pool.valid
        };
        self.push(from);
    }

    fn space(&mut self) {
        if self.chance(16) {
            self.push(SPACES);
        }
    }

    fn message(&mut self) {
        self.out.push('[');
        self.pick(&REQUEST_IDS);
        self.out.push(',');
        let message_type = self.byte() % 9;
        if self.chance(4) {
            self.pick(&MESSAGE_TYPES);
        } else {
            self.out.push(char::from(b'0' + message_type));
        }
        self.out.push(',');
        self.space();
        match message_type {
            0 => match self.byte() % 4 {
                0 => self.value(Shape::ContentHashes),
                1 => self.value(Shape::Stamp(1)),
                2 => self.value(Shape::Stamp(3)),
                _ => self.value(Shape::StampAndHashes),
            },
            1 => self.pick(&EMPTY),
            2 => self.value(Shape::ContentHashes),
            3 => self.value(Shape::Changes),
            4 | 7 => self.value(Shape::HashTree(0)),
            5 => self.value(Shape::HashTree(1)),
            6 => self.value(Shape::HashTree(2)),
            _ => self.value(Shape::Any(2)),
        }
        if self.chance(32) {
            self.out.push_str(",null");
        }
        self.out.push(']');
    }

    /// A value of `shape`, or now and then of another.
    fn value(&mut self, shape: Shape) {
        self.space();
        let shape = if self.chance(40) {
            Shape::Any(1)
        } else {
            shape
        };
        match shape {
            Shape::Any(depth) => self.any(depth),
            Shape::Hash => self.pick(&HASHES),
            Shape::Hlc => self.pick(&HLCS),
            Shape::One => self.pick(&ONES),
            Shape::HashTree(0) => self.object(Shape::Hash),
            Shape::HashTree(depth) => self.object(Shape::HashTree(depth - 1)),
            Shape::Stamp(depth) => {
                self.out.push('[');
                match depth {
                    0 => self.value(Shape::Any(2)),
                    _ => self.object(Shape::Stamp(depth - 1)),
                }
                // Mostly one HLC; sometimes none, or one too many.
                for _ in 0..[0, 1, 1, 2][usize::from(self.byte() % 4)] {
                    self.out.push(',');
                    self.value(Shape::Hlc);
                }
                self.out.push(']');
            }
            Shape::ContentHashes => self.array(&[Shape::Hash, Shape::Hash]),
            Shape::Changes => match self.byte() % 2 {
                0 => self.array(&[Shape::Stamp(3), Shape::Stamp(1)]),
                _ => self.array(&[Shape::Stamp(3), Shape::Stamp(1), Shape::One]),
            },
            Shape::StampAndHashes => {
                let tree = Shape::HashTree(self.byte() % 3);
                self.array(&[Shape::Stamp(3), tree]);
            }
        }
        self.space();
    }

    /// Any JSON value, nesting up to `depth` more levels, or nesting right at sync-core's limit.
    fn any(&mut self, depth: u8) {
        match self.byte() % 8 {
            5 if depth > 0 => self.array(&[Shape::Any(depth - 1), Shape::Any(depth - 1)]),
            6 if depth > 0 => self.object(Shape::Any(depth - 1)),
            7 if self.chance(8) => {
                // The value sits a few to a dozen levels in, so the total lands either side of
                // the nesting limit.
                let levels = MAX_NESTING - 12 + usize::from(self.byte() % 16);
                self.out.push_str(&"[".repeat(levels));
                self.out.push_str(&"]".repeat(levels));
            }
            _ => self.pick(&CELLS),
        }
    }

    /// An array of `items`, one more or one fewer now and then.
    fn array(&mut self, items: &[Shape]) {
        let len = match self.byte() % 16 {
            14 => items.len().saturating_sub(1),
            15 => items.len() + 1,
            _ => items.len(),
        };
        self.out.push('[');
        for index in 0..len {
            if index > 0 {
                self.out.push(',');
            }
            self.value(items.get(index).copied().unwrap_or(Shape::Any(0)));
        }
        self.out.push(']');
    }

    /// An object of up to three values of `shape`.
    fn object(&mut self, shape: Shape) {
        self.out.push('{');
        for index in 0..self.byte() % 4 {
            if index > 0 {
                self.out.push(',');
            }
            self.pick(&KEYS);
            self.out.push(':');
            self.value(shape);
        }
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::decode_protocol_message;

    /// Random bytes give valid and invalid messages alike, of every type.
    #[test]
    fn generates_valid_and_invalid_messages_of_every_type() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut valid = [0usize; 8];
        let mut invalid = 0;
        for _ in 0..20_000 {
            let data: Vec<u8> = (0..200)
                .map(|_| {
                    // xorshift64: deterministic bytes without a dependency.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            match decode_protocol_message(&message(&data)) {
                Some(message_type) => valid[message_type as usize] += 1,
                None => invalid += 1,
            }
        }
        assert!(valid.iter().all(|&count| count > 100), "{valid:?}");
        assert!(invalid > 2_000, "{invalid}");
    }

    #[test]
    fn no_bytes_make_a_minimal_message() {
        assert_eq!(message(&[]), r#"[null,0,[0,0]]"#);
    }
}
