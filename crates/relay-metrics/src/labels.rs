//! Label sets: every value a label can take is known in advance, so a labelled metric is a fixed
//! array of instruments indexed by its labels, with nothing to allocate or look up when counting.

use std::marker::PhantomData;
use std::ops::Index;

/// A closed set of label values: the `COUNT` combinations are numbered `0..COUNT`.
pub trait LabelSet: Copy {
    const COUNT: usize;
    fn index(self) -> usize;
    /// The label names and values of combination `index`.
    fn labels(index: usize) -> Vec<(&'static str, &'static str)>;
}

/// Declares an enum of label values for one label name.
macro_rules! label_set {
    ($(#[doc = $doc:literal])* $name:ident($label:literal) { $($(#[doc = $variant_doc:literal])* $variant:ident => $value:literal,)+ }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[doc = $variant_doc])* $variant,)+
        }

        impl $name {
            const VALUES: &'static [&'static str] = &[$($value,)+];
        }

        impl LabelSet for $name {
            const COUNT: usize = Self::VALUES.len();

            fn index(self) -> usize {
                self as usize
            }

            fn labels(index: usize) -> Vec<(&'static str, &'static str)> {
                vec![($label, Self::VALUES[index])]
            }
        }
    };
}

label_set! {
    /// Where a connection is served: taken over by the native plane, or kept in `ws`.
    Plane("plane") {
        Native => "native",
        Js => "js",
    }
}

label_set! {
    /// Why a message was dropped instead of relayed.
    DropReason("reason") {
        /// Not a valid sync message (`tinybase:14`).
        Invalid => "invalid",
        /// The client may not use the path.
        Denied => "denied",
        /// The client may only read the path.
        ReadOnly => "read_only",
        /// Over a limit (`tinybase:15`): size, backlog, fragments, channels or a startup hold.
        Overflow => "overflow",
    }
}

/// A WebSocket close code, as a label: each code of RFC 6455's range on its own, the registered
/// and private ranges as one value each, so a peer cannot grow the number of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode(usize);

impl CloseCode {
    const VALUES: [&'static str; 19] = [
        "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010",
        "1011", "1012", "1013", "1014", "1015", "3xxx", "4xxx", "other",
    ];

    pub fn of(code: u16) -> CloseCode {
        CloseCode(match code {
            1000..=1015 => usize::from(code - 1000),
            3000..=3999 => 16,
            4000..=4999 => 17,
            _ => 18,
        })
    }
}

impl LabelSet for CloseCode {
    const COUNT: usize = CloseCode::VALUES.len();

    fn index(self) -> usize {
        self.0
    }

    fn labels(index: usize) -> Vec<(&'static str, &'static str)> {
        vec![("code", CloseCode::VALUES[index])]
    }
}

/// Two labels at once, e.g. plane and close code.
impl<A: LabelSet, B: LabelSet> LabelSet for (A, B) {
    const COUNT: usize = A::COUNT * B::COUNT;

    fn index(self) -> usize {
        self.0.index() * B::COUNT + self.1.index()
    }

    fn labels(index: usize) -> Vec<(&'static str, &'static str)> {
        let mut labels = A::labels(index / B::COUNT);
        labels.extend(B::labels(index % B::COUNT));
        labels
    }
}

/// One instrument per combination of labels, e.g. `messages_dropped_total[DropReason::Invalid]`.
#[derive(Debug)]
pub struct Labeled<L, M> {
    instruments: Box<[M]>,
    labels: PhantomData<L>,
}

impl<L: LabelSet, M: Default> Default for Labeled<L, M> {
    fn default() -> Self {
        Labeled {
            instruments: (0..L::COUNT).map(|_| M::default()).collect(),
            labels: PhantomData,
        }
    }
}

impl<L: LabelSet, M> Index<L> for Labeled<L, M> {
    type Output = M;

    fn index(&self, labels: L) -> &M {
        &self.instruments[labels.index()]
    }
}

impl<L: LabelSet, M> Labeled<L, M> {
    /// Every combination's labels with its instrument, in index order.
    pub fn each(&self) -> impl Iterator<Item = (Vec<(&'static str, &'static str)>, &M)> {
        self.instruments
            .iter()
            .enumerate()
            .map(|(index, instrument)| (L::labels(index), instrument))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Counter;

    #[test]
    fn close_codes_keep_the_defined_ones_apart_and_group_the_ranges() {
        assert_eq!(
            CloseCode::labels(CloseCode::of(1000).index()),
            [("code", "1000")]
        );
        assert_eq!(
            CloseCode::labels(CloseCode::of(1015).index()),
            [("code", "1015")]
        );
        assert_eq!(
            CloseCode::labels(CloseCode::of(3001).index()),
            [("code", "3xxx")]
        );
        assert_eq!(
            CloseCode::labels(CloseCode::of(4999).index()),
            [("code", "4xxx")]
        );
        for code in [0, 999, 1016, 2999, 5000, u16::MAX] {
            assert_eq!(
                CloseCode::labels(CloseCode::of(code).index()),
                [("code", "other")]
            );
        }
    }

    #[test]
    fn each_combination_of_two_labels_has_its_own_instrument() {
        let closed = Labeled::<(Plane, CloseCode), Counter>::default();
        closed[(Plane::Js, CloseCode::of(1006))].inc();
        closed[(Plane::Native, CloseCode::of(1006))].add(2);
        let counted: Vec<_> = closed
            .each()
            .filter(|(_, counter)| counter.get() > 0)
            .map(|(labels, counter)| (labels, counter.get()))
            .collect();
        assert_eq!(
            counted,
            [
                (vec![("plane", "native"), ("code", "1006")], 2),
                (vec![("plane", "js"), ("code", "1006")], 1),
            ]
        );
        assert_eq!(closed.each().count(), 2 * 19);
    }
}
