use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::*;

/// The clock every generated HLC is judged against.
const NOW_MS: u64 = 1_780_000_000_000;

fn hlc(time: u64, counter: u64, client: &str) -> String {
    let mut out = String::new();
    for shift in (0..7).rev() {
        out.push(ALPHABET[((time >> (shift * 6)) & 63) as usize] as char);
    }
    for shift in (0..3).rev() {
        out.push(ALPHABET[((counter >> (shift * 6)) & 63) as usize] as char);
    }
    out.push_str(client);
    out
}

fn diff(changes: &str) -> String {
    format!("c1\n[\"r\",3,{changes}]")
}

fn parse(changes: &str) -> PendingDiff {
    PendingDiff::parse(&diff(changes), NOW_MS).expect("a mergeable diff")
}

#[test]
fn a_later_cell_replaces_an_earlier_and_containers_take_the_latest_hlc() {
    let (early, late) = (hlc(NOW_MS, 1, "aaaaaa"), hlc(NOW_MS, 2, "aaaaaa"));
    let mut merged = parse(&format!(
        r#"[[{{"t":[{{"r":[{{"c":[1,"{late}"],"d":[2,"{early}"]}},"{early}"]}},"{early}"]}},"{late}"],[{{}},""],1]"#
    ));
    assert!(merged.absorb(&parse(&format!(
        r#"[[{{"t":[{{"r":[{{"c":[3,"{early}"],"d":[4,"{late}"]}},"{late}"]}},"{late}"]}},"{early}"],[{{"v":[5,"{early}"]}},"{early}"],1]"#
    ))));
    assert_eq!(
        merged.into_payload(),
        diff(&format!(
            r#"[[{{"t":[{{"r":[{{"c":[1,"{late}"],"d":[4,"{late}"]}},"{late}"]}},"{late}"]}},"{late}"],[{{"v":[5,"{early}"]}},"{early}"],1]"#
        ))
    );
}

