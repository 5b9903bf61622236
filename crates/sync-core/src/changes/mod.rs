//! Merging consecutive `ContentDiff` changes for a path's server client, so that it applies one
//! diff where it would have applied many, with exactly the outcome of applying them in turn.
//!
//! TinyBase's `applyMergeableChanges` keeps, for every cell and value, the incoming stamp when
//! the stored one has no HLC or the incoming HLC is later, and raises every table, row and
//! "tables"/"values" HLC to the latest it has seen. Both rules compose: applying `a` then `b` to
//! any store gives the same content as applying `a` merged with `b` by the same rules. Hashes are
//! recomputed from the final stamps, so they agree too.
//!
//! Three things are not captured by those rules, so merging refuses where they could differ:
//! - TinyBase validates a diff as a whole against the clock, dropping it if any HLC lies more
//!   than five minutes ahead. A diff that could fail that check is never merged, so it cannot
//!   take another diff down with it.
//! - A JS object lists array-index keys (`"0"`, `"17"`) first and in numeric order, whatever
//!   order they came in. Applied in turn, new ids enter the store's stamps in the order the
//!   diffs bring them; merged, in the order one JS object lists them. A merge that would put a
//!   new id in a different place is refused.
//! - A table or row that a diff lists without an HLC and without anything in it is given the
//!   hash 0, and TinyBase, reading 0 as "no entry", never takes that entry's share out of its
//!   parent's hash when a later diff changes it. Merged, the entry would not pass through 0.
//!   So such a diff is not merged (TinyBase's clients never send one: they list a row for its
//!   changed cells, and stamp neither rows nor tables).
//!
//! What the merge keeps exact is the mergeable content: every stamp, in order, and the hashes
//! that clients compare. The plain store beneath also ends with the same tables, rows, cells and
//! values, but not always listed in the same order: TinyBase creates a row (or table) there when
//! its first cell is set and re-creates it at the end after a deletion emptied it, so a row
//! deleted and re-created across merged diffs may sit elsewhere. Nothing synced or persisted
//! depends on that order: both are read from the stamps.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::protocol::message::message_type::CONTENT_DIFF;

/// How far ahead of the wall clock TinyBase accepts an HLC (`HLC_MAX_FUTURE_OFFSET`).
pub const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

/// The id alphabet HLCs are written in, each character six bits.
const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// A `ContentDiff` message for the server client, `fromClientId\n[requestId, 3, changes]`, held
/// while later diffs are merged into it.
pub struct PendingDiff {
    /// `fromClientId\n[requestId,3,` of the first diff: the server client applies a diff without
    /// answering it, so the merged one may travel under any of their headers.
    header: String,
    changes: Changes,
    /// Roughly the bytes the merged message takes, for the host's backlog accounting.
    size: usize,
}

impl PendingDiff {
    /// Parses a server-client payload that is a `ContentDiff` of changes every HLC of which is
    /// at most [`MAX_FUTURE_MS`] ahead of `now_ms`, with no table or row empty and unstamped;
    /// `None` for anything else, which then travels unmerged.
    pub fn parse(payload: &str, now_ms: u64) -> Option<PendingDiff> {
        let (from, remainder) = payload.split_once('\n')?;
        let (request_id, message_type, changes): (Box<RawValue>, i64, Changes) =
            serde_json::from_str(remainder).ok()?;
        if message_type != CONTENT_DIFF || !changes.is_mergeable(now_ms + MAX_FUTURE_MS) {
            return None;
        }
        Some(PendingDiff {
            header: format!("{from}\n[{},{CONTENT_DIFF},", request_id.get()),
            changes,
            size: payload.len(),
        })
    }

    /// Merges `later` in, as if it were applied after this diff; false, leaving this diff as it
    /// was, where the merged diff could differ in effect.
    pub fn absorb(&mut self, later: &PendingDiff) -> bool {
        if !self.changes.can_absorb(&later.changes) {
            return false;
        }
        self.size = (self.size as isize + self.changes.absorb(&later.changes)) as usize;
        true
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The merged message, as the router would have delivered it.
    pub fn into_payload(self) -> String {
        let mut payload = self.header;
        payload.push_str(&serde_json::to_string(&self.changes).unwrap_or_default());
        payload.push(']');
        payload
    }
}

/// `[[tables, hlc], [values, hlc], 1]`: TinyBase's mergeable changes, with maps kept in the
/// order their keys came (a repeated key keeps its first place and its last value, as in JS).
struct Changes {
    tables: Stamp<Tables>,
    values: Stamp<Things>,
}

type Tables = IndexMap<String, Stamp<Rows>>;
type Rows = IndexMap<String, Stamp<Things>>;
/// Cells of a row, or the store's values.
type Things = IndexMap<String, Stamp<Box<RawValue>>>;

/// A thing and its HLC; `""` when the wire had none, which TinyBase treats alike.
struct Stamp<T> {
    thing: T,
    hlc: String,
}

impl Changes {
    fn is_mergeable(&self, max_time: u64) -> bool {
        let timely = |hlc: &str| hlc_time(hlc).is_some_and(|time| time <= max_time);
        let listed = |hlc: &str, is_empty: bool| timely(hlc) && !(hlc.is_empty() && is_empty);
        let things = |things: &Stamp<Things>| things.thing.values().all(|thing| timely(&thing.hlc));
        timely(&self.tables.hlc)
            && self.tables.thing.values().all(|table| {
                listed(&table.hlc, table.thing.is_empty())
                    && table
                        .thing
                        .values()
                        .all(|row| listed(&row.hlc, row.thing.is_empty()) && things(row))
            })
            && timely(&self.values.hlc)
            && things(&self.values)
    }

