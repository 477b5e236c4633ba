//! Staff and sign-in: the municipal users of 様式1, the contacts of 様式2, and the
//! rules of signing in by a one-time passcode sent by e-mail. The rules are plain
//! functions over values, table-tested; the backends store what they decide.

use chrono::{Duration, NaiveDateTime};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use vrs_domain::MunicipalityCode;

use crate::error::{Result, StoreError};

/// At most this many users per municipality (様式1).
pub const MAX_USERS: usize = 10;
/// A passcode is good for this long.
pub const PASSCODE_VALID: Duration = Duration::minutes(10);
/// Wrong passcodes in a row before the account is locked.
pub const MAX_FAILURES: u32 = 5;
/// How long a lock lasts.
pub const LOCKOUT: Duration = Duration::minutes(15);
/// A new passcode no sooner than this after the last.
pub const RESEND_AFTER: Duration = Duration::seconds(30);
/// A session ends this long after sign-in, however busy.
pub const SESSION_MAX: Duration = Duration::hours(8);
/// …or after this long unused.
pub const SESSION_IDLE: Duration = Duration::minutes(30);

/// A municipal user as 様式1 lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// In the lg.jp domain; receives the passcode at each sign-in.
    pub email: String,
    /// 担当課 (team).
    #[serde(default)]
    pub team: String,
    /// 担当者 (person).
    pub person: String,
    /// The team's phone.
    #[serde(default)]
    pub phone: String,
    /// 転出入連絡先: exactly one user of a municipality is.
    #[serde(default)]
    pub transfer_contact: bool,
}

impl User {
    /// Checks the form; the e-mail as stored.
    pub fn check(&self) -> Result<String> {
        let email = lg_jp_email(&self.email)?;
        if self.person.trim().is_empty() {
            return Err(StoreError::Invalid(
                "person is empty: give the person's name (担当者)".into(),
            ));
        }
        for (what, v) in [
            ("team", &self.team),
            ("person", &self.person),
            ("phone", &self.phone),
        ] {
            if v.chars().count() > 100 || v.chars().any(char::is_control) {
                return Err(StoreError::Invalid(format!(
                    "{what}: at most 100 characters and no control characters"
                )));
            }
        }
        if !self
            .phone
            .chars()
            .all(|c| c.is_ascii_digit() || "-+() ".contains(c))
        {
            return Err(StoreError::Invalid(format!(
                "phone {:?}: digits and dashes only, e.g. 03-1234-5678",
                self.phone
            )));
        }
        Ok(email)
    }
}

/// An e-mail of the lg.jp domain (LGWAN), trimmed, in lower case.
pub fn lg_jp_email(s: &str) -> Result<String> {
    let e = crate::rules::devices::normalise_email(s)?;
    if e.ends_with(".lg.jp") || e.ends_with("@lg.jp") {
        Ok(e)
    } else {
        Err(StoreError::Invalid(format!(
            "e-mail {e} is not in the lg.jp domain: municipal users sign in with their lg.jp address"
        )))
    }
}

/// What a change to a municipality's users must leave true: at most ten, exactly
/// one transfer contact (once there is anyone). `users` is the list after the change.
pub fn check_users(users: &[User]) -> Result<()> {
    if users.len() > MAX_USERS {
        return Err(StoreError::Invalid(format!(
            "a municipality has at most {MAX_USERS} users: remove one first"
        )));
    }
    let contacts = users.iter().filter(|u| u.transfer_contact).count();
    match (users.is_empty(), contacts) {
        (true, _) | (false, 1) => Ok(()),
        (false, 0) => Err(StoreError::Invalid(
            "exactly one user must be the transfer contact (転出入連絡先): mark another user first"
                .into(),
        )),
        _ => Err(StoreError::Invalid(
            "only one user can be the transfer contact (転出入連絡先)".into(),
        )),
    }
}

/// The refusal of an address that another municipality's user has.
pub fn email_elsewhere(email: &str) -> StoreError {
    StoreError::Invalid(format!(
        "e-mail {email} is another municipality's user: each address signs in for one municipality"
    ))
}

