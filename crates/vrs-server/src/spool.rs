//! An upload is received whole before its import begins, so that a slow connection
//! never holds the import's write lock (SQLite's one writer; a municipality's lock
//! on PostgreSQL) while tablets wait. It is held in an anonymous temporary file,
//! encrypted (AES-256-GCM, 64 KiB blocks) under a key that lives only in memory for
//! the upload's lifetime: a register names people and carries their マイナンバー,
//! and no clear copy of it may reach a disk.

use std::io::{self, Read, Seek, SeekFrom, Write};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

const BLOCK: usize = 64 * 1024;
const TAG: usize = 16;

/// The spooled upload, read back block by block.
pub struct Spooled {
    file: std::fs::File,
    key: LessSafeKey,
    blocks: u64,
    next: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl std::fmt::Debug for Spooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spooled({} blocks)", self.blocks)
    }
}

fn nonce(block: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[NONCE_LEN - 8..].copy_from_slice(&block.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn crypto_error() -> io::Error {
    io::Error::other("the spooled upload could not be sealed or opened")
}

/// Why an upload could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The upload itself broke off (or could not be read).
    #[error("the upload broke off: {0}")]
    Input(io::Error),
    #[error("the upload is larger than {0} bytes")]
    TooLarge(u64),
    /// The temporary file failed: the service's side.
    #[error("the upload could not be held: {0}")]
    Local(io::Error),
}

/// Reads `input` to its end (at most `max` bytes) into an encrypted temporary file
/// in `dir`.
pub fn spool(input: &mut dyn Read, dir: &std::path::Path, max: u64) -> Result<Spooled, SpoolError> {
    use SpoolError::{Input, Local, TooLarge};
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| Local(crypto_error()))?;
    let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| Local(crypto_error()));
    raw.zeroize();
    let key = LessSafeKey::new(key?);
    let mut file = tempfile::tempfile_in(dir).map_err(Local)?;
    let mut out = io::BufWriter::new(&mut file);
    let mut buf = Vec::with_capacity(BLOCK + TAG);
    let (mut blocks, mut total) = (0u64, 0u64);
    loop {
        buf.clear();
        let n = input
            .take(BLOCK as u64)
            .read_to_end(&mut buf)
            .map_err(Input)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max {
            buf.zeroize();
            return Err(TooLarge(max));
        }
        // Each block says its own length; the last may be short. The block number
        // is the nonce (one key per upload) and the associated data, so blocks can
        // be neither reordered nor cut without the reader noticing.
        key.seal_in_place_append_tag(nonce(blocks), Aad::from(blocks.to_be_bytes()), &mut buf)
            .map_err(|_| Local(crypto_error()))?;
        out.write_all(&(buf.len() as u32).to_be_bytes())
            .and_then(|()| out.write_all(&buf))
            .map_err(Local)?;
        blocks += 1;
        if n < BLOCK {
            break;
        }
    }
    out.flush().map_err(Local)?;
    drop(out);
    buf.zeroize();
    file.seek(SeekFrom::Start(0)).map_err(Local)?;
    Ok(Spooled {
        file,
        key,
        blocks,
        next: 0,
        buf: Vec::new(),
        pos: 0,
    })
}

impl Spooled {
    fn fill(&mut self) -> io::Result<bool> {
        if self.next == self.blocks {
            return Ok(false);
        }
        let mut len = [0u8; 4];
        self.file.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG..=BLOCK + TAG).contains(&len) {
            return Err(crypto_error());
        }
        self.buf.zeroize();
        self.buf.resize(len, 0);
        self.file.read_exact(&mut self.buf)?;
        let plain = self
            .key
            .open_in_place(
                nonce(self.next),
                Aad::from(self.next.to_be_bytes()),
                &mut self.buf,
            )
            .map_err(|_| crypto_error())?
            .len();
        self.buf.truncate(plain);
        self.pos = 0;
        self.next += 1;
        Ok(true)
    }
}

impl Read for Spooled {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round_trip(len: usize) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(&mut data.as_slice(), dir.path(), u64::MAX).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, data, "length {len}");
    }

    #[test]
    fn any_length_comes_back_whole() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            round_trip(len);
        }
    }

    #[test]
    fn the_file_holds_no_clear_text() {
        // A valid number (eleven digits and their check digit), made, not written out.
        let first: [u8; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1];
        let check = vrs_domain::my_number::MyNumber::check_digit(&first);
        let number: String = first
            .iter()
            .chain([&check])
            .map(|d| char::from(b'0' + d))
            .collect();
        let text = format!("個別宛名番号,マイナンバー\n1001,{number}\n").repeat(5000);
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(&mut text.as_bytes(), dir.path(), u64::MAX).unwrap();
        let mut on_disk = Vec::new();
        s.file.seek(SeekFrom::Start(0)).unwrap();
        s.file.read_to_end(&mut on_disk).unwrap();
        assert!(on_disk.len() > text.len());
        assert!(
            !on_disk.windows(12).any(|w| w == number.as_bytes()),
            "a number in clear"
        );
        // And the file is anonymous: nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_upload_over_the_limit_is_refused() {
        let data = vec![b'1'; BLOCK + 10];
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            spool(&mut data.as_slice(), dir.path(), BLOCK as u64),
            Err(SpoolError::TooLarge(_))
        ));
        assert!(spool(&mut data.as_slice(), dir.path(), BLOCK as u64 + 10).is_ok());
    }

    #[test]
    fn a_changed_byte_is_refused_not_read() {
        let data = vec![b'7'; 2 * BLOCK];
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(&mut data.as_slice(), dir.path(), u64::MAX).unwrap();
        s.file.seek(SeekFrom::Start(BLOCK as u64)).unwrap();
        s.file.write_all(&[0]).unwrap();
        s.file.seek(SeekFrom::Start(0)).unwrap();
        let mut back = Vec::new();
        assert!(s.read_to_end(&mut back).is_err());
    }
}
