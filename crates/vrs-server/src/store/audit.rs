//! The access log: every read or write of personal data and every sign-in, one
//! entry each, append-only and hash-chained.
//!
//! Each municipality has a chain of its own (chain 0 is the service's), so that
//! appends from different municipalities never wait for each other and a
//! municipality's staff read their own chain. An entry's hash is an HMAC-SHA256,
//! under a key derived from the server's keys (never stored in the database),
//! over the previous entry's hash and the entry's fields: editing, inserting or
//! removing an entry breaks the chain at that point, and someone with the
//! database but not the keys cannot mend it. Cutting entries off the end leaves
//! a shorter chain that still verifies: `vrs admin audit head` prints each chain's
//! last (seq, hash) for the operator to keep elsewhere, and `verify` checks
//! against it.
//!
//! No entry holds a マイナンバー or a name: the object is an id (券番号, import
//! id, record id) or a count.

use chrono::NaiveDateTime;
use ring::hmac;
use serde::Serialize;

use crate::error::{Result, StoreError};
use crate::keys::Keys;

/// A hash in the chain.
pub type Link = [u8; 32];

/// The link before a chain's first entry.
pub const GENESIS: Link = [0; 32];

/// What happened, before it is chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// The municipality whose data it was (0: the service's own chain).
    pub chain: i64,
    pub at: NaiveDateTime,
    /// Who: `staff:131016:a@city.lg.jp`, `device:131016:<uuid>`, `system`.
    pub actor: String,
    /// What: `register.import`, `name.lookup`, `ledger.export`, `signin`, …
    pub action: String,
    /// Which: an id or a count, never personal data in clear.
    pub object: String,
    /// `ok`, `denied`, `not_found`, `failed`, or a short outcome.
    pub outcome: String,
}

/// An entry as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub chain: i64,
    pub seq: i64,
    #[schema(value_type = String, example = "2021-06-01T09:30:00")]
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub outcome: String,
    #[serde(serialize_with = "hex_link")]
    #[schema(value_type = String)]
    pub hash: Link,
    #[serde(skip)]
    pub prev: Link,
}

impl AuditEntry {
    /// The entry an event becomes at `seq`, after `prev`.
    pub fn chained(e: AuditEvent, seq: i64, prev: Link, hash: Link) -> Self {
        AuditEntry {
            chain: e.chain,
            seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            object: e.object,
            outcome: e.outcome,
            hash,
            prev,
        }
    }
}

fn hex_link<S: serde::Serializer>(l: &Link, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(l))
}

/// The chain's key.
pub struct ChainKey(hmac::Key);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

impl ChainKey {
    /// Derived from the look-up key with a label of its own (HKDF), so that the
    /// key file needs no new line and no key serves two purposes.
    pub fn new(keys: &Keys) -> Self {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"vrs audit chain");
        let prk = salt.extract(keys.lookup.expose());
        let okm = prk
            .expand(&[b"hmac-sha256 v1"], hmac::HMAC_SHA256)
            .map(hmac::Key::from);
        // Expanding 32 bytes from SHA-256 cannot fail; a fixed fallback would be
        // worse than none, so a failure would surface as a chain that never verifies.
        ChainKey(okm.unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &[0; 32])))
    }

    /// The hash of entry `seq` of `e.chain`, after `prev`.
    pub fn link(&self, prev: &Link, seq: i64, e: &AuditEvent) -> Link {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(prev);
        ctx.update(&e.chain.to_be_bytes());
        ctx.update(&seq.to_be_bytes());
        let at = e.at.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
        for field in [at.as_str(), &e.actor, &e.action, &e.object, &e.outcome] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// What `verify` found.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub chains: u64,
    pub entries: u64,
    /// Each break: chain, seq, and what is wrong there.
    pub problems: Vec<(i64, i64, String)>,
}

/// Checks entries fed chain by chain, each chain in seq order, holding only the
/// last link.
#[derive(Debug)]
pub struct Verifier<'k> {
    key: &'k ChainKey,
    current: Option<(i64, i64, Link)>,
    report: VerifyReport,
}

impl<'k> Verifier<'k> {
    pub fn new(key: &'k ChainKey) -> Self {
        Verifier {
            key,
            current: None,
            report: VerifyReport::default(),
        }
    }

    pub fn push(&mut self, e: &AuditEntry) {
        let r = &mut self.report;
        r.entries += 1;
        let (expect_seq, expect_prev) = match self.current {
            Some((chain, seq, hash)) if chain == e.chain => (seq + 1, hash),
            _ => {
                r.chains += 1;
                (1, GENESIS)
            }
        };
        if e.seq != expect_seq {
            r.problems.push((
                e.chain,
                e.seq,
                format!(
                    "entries {}..{} are missing",
                    expect_seq,
                    e.seq.saturating_sub(1)
                ),
            ));
        } else if e.prev != expect_prev {
            r.problems
                .push((e.chain, e.seq, "does not follow the entry before it".into()));
        }
        let event = AuditEvent {
            chain: e.chain,
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            object: e.object.clone(),
            outcome: e.outcome.clone(),
        };
        if self.key.link(&e.prev, e.seq, &event) != e.hash {
            r.problems
                .push((e.chain, e.seq, "was changed after it was written".into()));
        }
        self.current = Some((e.chain, e.seq, e.hash));
    }