#[test]
fn a_stamp_without_an_hlc_always_yields() {
    let stamped = hlc(NOW_MS, 1, "aaaaaa");
    let mut merged = parse(r#"[[{},""],[{"v":[1]},""],1]"#);
    assert!(merged.absorb(&parse(r#"[[{},""],[{"v":[2]},""],1]"#)));
    assert!(merged.into_payload().contains(r#"{"v":[2,""]}"#));
    let mut merged = parse(&format!(r#"[[{{}},""],[{{"v":[1,"{stamped}"]}},""],1]"#));
    assert!(merged.absorb(&parse(r#"[[{},""],[{"v":[2]},""],1]"#)));
    assert!(merged
        .into_payload()
        .contains(&format!(r#"{{"v":[1,"{stamped}"]}}"#)));
}

#[test]
fn what_merging_could_change_is_refused() {
    // Content rather than changes replaces the store.
    assert!(PendingDiff::parse(&diff(r#"[[{},""],[{},""]]"#), NOW_MS).is_none());
    // An HLC too far ahead makes TinyBase drop its whole diff.
    let ahead = hlc(NOW_MS + MAX_FUTURE_MS + 1, 0, "aaaaaa");
    assert!(PendingDiff::parse(
        &diff(&format!(r#"[[{{}},""],[{{"v":[1,"{ahead}"]}},""],1]"#)),
        NOW_MS
    )
    .is_none());
    // A row without an HLC may pass through the hash 0, which TinyBase treats as no row.
    assert!(PendingDiff::parse(
        &diff(r#"[[{"t":[{"r":[{}]},"OtkG7Uz--0aaaaaa"]}],[{},""],1]"#),
        NOW_MS
    )
    .is_none());
    // Other messages travel as they are.
    assert!(PendingDiff::parse("c1\n[\"r\",2,[0,0]]", NOW_MS).is_none());
    // A JS object would list the new "1" before "a" and "2", not after them.
    let mut merged = parse(r#"[[{},""],[{"a":[1],"2":[1]},""],1]"#);
    assert!(!merged.absorb(&parse(r#"[[{},""],[{"1":[1]},""],1]"#)));
    assert!(!merged.absorb(&parse(r#"[[{},""],[{"b":[1],"1":[2]},""],1]"#)));
    let mut merged = parse(r#"[[{},""],[{"2":[1]},""],1]"#);
    assert!(merged.absorb(&parse(r#"[[{},""],[{"b":[1],"5":[2]},""],1]"#)));
}

/// A small deterministic generator, so a failing case replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Ids include array indices, which JS objects reorder, and names.
const IDS: &[&str] = &["a", "b", "0", "1", "7", "10", "zz", "constructor"];
const VALUES: &[&str] = &[
    "1",
    "2.5",
    "-3",
    "\"x\"",
    "\"y\"",
    "true",
    "false",
    "\"\u{FFFC}\"",
];

fn random_hlc(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => String::new(),
        // Now and then one TinyBase would refuse, dropping its whole diff.
        1 if rng.below(4) == 0 => hlc(NOW_MS + MAX_FUTURE_MS + 1000, 0, "aaaaaa"),
        _ => hlc(
            NOW_MS - rng.below(4),
            rng.below(3),
            rng.pick(&["aaaaaa", "bbbbbb"]),
        ),
    }
}

fn random_stamp(rng: &mut Rng, thing: String) -> String {
    match random_hlc(rng) {
        hlc if hlc.is_empty() && rng.below(2) == 0 => format!("[{thing}]"),
        hlc => format!("[{thing},\"{hlc}\"]"),
    }
}

fn random_map(rng: &mut Rng, most: u64, mut thing: impl FnMut(&mut Rng) -> String) -> String {
    let entries: Vec<String> = (0..rng.below(most + 1))
        .map(|_| format!("\"{}\":{}", rng.pick(IDS), thing(rng)))
        .collect();
    format!("{{{}}}", entries.join(","))
}

fn random_changes(rng: &mut Rng) -> String {
    let value = |rng: &mut Rng| {
        let value = rng.pick(VALUES).to_owned();
        random_stamp(rng, value)
    };
    let row = |rng: &mut Rng| {
        let cells = random_map(rng, 3, value);
        random_stamp(rng, cells)
    };
    let table = |rng: &mut Rng| {
        let rows = random_map(rng, 3, row);
        random_stamp(rng, rows)
    };
    let tables = random_map(rng, 2, table);
    let values = random_map(rng, 2, value);
    let (tables, values) = (random_stamp(rng, tables), random_stamp(rng, values));
    format!("[{tables},{values},1]")
}

/// Merges each run of consecutive diffs as far as merging allows, as the hub does.
fn merge_runs(sequence: &[String]) -> Vec<String> {
    let mut merged = Vec::new();
    let mut run: Option<PendingDiff> = None;
    for payload in sequence {
        match PendingDiff::parse(payload, NOW_MS) {
            Some(next) => {
                if !run.as_mut().is_some_and(|pending| pending.absorb(&next)) {
                    merged.extend(run.replace(next).map(PendingDiff::into_payload));
                }
            }
            None => {
                merged.extend(run.take().map(PendingDiff::into_payload));
                merged.push(payload.clone());
            }
        }
    }
    merged.extend(run.map(PendingDiff::into_payload));
    merged
}

/// Applies every case's diffs one by one and merged to TinyBase's own MergeableStore.
fn tinybase_outcomes(cases: &str) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/changes/tinybase_apply.mjs");
    let mut node = Command::new("node")
        .arg(script)
        .arg(NOW_MS.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs the TinyBase oracle (install the repository's npm packages first)");
    node.stdin
        .take()
        .unwrap()
        .write_all(cases.as_bytes())
        .unwrap();
    let output = node.wait_with_output().unwrap();
    assert!(output.status.success(), "the TinyBase oracle failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn merged_diffs_give_tinybase_the_content_applying_them_in_turn_gives() {
    const CASES: usize = 400;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cases = Vec::new();
    let mut merges = 0;
    for _ in 0..CASES {
        let start: Vec<String> = (0..rng.below(2))
            .map(|_| diff(&random_changes(&mut rng)))
            .collect();
        let sequence: Vec<String> = (0..2 + rng.below(5))
            .map(|_| diff(&random_changes(&mut rng)))
            .collect();
        let merged = merge_runs(&sequence);
        merges += sequence.len() - merged.len();
        cases.push(serde_json::json!({"start": start, "sequence": sequence, "merged": merged}));
    }
    // The generator must exercise merging, not only its refusals.
    assert!(merges >= CASES / 2, "only {merges} merges in {CASES} cases");
    let outcomes = tinybase_outcomes(&serde_json::to_string(&cases).unwrap());
    assert_eq!(outcomes.len(), CASES);
    for (case, (in_turn, merged)) in cases.iter().zip(outcomes) {
        assert_eq!(in_turn, merged, "case {case}");
    }
}
