//! The マイナンバー vault's parts shared by both backends: its cryptography, and
//! the writer that fills a vault beside a register import.
//!
//! A number is sealed with AES-256-GCM under (municipality code, 個別宛名番号) as
//! associated data, so a sealed number cannot be moved to another person, and found
//! by an HMAC-SHA256 under a separate key, without decrypting anything.

use std::collections::HashMap;
use std::sync::mpsc;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use vrs_domain::{MunicipalityCode, MyNumber};
use zeroize::Zeroize;

use crate::error::{Result, StoreError};
use crate::keys::Keys;

/// The keyed hash a number is found by.
pub type LookupHash = [u8; 32];

/// People registered in more than one municipality with the same number: for each
/// (municipality, 個別宛名番号) asked about, the others. Found by the keyed hash,
/// never by name; no number leaves the vault.
pub type Links = HashMap<(MunicipalityCode, String), Vec<(MunicipalityCode, String)>>;

/// The vault's cryptography, the same for every backend.
pub struct VaultCrypto {
    seal: LessSafeKey,
    mac: hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for VaultCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultCrypto(<keys>)")
    }
}

impl VaultCrypto {
    pub fn new(keys: &Keys) -> Result<Self> {
        Ok(VaultCrypto {
            seal: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, keys.vault.expose())
                    .map_err(|_| StoreError::Crypto)?,
            ),
            mac: hmac::Key::new(hmac::HMAC_SHA256, keys.lookup.expose()),
            rng: SystemRandom::new(),
        })
    }

    /// The keyed hash a number is found by.
    pub fn lookup_hash(&self, n: &MyNumber) -> LookupHash {
        let tag = hmac::sign(&self.mac, n.expose_for_vault());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Seals a number to its person: (nonce, ciphertext with tag).
    pub fn seal(
        &self,
        municipality: MunicipalityCode,
        person: &str,
        n: &MyNumber,
    ) -> Result<([u8; NONCE_LEN], Vec<u8>)> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| StoreError::Crypto)?;
        let mut buf = n.expose_for_vault().to_vec();
        if self
            .seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(municipality, person)),
                &mut buf,
            )
            .is_err()
        {
            buf.zeroize();
            return Err(StoreError::Crypto);
        }
        Ok((nonce, buf))
    }

    /// Opens a sealed number; fails if it was sealed to another person or key.
    pub fn open(
        &self,
        municipality: MunicipalityCode,
        person: &str,
        nonce: &[u8],
        mut sealed: Vec<u8>,
    ) -> Result<MyNumber> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| StoreError::Crypto)?;
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(aad(municipality, person)), &mut sealed)
            .map_err(|_| StoreError::Crypto)?;
        let parsed = std::str::from_utf8(plain)
            .ok()
            .and_then(|s| s.parse::<MyNumber>().ok());
        sealed.zeroize();
        parsed.ok_or(StoreError::Crypto)
    }
}

fn aad(municipality: MunicipalityCode, person: &str) -> Vec<u8> {
    format!("vrs-vault-v1|{municipality}|{person}").into_bytes()
}

/// A number sealed on the import's thread, for the vault writer: no マイナンバー
/// crosses to the writer's thread.
#[derive(Debug)]
pub struct SealedNumber {
    pub person: String,
    pub lookup: LookupHash,
    pub nonce: [u8; NONCE_LEN],
    pub sealed: Vec<u8>,
}

/// A backend's write transaction on its vault, held by the vault writer's thread for
/// one import. Dropping it rolls back.
pub trait VaultWrite {
    /// The look-up hashes stored for these people (in this municipality).
    fn hashes(&mut self, people: &[&str]) -> Result<HashMap<String, LookupHash>>;
    /// Stores (or replaces) these sealed numbers.
    fn put(&mut self, rows: Vec<SealedNumber>) -> Result<()>;
    fn commit(self) -> Result<()>;
}

type HashesAnswer = mpsc::Receiver<Result<HashMap<String, LookupHash>>>;

/// Work for the vault writer, in the order the import sends it.
#[derive(Debug)]
pub enum VaultJob {
    /// The stored hashes of these people, answered on the channel.
    Hashes(
        Vec<String>,
        mpsc::Sender<Result<HashMap<String, LookupHash>>>,
    ),
    Put(Vec<SealedNumber>),
    /// Commit (true) or roll back, and say how it went; the writer then stops.
    Finish(bool, mpsc::Sender<Result<()>>),
}