/// The users after `email` is removed, checked; `NotFound` if it is not a user of `m`.
pub fn without_user(users: Vec<User>, email: &str, m: MunicipalityCode) -> Result<Vec<User>> {
    if !users.iter().any(|u| u.email == email) {
        return Err(StoreError::NotFound(format!("no user {email} in {m}")));
    }
    let after: Vec<User> = users.into_iter().filter(|u| u.email != email).collect();
    check_users(&after)?;
    Ok(after)
}

/// The users after `user` is added or changed: a new transfer contact takes the mark
/// from the old one; the first user of a municipality is the contact whatever the form says.
pub fn with_user(mut users: Vec<User>, user: User) -> Vec<User> {
    let first = users.iter().all(|u| u.email == user.email);
    if user.transfer_contact {
        for u in &mut users {
            u.transfer_contact = false;
        }
    }
    let mut user = user;
    if first {
        user.transfer_contact = true;
    }
    match users.iter_mut().find(|u| u.email == user.email) {
        Some(u) => *u = user,
        None => users.push(user),
    }
    users
}

/// 様式2: each municipality's system contact and vaccination contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    /// システム担当
    System,
    /// 接種担当
    Vaccination,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::System => "system",
            ContactKind::Vaccination => "vaccination",
        }
    }
    pub fn parse(s: &str) -> Option<ContactKind> {
        match s {
            "system" => Some(ContactKind::System),
            "vaccination" => Some(ContactKind::Vaccination),
            _ => None,
        }
    }

    /// A kind as a store kept it.
    pub fn stored(s: &str) -> Result<ContactKind> {
        ContactKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("contact kind {s}")))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub kind: ContactKind,
    #[serde(default)]
    pub team: String,
    pub person: String,
    #[serde(default)]
    pub phone: String,
    pub email: String,
}

impl Contact {
    pub fn check(&self) -> Result<String> {
        User {
            email: self.email.clone(),
            team: self.team.clone(),
            person: self.person.clone(),
            phone: self.phone.clone(),
            transfer_contact: false,
        }
        .check()
    }
}

/// A user's sign-in state, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignIn {
    pub passcode_hash: Option<Vec<u8>>,
    pub passcode_expires: Option<NaiveDateTime>,
    pub passcode_sent: Option<NaiveDateTime>,
    pub failures: u32,
    pub locked_until: Option<NaiveDateTime>,
}

/// What to do when someone asks for a passcode.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// Send this passcode (store its hash and expiry).
    Send,
    /// Say the same as for sending, but send nothing (locked, or asked too soon).
    Quiet,
}

pub fn start(state: &SignIn, now: NaiveDateTime) -> Start {
    if state.locked_until.is_some_and(|t| t > now) {
        return Start::Quiet;
    }
    if state.passcode_sent.is_some_and(|t| now - t < RESEND_AFTER) {
        return Start::Quiet;
    }
    Start::Send
}

/// The outcome of a passcode entered.
#[derive(Debug, PartialEq, Eq)]
pub enum Verify {
    /// Right: sign in; the passcode is used up and the failures cleared.
    Ok,
    /// Wrong, expired or none: store `failures`; lock until `locked_until` if set
    /// (and the passcode is voided then).
    Wrong {
        failures: u32,
        locked_until: Option<NaiveDateTime>,
    },
    /// Locked: refused whatever was entered.
    Locked(NaiveDateTime),
}

pub fn verify(state: &SignIn, entered_hash: &[u8], now: NaiveDateTime) -> Verify {
    if let Some(t) = state.locked_until.filter(|t| *t > now) {
        return Verify::Locked(t);
    }
    let live = state.passcode_expires.is_some_and(|e| e > now);
    let matches = state
        .passcode_hash
        .as_deref()
        // Hashes bound to the user are compared: timing tells nothing of the passcode.
        .is_some_and(|h| h == entered_hash);
    if live && matches {
        return Verify::Ok;
    }
    let failures = state.failures + 1;
    if failures >= MAX_FAILURES {
        Verify::Wrong {
            failures: 0,
            locked_until: Some(now + LOCKOUT),
        }
    } else {
        Verify::Wrong {
            failures,
            locked_until: None,
        }
    }
}