    fn can_absorb(&self, later: &Changes) -> bool {
        keeps_order(&self.tables.thing, &later.tables.thing)
            && later.tables.thing.iter().all(|(table_id, table)| {
                let Some(earlier) = self.tables.thing.get(table_id) else {
                    return true;
                };
                keeps_order(&earlier.thing, &table.thing)
                    && table.thing.iter().all(|(row_id, row)| {
                        earlier
                            .thing
                            .get(row_id)
                            .is_none_or(|earlier| keeps_order(&earlier.thing, &row.thing))
                    })
            })
            && keeps_order(&self.values.thing, &later.values.thing)
    }

    /// Returns how many bytes the merged changes grew by, roughly.
    fn absorb(&mut self, later: &Changes) -> isize {
        let mut growth = 0;
        raise(&mut self.tables.hlc, &later.tables.hlc);
        for (table_id, table) in &later.tables.thing {
            let earlier = self
                .tables
                .thing
                .entry(table_id.clone())
                .or_insert_with(|| {
                    growth += (table_id.len() + ENTRY_BYTES) as isize;
                    Stamp::empty()
                });
            raise(&mut earlier.hlc, &table.hlc);
            for (row_id, row) in &table.thing {
                let earlier = earlier.thing.entry(row_id.clone()).or_insert_with(|| {
                    growth += (row_id.len() + ENTRY_BYTES) as isize;
                    Stamp::empty()
                });
                growth += absorb_things(earlier, row);
            }
        }
        growth + absorb_things(&mut self.values, &later.values)
    }
}

/// Bytes a map entry takes besides its key and thing: quotes, brackets, an HLC.
const ENTRY_BYTES: usize = 24;

fn absorb_things(earlier: &mut Stamp<Things>, later: &Stamp<Things>) -> isize {
    let mut growth = 0;
    raise(&mut earlier.hlc, &later.hlc);
    for (id, thing) in &later.thing {
        match earlier.thing.get_mut(id) {
            // TinyBase's rule: a stamp without an HLC always yields; otherwise the later HLC wins.
            Some(kept) if kept.hlc.is_empty() || thing.hlc > kept.hlc => {
                growth += thing.thing.get().len() as isize - kept.thing.get().len() as isize;
                *kept = thing.clone();
            }
            Some(_) => {}
            None => {
                growth += (id.len() + thing.thing.get().len() + ENTRY_BYTES) as isize;
                earlier.thing.insert(id.clone(), thing.clone());
            }
        }
    }
    growth
}

fn raise(hlc: &mut String, other: &str) {
    if other > hlc.as_str() {
        other.clone_into(hlc);
    }
}

/// Whether adding `later`'s new keys after `earlier`'s gives the order a JS object would list
/// them in: array indices first in ascending order, then the rest as they came. Each diff is
/// itself listed in that order, so only new indices can break it.
fn keeps_order<T, U>(earlier: &IndexMap<String, T>, later: &IndexMap<String, U>) -> bool {
    let mut new_indices = later
        .keys()
        .filter(|key| !earlier.contains_key(*key))
        .filter_map(|key| array_index(key));
    let Some(first_new) = new_indices.by_ref().min() else {
        return true;
    };
    earlier
        .keys()
        .all(|key| array_index(key).is_some_and(|index| index < first_new))
}

/// The array index a JS object key stands for: a canonical integer below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    let canonical = key == "0" || (!key.starts_with('0') && key.len() <= 10);
    if !canonical || !key.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|&index| index < u32::MAX as u64)
        .map(|index| index as u32)
}

/// The wall-clock part of an HLC in ms; 0 for `""`, `None` for what is not an HLC.
fn hlc_time(hlc: &str) -> Option<u64> {
    if hlc.is_empty() {
        return Some(0);
    }
    let bytes = hlc.as_bytes();
    if bytes.len() != 16 {
        return None;
    }
    bytes[..7].iter().try_fold(0u64, |time, byte| {
        let digit = ALPHABET.iter().position(|letter| letter == byte)?;
        Some(time * 64 + digit as u64)
    })
}

impl<T: Default> Stamp<T> {
    fn empty() -> Self {
        Stamp {
            thing: T::default(),
            hlc: String::new(),
        }
    }
}

impl Clone for Stamp<Box<RawValue>> {
    fn clone(&self) -> Self {
        Stamp {
            thing: self.thing.clone(),
            hlc: self.hlc.clone(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Stamp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StampVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for StampVisitor<T> {
            type Value = Stamp<T>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("[thing] or [thing, hlc]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stamp<T>, A::Error> {
                let thing = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let hlc = seq.next_element()?.unwrap_or_default();
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Stamp { thing, hlc })
            }
        }
        deserializer.deserialize_seq(StampVisitor(std::marker::PhantomData))
    }
}

impl<T: Serialize> Serialize for Stamp<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(2))?;
        seq.serialize_element(&self.thing)?;
        seq.serialize_element(&self.hlc)?;
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Changes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (tables, values, flag): (_, _, serde_json::Number) =
            Deserialize::deserialize(deserializer)?;
        // Without the trailing 1 a diff is whole content, which replaces the store instead.
        if flag.as_f64() != Some(1.0) {
            return Err(de::Error::custom("not changes"));
        }
        Ok(Changes { tables, values })
    }
}

impl Serialize for Changes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.tables, &self.values, 1).serialize(serializer)
    }
}

#[cfg(test)]
mod tests;