/// The import's end of the vault writer: the register is written on the import's
/// thread while the vault's own transaction goes on beside it, on the writer's
/// thread (half an import's time is the vault's own inserts). If the import stops
/// early, this end is dropped, the writer's loop ends and its transaction rolls back.
#[derive(Debug)]
pub struct VaultWriter {
    jobs: mpsc::SyncSender<VaultJob>,
    /// The answer to a prefetch of hashes, still on its way.
    pending: Option<HashesAnswer>,
}

fn writer_stopped() -> StoreError {
    StoreError::VaultWriter("the vault writer stopped".into())
}

/// A vault writer's two ends: the import's, and the inbox to [`serve`] on the
/// writer's thread. Bounded: a vault slower than the file holds the reader back,
/// rather than queueing the file's numbers in memory.
pub fn vault_writer() -> (VaultWriter, mpsc::Receiver<VaultJob>) {
    // Deep enough (128 chunks, about 35 MB) that the import goes on reading while
    // the writer writes out a batch of numbers.
    let (jobs, inbox) = mpsc::sync_channel(128);
    (
        VaultWriter {
            jobs,
            pending: None,
        },
        inbox,
    )
}

impl VaultWriter {
    fn ask(&self, people: &[&str]) -> Result<HashesAnswer> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send(VaultJob::Hashes(
                people.iter().map(|s| (*s).to_owned()).collect(),
                reply,
            ))
            .map_err(|_| writer_stopped())?;
        Ok(answer)
    }

    /// The stored hashes of these people: the prefetched answer if there is one.
    pub fn hashes(&mut self, people: &[&str]) -> Result<HashMap<String, LookupHash>> {
        let answer = match self.pending.take() {
            Some(answer) => answer,
            None => self.ask(people)?,
        };
        answer.recv().unwrap_or_else(|_| Err(writer_stopped()))
    }

    /// Asks for the hashes of the next chunk's people now, to be taken by [`Self::hashes`].
    pub fn prefetch(&mut self, people: &[&str]) -> Result<()> {
        self.pending = Some(self.ask(people)?);
        Ok(())
    }

    /// Seals the numbers here, on the import's thread, and sends them to be stored.
    pub fn put(
        &self,
        crypto: &VaultCrypto,
        municipality: MunicipalityCode,
        rows: &[(&str, &MyNumber, &LookupHash)],
    ) -> Result<()> {
        let mut sealed = Vec::with_capacity(rows.len());
        for (person, n, lookup) in rows {
            let (nonce, buf) = crypto.seal(municipality, person, n)?;
            sealed.push(SealedNumber {
                person: (*person).to_owned(),
                lookup: **lookup,
                nonce,
                sealed: buf,
            });
        }
        self.jobs
            .send(VaultJob::Put(sealed))
            .map_err(|_| writer_stopped())
    }

    /// Commits (or rolls back) the vault's transaction and says how it went, with
    /// the first failed write if there was one.
    pub fn finish(self, commit: bool) -> Result<()> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send(VaultJob::Finish(commit, reply))
            .map_err(|_| writer_stopped())?;
        answer.recv().unwrap_or_else(|_| Err(writer_stopped()))
    }
}

