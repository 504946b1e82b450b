//! Deduplication keys: re-importing an overlapping statement must never
//! duplicate an operation.
//!
//! - With a bank transaction id (OFX FITID, camt AcctSvcrRef / NtryRef, a
//!   CSV id column): `id:` + the id. Banks promise these are unique per
//!   account and stable, so the same id with another amount or date is a
//!   conflict, refused by the store.
//! - Without one: `fp:` + a fingerprint, BLAKE3 of (account id, date,
//!   amount, normalised label, occurrence). The occurrence is the index of
//!   the operation among identical (date, amount, label) operations of the
//!   same statement, so two real identical coffees on one day stay two
//!   operations, and a later statement containing the same day again gives
//!   them the same two keys.

use std::collections::BTreeMap;

use super::model::{Amount, Date};
use super::statement::ParsedOp;

/// The label with case, punctuation and spacing differences removed
/// (exports of one bank vary in these between two downloads).
pub fn normalize_label(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut space = false;
    for c in label.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else {
            space = true;
        }
    }
    out
}

/// The fingerprint key of an operation without a bank id.
pub fn fingerprint(account: &str, date: Date, amount: &Amount, label: &str, occurrence: u32) -> String {
    let mut h = blake3::Hasher::new();
    for part in [account, &date.to_string(), &amount.normalized().to_string(), &normalize_label(label)] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(&occurrence.to_le_bytes());
    format!("fp:{}", hex::encode(&h.finalize().as_bytes()[..16]))
}

/// The keys of a statement's operations, in order. `given` holds keys that
/// came with the file (Cozy JSON exports of Hearth), used where present.
pub fn keys(account: &str, ops: &[ParsedOp], given: &[Option<String>]) -> Vec<String> {
    let mut seen: BTreeMap<(Date, Amount, String), u32> = BTreeMap::new();
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            if let Some(Some(k)) = given.get(i) {
                return k.clone();
            }
            if let Some(id) = &op.bank_id {
                return format!("id:{id}");
            }
            let n = seen.entry((op.date, op.amount.normalized(), normalize_label(&op.label))).or_insert(0);
            let key = fingerprint(account, op.date, &op.amount, &op.label, *n);
            *n += 1;
            key
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(label: &str, amount: &str) -> ParsedOp {
        ParsedOp::new(1, Date::new(2024, 1, 5).expect("date"), amount.parse().expect("amount"), label.into())
    }

    #[test]
    fn identical_rows_get_distinct_stable_keys() {
        let ops = vec![op("CAFE", "-2.50"), op("Café", "-2.50"), op("café ", "-2.5"), op("CAFE", "-2.60")];
        let k = keys("a", &ops, &[]);
        // "CAFE" and "café" normalise differently (accent kept), "Café" and "café " alike.
        assert_ne!(k[0], k[1]);
        assert_ne!(k[1], k[2], "second identical row gets occurrence 1");
        assert_eq!(k[2], fingerprint("a", ops[2].date, &"-2.50".parse().expect("a"), "CAFÉ", 1));
        assert_ne!(k[0], k[3]);
        // The same rows in a later file, in the same order, give the same keys.
        assert_eq!(keys("a", &ops, &[]), k);
        // Another account, other keys.
        assert_ne!(keys("b", &ops, &[])[0], k[0]);
        let mut with_id = op("X", "1");
        with_id.bank_id = Some("F1".into());
        assert_eq!(keys("a", &[with_id], &[]), vec!["id:F1".to_string()]);
        assert_eq!(normalize_label("  CB*Carrefour  City/Paris "), "cb carrefour city paris");
    }
}