/// A new six-digit passcode.
pub fn new_passcode() -> Result<String> {
    let mut raw = [0u8; 8];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| StoreError::Crypto)?;
    Ok(format!("{:06}", u64::from_le_bytes(raw) % 1_000_000))
}

/// The hash a passcode is kept and checked by, bound to its user.
pub fn passcode_hash(email: &str, passcode: &str) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"vrs-passcode\0");
    ctx.update(email.as_bytes());
    ctx.update(b"\0");
    ctx.update(passcode.trim().as_bytes());
    ctx.finish().as_ref().to_vec()
}

/// A new session: the token for the cookie, its hash for the store, and the
/// form token against cross-site requests.
pub fn new_session() -> Result<(String, Vec<u8>, String)> {
    let rng = SystemRandom::new();
    let mut token = [0u8; 32];
    let mut csrf = [0u8; 16];
    rng.fill(&mut token).map_err(|_| StoreError::Crypto)?;
    rng.fill(&mut csrf).map_err(|_| StoreError::Crypto)?;
    let token = hex::encode(token);
    Ok((token.clone(), session_hash(&token), hex::encode(csrf)))
}

pub fn session_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// A stored session, found by its token's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub municipality: MunicipalityCode,
    pub email: String,
    pub csrf: String,
    pub started: NaiveDateTime,
    pub last_seen: NaiveDateTime,
    /// The tablet whose user this session is; `None` for staff.
    pub device: Option<vrs_domain::DeviceId>,
}