    /// Checks a kept head against the entry now at its place (`None`: no entry).
    pub fn head(&mut self, kept: (i64, i64, Link), now: Option<&AuditEntry>) {
        let (chain, seq, hash) = kept;
        match now {
            None => self.report.problems.push((
                chain,
                seq,
                "the kept head is gone: entries were cut off the end".into(),
            )),
            Some(e) if e.hash != hash => self.report.problems.push((
                chain,
                seq,
                "differs from the kept head: the chain was rewritten".into(),
            )),
            Some(_) => {}
        }
    }

    pub fn finish(self) -> VerifyReport {
        self.report
    }
}

/// Search filters for a municipality's log.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Entries by this actor (exact).
    pub actor: Option<String>,
    /// Entries of this action (exact, e.g. `name.lookup`).
    pub action: Option<String>,
    /// Entries about this object (exact, e.g. a 券番号).
    pub object: Option<String>,
    /// From this time on (YYYY-MM-DDTHH:MM:SS).
    pub from: Option<NaiveDateTime>,
    /// Up to this time.
    pub to: Option<NaiveDateTime>,
    /// At most this many, newest first (default 200, at most 1000).
    pub limit: Option<u32>,
}

impl AuditQuery {
    pub fn limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(200).clamp(1, 1000))
    }
}

/// Where the log is kept: a file of its own next to the SQLite store, or a table in
/// the PostgreSQL store. Appends serialise per chain only.
pub trait AuditLog: Send + Sync {
    /// Appends an event to its chain; returns the entry as stored.
    fn append(&self, e: &AuditEvent) -> Result<AuditEntry>;
    /// A chain's entries matching `q`, newest first.
    fn search(&self, chain: i64, q: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Every entry, chain by chain, each chain in seq order.
    fn scan(&self, each: &mut dyn FnMut(AuditEntry)) -> Result<()>;
    /// Each chain's last (chain, seq, hash).
    fn heads(&self) -> Result<Vec<(i64, i64, Link)>>;
    fn key(&self) -> &ChainKey;

    /// Walks every chain; `heads` are marks the operator kept.
    fn verify(&self, heads: &[(i64, i64, Link)]) -> Result<VerifyReport> {
        let mut v = Verifier::new(self.key());
        self.scan(&mut |e| v.push(&e))?;
        for h in heads {
            v.head(*h, self.entry(h.0, h.1)?.as_ref());
        }
        Ok(v.finish())
    }

    /// One entry.
    fn entry(&self, chain: i64, seq: i64) -> Result<Option<AuditEntry>>;
}

/// Entries' time, as stored: microseconds (what PostgreSQL keeps).
pub fn micros(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

pub(crate) fn to_link(v: Vec<u8>) -> Result<Link> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("an access-log hash is not 32 bytes".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chain(key: &ChainKey, n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let e = AuditEvent {
                    chain: 131016,
                    at: chrono::NaiveDate::from_ymd_opt(2021, 6, 1)
                        .unwrap()
                        .and_hms_opt(9, 0, seq as u32)
                        .unwrap(),
                    actor: "staff:131016:a@city.lg.jp".into(),
                    action: "name.lookup".into(),
                    object: format!("13101600{seq:02}"),
                    outcome: "ok".into(),
                };
                let hash = key.link(&prev, seq, &e);
                let entry = AuditEntry::chained(e, seq, prev, hash);
                prev = hash;
                entry
            })
            .collect()
    }

    /// A whole set of entries (chain by chain, seq order), checked against kept heads.
    fn verify(
        key: &ChainKey,
        entries: impl IntoIterator<Item = AuditEntry>,
        heads: &[(i64, i64, Link)],
    ) -> VerifyReport {
        let mut v = Verifier::new(key);
        let entries: Vec<AuditEntry> = entries.into_iter().collect();
        for e in &entries {
            v.push(e);
        }
        for h in heads {
            let now = entries.iter().find(|e| e.chain == h.0 && e.seq == h.1);
            v.head(*h, now);
        }
        v.finish()
    }

    fn key() -> ChainKey {
        ChainKey::new(&Keys::generate().unwrap())
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let k = key();
        let r = verify(&k, chain(&k, 5), &[]);
        assert_eq!((r.chains, r.entries), (1, 5));
        assert!(r.problems.is_empty(), "{r:?}");
    }

    #[test]
    fn an_edit_a_removal_and_a_rewrite_are_found() {
        let k = key();
        let mut edited = chain(&k, 5);
        edited[2].object = "1310169999".into();
        assert_eq!(verify(&k, edited, &[]).problems[0].1, 3);

        let mut removed = chain(&k, 5);
        removed.remove(1);
        let p = verify(&k, removed, &[]).problems;
        assert_eq!((p[0].1, p[0].2.as_str()), (3, "entries 2..2 are missing"));

        // Rewritten from entry 3 on with another key: every later link is valid
        // under that key, not under ours.
        let other = key();
        let mut rewritten = chain(&k, 2);
        rewritten.extend(chain(&other, 5).into_iter().skip(2));
        assert!(!verify(&k, rewritten, &[]).problems.is_empty());
    }

    #[test]
    fn a_cut_tail_is_found_only_against_a_kept_head() {
        let k = key();
        let full = chain(&k, 5);
        let head = (131016, 5, full[4].hash);
        let cut: Vec<_> = full.into_iter().take(3).collect();
        assert!(verify(&k, cut.clone(), &[]).problems.is_empty());
        let p = verify(&k, cut, &[head]).problems;
        assert_eq!(p.len(), 1);
        assert!(p[0].2.contains("cut off"));
    }
}
