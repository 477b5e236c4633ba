//! Sync: the outbox sent to the server in batches, until every record has a receipt.
//!
//! The decisions are plain functions, table-tested: how long to wait after the n-th
//! failure ([`backoff`]: exponential with full jitter, so a thousand tablets coming
//! back online together do not all knock at once) and whether to wait or stop
//! ([`decide`]). [`run`] carries them out over the outbox and the API. Every record
//! is marked sent before it leaves and is only changed by its receipt, and the
//! server is idempotent by client record id, so a sync cut anywhere (a kill, a
//! dropped connection, a lost answer) is simply run again.

use std::time::{Duration, Instant};

use vrs_domain::wire::{Outcome, UploadBatch};

use crate::api::{Api, ApiError, Tablet};
use crate::outbox::{Outbox, OutboxError, Status};

/// How a sync behaves.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Records per request (the server takes up to `vrs_domain::wire::MAX_BATCH`).
    pub batch: usize,
    /// The first wait after a failure.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// Stop retrying after this long, leaving the rest queued for the next sync.
    pub give_up_after: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            batch: 500,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            give_up_after: Duration::from_secs(120),
        }
    }
}

/// The wait after the `failures`-th failure in a row (1 = the first): a random
/// point (`jitter` in 0..1) below `base × 2^(failures-1)`, capped at `max`, and never
/// less than the server's Retry-After.
pub fn backoff(
    failures: u32,
    opts: &SyncOptions,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let ceiling = opts
        .base_delay
        .saturating_mul(1u32 << exp)
        .min(opts.max_delay);
    let wait = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(r) => wait.max(r.min(opts.max_delay)),
        None => wait,
    }
}

/// What to do after a failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Wait(Duration),
    /// Stop: retrying cannot help now (or the time is up); the reason is kept.
    Stop(String),
}

/// Wait and retry, or stop: a refusal stops at once; anything else is retried with
/// [`backoff`] until `give_up_after` would pass.
pub fn decide(
    error: &ApiError,
    failures: u32,
    elapsed: Duration,
    opts: &SyncOptions,
    jitter: f64,
) -> Next {
    if !error.retryable() {
        return Next::Stop(error.to_string());
    }
    let retry_after = match error {
        ApiError::Unavailable { retry_after, .. } => *retry_after,
        _ => None,
    };
    let wait = backoff(failures, opts, jitter, retry_after);
    if elapsed + wait > opts.give_up_after {
        Next::Stop(format!("{error} (gave up after {} s)", elapsed.as_secs()))
    } else {
        Next::Wait(wait)
    }
}

/// Time, for the executor (tests run it without sleeping).
pub trait Clock {
    fn now(&mut self) -> Instant;
    fn sleep(&mut self, d: Duration);
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&mut self) -> Instant {
        Instant::now()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    pub batches: u32,
    pub records_sent: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub held: u64,
    /// Records the server would not store (they name another site).
    pub refused: u64,
    pub retries: u32,
    /// Why it stopped before the outbox was empty.
    pub stopped: Option<String>,
    pub status: Status,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Sends everything queued (and everything sent without a receipt), batch by batch.
pub fn run(
    outbox: &mut Outbox,
    api: &Api,
    opts: &SyncOptions,
    clock: &mut dyn Clock,
) -> Result<SyncReport, SyncError> {
    let enrolled = outbox.enrolment()?;
    let tablet = Tablet {
        device: enrolled.device.device_id,
        key: &enrolled.key,
    };
    let started = clock.now();
    let mut report = SyncReport::default();
    let mut failures = 0u32;
    loop {
        let records = outbox.next_batch(opts.batch.max(1))?;
        if records.is_empty() {
            break;
        }
        let batch = UploadBatch { records };
        let result = api.upload(tablet, &batch).and_then(|r| {
            // One receipt per record, in order: anything else is not an answer to this batch.
            let matches = r.receipts.len() == batch.records.len()
                && r.receipts
                    .iter()
                    .zip(&batch.records)
                    .all(|(a, b)| a.client_record_id == b.client_record_id);
            if matches {
                Ok(r)
            } else {
                Err(ApiError::BadAnswer(format!(
                    "{} receipts for {} records, or in another order",
                    r.receipts.len(),
                    batch.records.len()
                )))
            }
        });
        match result {
            Ok(r) => {
                outbox.apply_receipts(&r.receipts)?;
                failures = 0;
                report.batches += 1;
                report.records_sent += batch.records.len() as u64;
                for rc in &r.receipts {
                    match rc.outcome {
                        Outcome::Accepted => report.accepted += 1,
                        Outcome::Duplicate => report.duplicates += 1,
                        Outcome::Held { .. } => report.held += 1,
                        Outcome::Refused { .. } => report.refused += 1,
                    }
                }
            }
            Err(e) => {
                failures += 1;
                outbox.note_error(&e.to_string())?;
                let elapsed = clock.now().saturating_duration_since(started);
                match decide(&e, failures, elapsed, opts, fastrand::f64()) {
                    Next::Wait(d) => {
                        report.retries += 1;
                        clock.sleep(d);
                    }
                    Next::Stop(why) => {
                        report.stopped = Some(why);
                        break;
                    }
                }
            }
        }
    }
    report.status = outbox.status()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SyncOptions {
        SyncOptions {
            batch: 10,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            give_up_after: Duration::from_secs(120),
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_full_jitter() {
        let o = opts();
        let ms = |f, j, ra: Option<u64>| {
            backoff(f, &o, j, ra.map(Duration::from_secs)).as_millis() as u64
        };
        for (failures, jitter, retry_after, expected) in [
            (1, 1.0, None, 500),
            (2, 1.0, None, 1000),
            (3, 1.0, None, 2000),
            (3, 0.5, None, 1000),
            (3, 0.0, None, 0),
            (8, 1.0, None, 60_000),
            (40, 1.0, None, 60_000),
            (1, 0.0, Some(5), 5000),
            (1, 1.0, Some(600), 60_000),
            (0, 1.0, None, 500),
            (2, 7.0, None, 1000),
        ] {
            assert_eq!(
                ms(failures, jitter, retry_after),
                expected,
                "failures {failures}, jitter {jitter}, retry-after {retry_after:?}"
            );
        }
    }

    #[test]
    fn refusals_stop_at_once_and_outages_wait_until_the_time_is_up() {
        let o = opts();
        let down = ApiError::Unreachable("connection refused".into());
        let busy = ApiError::Unavailable {
            status: 503,
            message: "busy".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        let revoked = ApiError::Refused {
            status: 401,
            message: "this tablet has been revoked".into(),
        };
        let secs = Duration::from_secs;
        assert_eq!(
            decide(&down, 1, secs(0), &o, 1.0),
            Next::Wait(Duration::from_millis(500))
        );
        assert_eq!(decide(&busy, 1, secs(0), &o, 0.0), Next::Wait(secs(3)));
        assert!(matches!(
            decide(&revoked, 1, secs(0), &o, 1.0),
            Next::Stop(why) if why.contains("revoked")
        ));
        assert!(matches!(
            decide(&down, 9, secs(100), &o, 1.0),
            Next::Stop(why) if why.contains("gave up")
        ));
        assert_eq!(decide(&down, 9, secs(100), &o, 0.1), Next::Wait(secs(6)));
        assert!(matches!(
            decide(&ApiError::BadAnswer("x".into()), 1, secs(0), &o, 1.0),
            Next::Wait(_)
        ));
    }
}