/// Serves one import's vault jobs in order on the writer's thread, so a question
/// about hashes sees every earlier write. After a failed write (or a transaction
/// that could not begin) it answers every later job with a failure, the first one
/// at the finish, and rolls back.
pub fn serve<W: VaultWrite>(tx: Result<W>, inbox: mpsc::Receiver<VaultJob>) {
    let failed_earlier =
        || StoreError::VaultWriter("a vault write failed earlier in this import".into());
    let (mut tx, mut failed) = match tx {
        Ok(tx) => (Some(tx), None),
        Err(e) => (None, Some(e)),
    };
    for job in inbox {
        match job {
            VaultJob::Hashes(people, reply) => {
                let answer = match (&mut tx, &failed) {
                    (Some(tx), None) => {
                        let people: Vec<&str> = people.iter().map(String::as_str).collect();
                        tx.hashes(&people)
                    }
                    _ => Err(failed_earlier()),
                };
                let _ = reply.send(answer);
            }
            VaultJob::Put(rows) => {
                if let (Some(t), None) = (&mut tx, &failed)
                    && let Err(e) = t.put(rows)
                {
                    failed = Some(e);
                }
            }
            VaultJob::Finish(commit, reply) => {
                let done = match (tx.take(), failed.take()) {
                    (_, Some(e)) => Err(e),
                    (Some(tx), None) if commit => tx.commit(),
                    _ => Ok(()), // dropping the transaction rolls it back
                };
                let _ = reply.send(done);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A vault transaction in memory: what it holds, whether it committed, and a
    /// person whose write fails.
    #[derive(Default)]
    struct Fake {
        held: HashMap<String, LookupHash>,
        committed: Arc<Mutex<Option<HashMap<String, LookupHash>>>>,
        refuse: Option<&'static str>,
    }

    impl VaultWrite for Fake {
        fn hashes(&mut self, people: &[&str]) -> Result<HashMap<String, LookupHash>> {
            Ok(people
                .iter()
                .filter_map(|p| Some(((*p).to_owned(), *self.held.get(*p)?)))
                .collect())
        }
        fn put(&mut self, rows: Vec<SealedNumber>) -> Result<()> {
            for r in rows {
                if Some(r.person.as_str()) == self.refuse {
                    return Err(StoreError::Invalid(format!("refused {}", r.person)));
                }
                self.held.insert(r.person, r.lookup);
            }
            Ok(())
        }
        fn commit(self) -> Result<()> {
            *self.committed.lock().unwrap() = Some(self.held);
            Ok(())
        }
    }

    fn run(
        fake: Fake,
        import: impl FnOnce(&mut VaultWriter, &VaultCrypto) -> Result<()>,
    ) -> Result<()> {
        let crypto = VaultCrypto::new(&Keys::generate().unwrap()).unwrap();
        std::thread::scope(|scope| {
            let (mut writer, inbox) = vault_writer();
            scope.spawn(move || serve(Ok(fake), inbox));
            import(&mut writer, &crypto)?;
            writer.finish(true)
        })
    }

    fn number(crypto: &VaultCrypto) -> (MyNumber, LookupHash) {
        // domain.md's example, made from its eleven digits and their check digit.
        let first: [u8; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1];
        let check = MyNumber::check_digit(&first);
        let n: MyNumber = first
            .iter()
            .chain([&check])
            .map(|d| char::from(b'0' + d))
            .collect::<String>()
            .parse()
            .unwrap();
        let h = crypto.lookup_hash(&n);
        (n, h)
    }

    #[test]
    fn a_question_about_hashes_sees_every_earlier_write_and_the_finish_commits() {
        let committed = Arc::new(Mutex::new(None));
        let fake = Fake {
            committed: committed.clone(),
            ..Fake::default()
        };
        let m: MunicipalityCode = "131016".parse().unwrap();
        run(fake, |w, crypto| {
            let (n, h) = number(crypto);
            w.put(crypto, m, &[("1001", &n, &h)])?;
            w.prefetch(&["1001", "1002"])?;
            let found = w.hashes(&["1001", "1002"])?;
            assert_eq!(found.len(), 1);
            assert_eq!(found["1001"], h);
            Ok(())
        })
        .unwrap();
        assert_eq!(committed.lock().unwrap().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn after_a_failed_write_later_questions_fail_and_the_finish_names_the_first_failure() {
        let committed = Arc::new(Mutex::new(None));
        let fake = Fake {
            committed: committed.clone(),
            refuse: Some("1002"),
            ..Fake::default()
        };
        let m: MunicipalityCode = "131016".parse().unwrap();
        let e = run(fake, |w, crypto| {
            let (n, h) = number(crypto);
            w.put(crypto, m, &[("1001", &n, &h), ("1002", &n, &h)])?;
            let later = w.hashes(&["1001"]).unwrap_err();
            assert!(matches!(later, StoreError::VaultWriter(_)), "{later}");
            Ok(())
        })
        .unwrap_err();
        assert!(e.to_string().contains("refused 1002"), "{e}");
        assert!(committed.lock().unwrap().is_none(), "rolled back");
    }

    #[test]
    fn an_import_that_stops_early_rolls_the_vault_back() {
        let committed = Arc::new(Mutex::new(None));
        let fake = Fake {
            committed: committed.clone(),
            ..Fake::default()
        };
        let m: MunicipalityCode = "131016".parse().unwrap();
        let e = run(fake, |w, crypto| {
            let (n, h) = number(crypto);
            w.put(crypto, m, &[("1001", &n, &h)])?;
            Err(StoreError::Invalid("the file broke off".into()))
        })
        .unwrap_err();
        assert!(e.to_string().contains("broke off"));
        assert!(committed.lock().unwrap().is_none());
    }
}