impl Session {
    /// Whether the session still holds at `now`.
    pub fn live(&self, now: NaiveDateTime) -> bool {
        now - self.started < SESSION_MAX && now - self.last_seen < SESSION_IDLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2021, 6, 1)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
            + Duration::minutes(min)
    }

    fn user(email: &str, contact: bool) -> User {
        User {
            email: email.into(),
            team: "健康推進課".into(),
            person: "千代田 太郎".into(),
            phone: "03-1234-5678".into(),
            transfer_contact: contact,
        }
    }

    #[test]
    fn only_lg_jp_addresses_are_municipal_users() {
        assert_eq!(
            lg_jp_email(" Taro@City.Chiyoda.LG.JP").unwrap(),
            "taro@city.chiyoda.lg.jp"
        );
        for bad in [
            "taro@gmail.com",
            "taro@lg.jp.example.com",
            "taro@xlg.jp",
            "nope",
        ] {
            assert!(lg_jp_email(bad).is_err(), "{bad}");
        }
        assert!(user("a@city.chiyoda.lg.jp", false).check().is_ok());
        let mut u = user("a@city.chiyoda.lg.jp", false);
        u.phone = "call me".into();
        assert!(u.check().is_err());
        u.phone = String::new();
        u.person = " ".into();
        assert!(u.check().is_err());
    }

    #[test]
    fn the_first_user_is_the_transfer_contact_and_a_new_contact_takes_the_mark() {
        let one = with_user(Vec::new(), user("a@x.lg.jp", false));
        assert!(one[0].transfer_contact);
        assert!(check_users(&one).is_ok());
        let two = with_user(one, user("b@x.lg.jp", false));
        assert_eq!(
            two.iter().map(|u| u.transfer_contact).collect::<Vec<_>>(),
            [true, false]
        );
        let moved = with_user(two.clone(), user("b@x.lg.jp", true));
        assert_eq!(
            moved.iter().map(|u| u.transfer_contact).collect::<Vec<_>>(),
            [false, true]
        );
        // Taking the mark off the only contact leaves none: refused.
        let none = with_user(two, user("a@x.lg.jp", false));
        assert!(check_users(&none).is_err());
    }

    #[test]
    fn at_most_ten_users() {
        let mut users = Vec::new();
        for i in 0..10 {
            users = with_user(users, user(&format!("u{i}@x.lg.jp"), false));
        }
        assert!(check_users(&users).is_ok());
        let eleven = with_user(users.clone(), user("u10@x.lg.jp", false));
        assert!(check_users(&eleven).is_err());
        // Changing one of the ten is fine.
        let changed = with_user(users, user("u3@x.lg.jp", false));
        assert_eq!(changed.len(), 10);
        assert!(check_users(&changed).is_ok());
    }

    #[test]
    fn removing_a_user_needs_the_user_and_leaves_a_transfer_contact() {
        let m: MunicipalityCode = "131016".parse().expect("code");
        let users = with_user(
            with_user(Vec::new(), user("a@x.lg.jp", true)),
            user("b@x.lg.jp", false),
        );
        assert!(matches!(
            without_user(users.clone(), "c@x.lg.jp", m),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(
            without_user(users.clone(), "b@x.lg.jp", m)
                .expect("b goes")
                .len(),
            1
        );
        // The contact goes only once another user has the mark.
        assert!(matches!(
            without_user(users, "a@x.lg.jp", m),
            Err(StoreError::Invalid(e)) if e.contains("transfer contact")
        ));
    }

    #[test]
    fn a_passcode_is_sent_unless_locked_or_just_sent() {
        let fresh = SignIn::default();
        assert_eq!(start(&fresh, at(0)), Start::Send);
        let sent = SignIn {
            passcode_sent: Some(at(0)),
            ..SignIn::default()
        };
        assert_eq!(start(&sent, at(0)), Start::Quiet);
        assert_eq!(start(&sent, at(1)), Start::Send);
        let locked = SignIn {
            locked_until: Some(at(15)),
            ..SignIn::default()
        };
        assert_eq!(start(&locked, at(14)), Start::Quiet);
        assert_eq!(start(&locked, at(15)), Start::Send);
    }

    #[test]
    fn passcodes_are_single_use_short_lived_and_five_misses_lock() {
        let h = passcode_hash("a@x.lg.jp", "123456");
        let state = SignIn {
            passcode_hash: Some(h.clone()),
            passcode_expires: Some(at(10)),
            ..SignIn::default()
        };
        assert_eq!(verify(&state, &h, at(9)), Verify::Ok);
        assert_eq!(
            verify(&state, &h, at(10)),
            Verify::Wrong {
                failures: 1,
                locked_until: None
            },
            "expired"
        );
        let wrong = passcode_hash("a@x.lg.jp", "654321");
        assert_ne!(wrong, passcode_hash("b@x.lg.jp", "123456"));
        let mut s = state.clone();
        for i in 1..MAX_FAILURES {
            match verify(&s, &wrong, at(1)) {
                Verify::Wrong {
                    failures,
                    locked_until: None,
                } => {
                    assert_eq!(failures, i);
                    s.failures = failures;
                }
                other => panic!("{other:?}"),
            }
        }
        let Verify::Wrong {
            locked_until: Some(until),
            ..
        } = verify(&s, &wrong, at(1))
        else {
            panic!("the fifth miss locks");
        };
        s.locked_until = Some(until);
        assert_eq!(
            verify(&s, &h, at(2)),
            Verify::Locked(until),
            "even the right one"
        );
        let used = SignIn::default();
        assert!(matches!(verify(&used, &h, at(1)), Verify::Wrong { .. }));
    }

    #[test]
    fn passcodes_are_six_digits_and_sessions_expire() {
        for _ in 0..50 {
            let p = new_passcode().unwrap();
            assert_eq!(p.len(), 6);
            assert!(p.bytes().all(|b| b.is_ascii_digit()));
        }
        let s = Session {
            municipality: "131016".parse().unwrap(),
            email: "a@x.lg.jp".into(),
            csrf: "c".into(),
            started: at(0),
            last_seen: at(0),
            device: None,
        };
        assert!(s.live(at(29)));
        assert!(!s.live(at(30)), "idle");
        let busy = Session {
            last_seen: at(479),
            ..s
        };
        assert!(busy.live(at(479)));
        assert!(!busy.live(at(480)), "eight hours at most");
    }
}
