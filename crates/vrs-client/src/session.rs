//! The scan session as a pure state machine: inputs in (a confirmed read, typed
//! digits, the server's name answer, the nurse's confirm or reject), effects out (look
//! up this name, save this record, tell the user this). The shell does the I/O; every
//! rule lives here and is table-tested.
//!
//! Rules:
//! - a session starts from its set-up: site or clinic, date, vaccine and lot; a lot
//!   whose expiry is before the date, or whose shape is not the maker's, is refused;
//! - a voucher comes from the scanner's consensus or from 18 typed digits, validated the
//!   same way;
//! - the name comes from the server's look-up; an answer is used only for the voucher
//!   it was asked for, so a late answer about the previous voucher is never shown for
//!   the next one; offline, or when the server knows no one with the voucher, the
//!   record is saved as unconfirmed and the server matches it later or holds it for
//!   review;
//! - batch mode (municipal staff with a stack of collected vouchers): every new voucher
//!   is saved at once, a voucher already in the batch is flagged and not saved again,
//!   and the count runs.

use std::collections::{HashSet, VecDeque};

use chrono::NaiveDate;
use vrs_domain::dose::SiteRef;
use vrs_domain::gs1::VaccineLabel;
use vrs_domain::ids::OcrLine;
use vrs_domain::lot::{Lot, Vaccine};
use vrs_domain::wire::{LotEntry, NameLookupResponse};

/// What a session records every dose with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    pub site: SiteRef,
    pub date: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
}

/// Why a set-up is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error(
        "lot {lot} expired on {expiry}, before {date}: take a vial from another lot and scan its label"
    )]
    LotExpired {
        lot: String,
        expiry: NaiveDate,
        date: NaiveDate,
    },
    #[error(
        "lot {lot} is not a {vaccine} lot number ({detail}): check the vaccine chosen, or scan the label instead of typing"
    )]
    LotShape {
        lot: String,
        vaccine: Vaccine,
        detail: String,
    },
    #[error("the date {date} is after today ({today}): a dose cannot be recorded in advance")]
    DateInFuture { date: NaiveDate, today: NaiveDate },
    #[error(
        "ロット {lot} はロット一覧にありません。バイアルの番号と選んだワクチンを確かめるか、ラベルを読み取ってください / lot {lot} ({vaccine:?}) is not in the lot master: check the number on the vial and the vaccine chosen, or scan the label"
    )]
    LotUnknown { lot: String, vaccine: Vaccine },
}

/// The expiry a set-up goes by: the lot master's when the tablet has the master
/// (a lot it does not list is refused, offline too), else the one typed or read
/// from the label.
pub fn lot_expiry(
    master: Option<&[LotEntry]>,
    vaccine: Vaccine,
    lot: &Lot,
    given: Option<NaiveDate>,
) -> Result<Option<NaiveDate>, SetupError> {
    let Some(master) = master else {
        return Ok(given);
    };
    master
        .iter()
        .find(|l| l.vaccine == vaccine && l.lot == *lot)
        .map(|l| Some(l.expiry))
        .ok_or_else(|| SetupError::LotUnknown {
            lot: lot.to_string(),
            vaccine,
        })
}

/// The lots a set-up screen offers: those used here lately first (with the
/// master's expiry), then the master's other lots that have not expired by `today`.
/// Without a master, the recent lots as they were kept.
pub fn offered_lots(
    recent: &[(Vaccine, Lot, Option<NaiveDate>)],
    master: Option<&[LotEntry]>,
    today: NaiveDate,
) -> Vec<(Vaccine, Lot, Option<NaiveDate>)> {
    let Some(master) = master else {
        return recent.to_vec();
    };
    let mut out: Vec<(Vaccine, Lot, Option<NaiveDate>)> = recent
        .iter()
        .filter_map(|(v, l, _)| {
            master
                .iter()
                .find(|m| m.vaccine == *v && m.lot == *l)
                .map(|m| (*v, l.clone(), Some(m.expiry)))
        })
        .collect();
    for m in master {
        if m.expiry >= today && !out.iter().any(|(v, l, _)| *v == m.vaccine && *l == m.lot) {
            out.push((m.vaccine, m.lot.clone(), Some(m.expiry)));
        }
    }
    out
}

impl Setup {
    /// A set-up from a lot chosen from a list (its expiry known from the list, or not).
    pub fn new(
        site: SiteRef,
        date: NaiveDate,
        today: NaiveDate,
        vaccine: Vaccine,
        lot: Lot,
        expiry: Option<NaiveDate>,
    ) -> Result<Self, SetupError> {
        if date > today {
            return Err(SetupError::DateInFuture { date, today });
        }
        vaccine.check_lot(&lot).map_err(|e| SetupError::LotShape {
            lot: lot.to_string(),
            vaccine,
            detail: e.detail(),
        })?;
        if let Some(expiry) = expiry {
            if expiry < date {
                return Err(SetupError::LotExpired {
                    lot: lot.to_string(),
                    expiry,
                    date,
                });
            }
        }
        Ok(Setup {
            site,
            date,
            vaccine,
            lot,
        })
    }

    /// A set-up from a scanned GS1 label: lot and expiry from the barcode.
    pub fn from_label(
        site: SiteRef,
        date: NaiveDate,
        today: NaiveDate,
        vaccine: Vaccine,
        label: &VaccineLabel,
    ) -> Result<Self, SetupError> {
        Self::new(
            site,
            date,
            today,
            vaccine,
            label.lot.clone(),
            Some(label.expiry),
        )
    }
}

/// Single (a nurse, one person at a time) or batch (staff, a stack of vouchers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Single,
    Batch,
}

/// What the confirmation screen knows of the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    /// Asked the server; no answer yet.
    Asking,
    Found(NameLookupResponse),
    /// The server holds no one with this voucher.
    Unknown,
    /// No network: the record will be saved unconfirmed.
    Offline,
}

impl Name {
    /// The session's input for this answer about `line` (asking counts as offline).
    pub fn into_input(self, line: OcrLine) -> Input {
        match self {
            Name::Found(n) => Input::NameAnswer(line, Some(n)),
            Name::Unknown => Input::NameAnswer(line, None),
            Name::Asking | Name::Offline => Input::NameOffline(line),
        }
    }
}

/// Where the session is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for a voucher.
    Scanning,
    /// Showing a voucher's name, dose, date and lot for the nurse to confirm.
    Confirming { line: OcrLine, name: Name },
}

/// What the shell is told to do or show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Ask the server for this voucher's name.
    LookUpName(OcrLine),
    /// Store this dose in the outbox; `confirmed` says whether the name was shown.
    Save { line: OcrLine, confirmed: bool },
    /// Clear the screen for the next voucher.
    Ready,
    /// The voucher is already in this batch: not saved again.
    AlreadyInBatch(OcrLine),
    /// Typed digits that are not a voucher's OCR line; the message says why.
    Invalid(String),
    /// The server holds no one with this voucher: the nurse should check the voucher
    /// (a newcomer not registered yet?); confirming saves it unconfirmed, and the
    /// server holds it for the municipality's review: a dose given is never lost.
    UnknownVoucher(OcrLine),
}

/// What comes in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A voucher confirmed by the scanner's consensus.
    Read(OcrLine),
    /// 18 digits typed by hand.
    Typed(String),
    /// The server's answer for a voucher (None: no one holds it).
    NameAnswer(OcrLine, Option<NameLookupResponse>),
    /// The name could not be asked for (no network).
    NameOffline(OcrLine),
    /// The nurse confirms the dose shown.
    Confirm,
    /// The nurse rejects it (wrong person, wrong voucher).
    Reject,
}

/// A scan session.
#[derive(Clone, Debug)]
pub struct Session {
    pub setup: Setup,
    pub mode: Mode,
    state: State,
    batch: HashSet<OcrLine>,
    saved: usize,
}

impl Session {
    pub fn new(setup: Setup, mode: Mode) -> Self {
        Session {
            setup,
            mode,
            state: State::Scanning,
            batch: HashSet::new(),
            saved: 0,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records saved in this session (the batch's running count).
    pub fn saved(&self) -> usize {
        self.saved
    }

    /// One input; the effects in the order the shell should carry them out.
    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Read(line) => self.voucher(line),
            Input::Typed(digits) => match digits.trim().parse::<OcrLine>() {
                Ok(line) => self.voucher(line),
                Err(e) => vec![Effect::Invalid(format!("{}: {}", e.detail(), e.fix()))],
            },
            Input::NameAnswer(for_line, answer) => {
                self.name(for_line, answer.map_or(Name::Unknown, Name::Found))
            }
            Input::NameOffline(for_line) => self.name(for_line, Name::Offline),
            Input::Confirm => match &self.state {
                State::Confirming { line, name } if *name != Name::Asking => {
                    let effect = Effect::Save {
                        line: *line,
                        confirmed: matches!(name, Name::Found(_)),
                    };
                    self.saved += 1;
                    self.state = State::Scanning;
                    vec![effect, Effect::Ready]
                }
                _ => Vec::new(),
            },
            Input::Reject => match self.state {
                State::Confirming { .. } => {
                    self.state = State::Scanning;
                    vec![Effect::Ready]
                }
                State::Scanning => Vec::new(),
            },
        }
    }

    fn voucher(&mut self, line: OcrLine) -> Vec<Effect> {
        match self.mode {
            Mode::Batch => {
                if !self.batch.insert(line) {
                    return vec![Effect::AlreadyInBatch(line)];
                }
                self.saved += 1;
                vec![Effect::Save {
                    line,
                    confirmed: false,
                }]
            }
            Mode::Single => {
                // A new voucher replaces whatever was on screen: its name is asked for
                // afresh, never carried over.
                self.state = State::Confirming {
                    line,
                    name: Name::Asking,
                };
                vec![Effect::LookUpName(line)]
            }
        }
    }

    fn name(&mut self, for_line: OcrLine, name: Name) -> Vec<Effect> {
        let State::Confirming { line, name: shown } = &mut self.state else {
            return Vec::new();
        };
        // An answer about another voucher (the previous person's, arriving late) is
        // dropped: it must never be shown for this one.
        if *line != for_line || *shown != Name::Asking {
            return Vec::new();
        }
        let unknown = name == Name::Unknown;
        *shown = name;
        if unknown {
            vec![Effect::UnknownVoucher(for_line)]
        } else {
            Vec::new()
        }
    }
}

/// What a shell does for a scan session: the effects that need the world. The Tauri
/// app and `vrs client` implement it; [`drive`] is the one loop over it.
pub trait Host {
    type Error;
    /// Steps the session by one input. A shell that keeps the session behind a lock
    /// takes the lock for this call only.
    fn step(&mut self, input: Input) -> Result<Vec<Effect>, Self::Error>;
    /// Asks for a voucher's name; the answer as the session's next input. Called
    /// with no lock held: it waits for the network.
    fn look_up_name(&mut self, line: OcrLine) -> Result<Input, Self::Error>;
    /// The answer is in (on screen). A shell that asks the nurse itself gives the
    /// answer ([`Input::Confirm`] or [`Input::Reject`]); a screen gives `None`, and the
    /// nurse's answer comes later as an input of its own.
    fn name_shown(&mut self, line: OcrLine) -> Result<Option<Input>, Self::Error>;
    /// Stores a dose in the outbox.
    fn save(&mut self, line: OcrLine, confirmed: bool) -> Result<(), Self::Error>;
    /// Tells the nurse the rest: already in the batch, not a voucher, unknown voucher,
    /// ready for the next.
    fn tell(&mut self, effect: &Effect) -> Result<(), Self::Error>;
}

/// One input to the session, and every effect it leads to carried out by `host`,
/// in order; what an effect leads to (a name's answer, the nurse's decision) is
/// carried out before the effects after it, so that the nurse hears of an unknown
/// voucher before being asked to record it.
pub fn drive<H: Host + ?Sized>(host: &mut H, input: Input) -> Result<(), H::Error> {
    enum Work {
        Do(Effect),
        Shown(OcrLine),
    }
    let mut work: VecDeque<Work> = host.step(input)?.into_iter().map(Work::Do).collect();
    while let Some(item) = work.pop_front() {
        let mut then: Vec<Work> = Vec::new();
        match item {
            Work::Do(Effect::LookUpName(line)) => {
                let answer = host.look_up_name(line)?;
                then.extend(host.step(answer)?.into_iter().map(Work::Do));
                then.push(Work::Shown(line));
            }
            Work::Do(Effect::Save { line, confirmed }) => host.save(line, confirmed)?,
            Work::Do(other) => host.tell(&other)?,
            Work::Shown(line) => {
                if let Some(decision) = host.name_shown(line)? {
                    then.extend(host.step(decision)?.into_iter().map(Work::Do));
                }
            }
        }
        for w in then.into_iter().rev() {
            work.push_front(w);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }
    fn clinic() -> SiteRef {
        SiteRef::Clinic("0110113719".parse().expect("clinic"))
    }
    fn setup() -> Setup {
        Setup::new(
            clinic(),
            day("2021-06-01"),
            day("2021-06-01"),
            Vaccine::Pfizer,
            "FA4597".parse().expect("lot"),
            Some(day("2021-08-31")),
        )
        .expect("setup")
    }
    fn line(s: &str) -> OcrLine {
        s.parse().expect("line")
    }
    #[test]
    fn the_lot_master_gives_the_expiry_and_refuses_a_lot_it_does_not_list() {
        let lot = |s: &str| -> Lot { s.parse().expect("lot") };
        let master = vec![
            LotEntry {
                vaccine: Vaccine::Pfizer,
                lot: lot("FA4597"),
                expiry: day("2021-08-31"),
                gtin: None,
            },
            LotEntry {
                vaccine: Vaccine::Pfizer,
                lot: lot("EY0572"),
                expiry: day("2021-05-31"),
                gtin: None,
            },
        ];
        // The master's expiry, whatever was typed.
        assert_eq!(
            lot_expiry(
                Some(&master),
                Vaccine::Pfizer,
                &lot("FA4597"),
                Some(day("2030-01-01"))
            ),
            Ok(Some(day("2021-08-31")))
        );
        // Not listed (or listed for another vaccine): refused.
        assert!(matches!(
            lot_expiry(Some(&master), Vaccine::Pfizer, &lot("ZZ9999"), None),
            Err(SetupError::LotUnknown { .. })
        ));
        assert!(matches!(
            lot_expiry(Some(&master), Vaccine::Moderna, &lot("FA4597"), None),
            Err(SetupError::LotUnknown { .. })
        ));
        // Before the first download: what was given.
        assert_eq!(
            lot_expiry(None, Vaccine::Pfizer, &lot("ZZ9999"), None),
            Ok(None)
        );
        // An expired lot from the master is then refused by the set-up itself.
        let expiry =
            lot_expiry(Some(&master), Vaccine::Pfizer, &lot("EY0572"), None).expect("listed");
        assert!(matches!(
            Setup::new(
                clinic(),
                day("2021-06-01"),
                day("2021-06-01"),
                Vaccine::Pfizer,
                lot("EY0572"),
                expiry
            ),
            Err(SetupError::LotExpired { .. })
        ));

        // Offered: the recent ones first, with the master's expiry; then the master's
        // unexpired others; a recent lot the master dropped is not offered.
        let recent = vec![
            (Vaccine::Pfizer, lot("FA4597"), None),
            (Vaccine::Pfizer, lot("ZZ9999"), None),
        ];
        let offered = offered_lots(&recent, Some(&master), day("2021-06-01"));
        assert_eq!(
            offered,
            vec![(Vaccine::Pfizer, lot("FA4597"), Some(day("2021-08-31")))]
        );
        let offered = offered_lots(&recent, Some(&master), day("2021-05-01"));
        assert_eq!(offered.len(), 2);
        assert_eq!(offered_lots(&recent, None, day("2021-06-01")), recent);
    }

    const A: &str = "111310160123456789";
    const B: &str = "121310160000000002";
    fn taro() -> NameLookupResponse {
        NameLookupResponse {
            family_name: Some("山田".into()),
            given_name: Some("太郎".into()),
            family_kana: Some("ヤマダ".into()),
            given_kana: Some("タロウ".into()),
        }
    }

    #[test]
    fn setup_refuses_an_expired_lot_a_wrong_shape_and_a_future_date() {
        let lot: Lot = "FA4597".parse().expect("lot");
        let (d, today) = (day("2021-06-01"), day("2021-06-01"));
        assert!(matches!(
            Setup::new(
                clinic(),
                d,
                today,
                Vaccine::Pfizer,
                lot.clone(),
                Some(day("2021-05-31"))
            ),
            Err(SetupError::LotExpired { .. })
        ));
        // the day of expiry itself is still usable
        assert!(Setup::new(clinic(), d, today, Vaccine::Pfizer, lot.clone(), Some(d)).is_ok());
        assert!(matches!(
            Setup::new(clinic(), d, today, Vaccine::Moderna, lot.clone(), None),
            Err(SetupError::LotShape { .. })
        ));
        assert!(matches!(
            Setup::new(
                clinic(),
                day("2021-06-02"),
                today,
                Vaccine::Pfizer,
                lot,
                None
            ),
            Err(SetupError::DateInFuture { .. })
        ));
    }

    #[test]
    fn single_mode_table() {
        use Effect::*;
        let (a, b) = (line(A), line(B));
        let cases: Vec<(&str, Vec<Input>, Vec<Effect>, usize)> = vec![
            (
                "read, name found, confirm: saved as confirmed",
                vec![
                    Input::Read(a),
                    Input::NameAnswer(a, Some(taro())),
                    Input::Confirm,
                ],
                vec![
                    LookUpName(a),
                    Save {
                        line: a,
                        confirmed: true,
                    },
                    Ready,
                ],
                1,
            ),
            (
                "offline: saved as unconfirmed",
                vec![Input::Read(a), Input::NameOffline(a), Input::Confirm],
                vec![
                    LookUpName(a),
                    Save {
                        line: a,
                        confirmed: false,
                    },
                    Ready,
                ],
                1,
            ),
            (
                "no confirming before the name is known",
                vec![Input::Read(a), Input::Confirm],
                vec![LookUpName(a)],
                0,
            ),
            (
                "an unknown voucher is flagged, and saved unconfirmed when the nurse confirms",
                vec![Input::Read(a), Input::NameAnswer(a, None), Input::Confirm],
                vec![
                    LookUpName(a),
                    UnknownVoucher(a),
                    Save {
                        line: a,
                        confirmed: false,
                    },
                    Ready,
                ],
                1,
            ),
            (
                "a second answer for the same voucher changes nothing",
                vec![
                    Input::Read(a),
                    Input::NameAnswer(a, Some(taro())),
                    Input::NameAnswer(a, None),
                    Input::Confirm,
                ],
                vec![
                    LookUpName(a),
                    Save {
                        line: a,
                        confirmed: true,
                    },
                    Ready,
                ],
                1,
            ),
            (
                "reject goes back to scanning, nothing saved",
                vec![
                    Input::Read(a),
                    Input::NameAnswer(a, Some(taro())),
                    Input::Reject,
                ],
                vec![LookUpName(a), Ready],
                0,
            ),
            (
                "the previous voucher's late answer is never shown for the next one",
                vec![
                    Input::Read(a),
                    Input::Read(b),
                    Input::NameAnswer(a, Some(taro())),
                    Input::Confirm,
                ],
                vec![LookUpName(a), LookUpName(b)],
                0,
            ),
            (
                "typed digits go through the same validation",
                vec![
                    Input::Typed(format!(" {A} ")),
                    Input::NameOffline(a),
                    Input::Confirm,
                ],
                vec![
                    LookUpName(a),
                    Save {
                        line: a,
                        confirmed: false,
                    },
                    Ready,
                ],
                1,
            ),
        ];
        for (what, inputs, want, saved) in cases {
            let mut s = Session::new(setup(), Mode::Single);
            let got: Vec<Effect> = inputs.into_iter().flat_map(|i| s.step(i)).collect();
            assert_eq!(got, want, "{what}");
            assert_eq!(s.saved(), saved, "{what}");
        }
    }

    #[test]
    fn typed_digits_with_a_wrong_check_digit_are_refused_with_the_reason() {
        let mut s = Session::new(setup(), Mode::Single);
        let effects = s.step(Input::Typed("111310150123456789".into()));
        assert!(
            matches!(effects.as_slice(), [Effect::Invalid(m)] if m.contains("check digit")),
            "{effects:?}"
        );
        assert_eq!(s.state(), &State::Scanning);
    }

    #[test]
    fn batch_mode_saves_each_voucher_once_and_flags_repeats() {
        use Effect::*;
        let (a, b) = (line(A), line(B));
        let mut s = Session::new(setup(), Mode::Batch);
        let got: Vec<Effect> = [
            Input::Read(a),
            Input::Read(b),
            Input::Read(a),
            Input::Typed(B.into()),
        ]
        .into_iter()
        .flat_map(|i| s.step(i))
        .collect();
        assert_eq!(
            got,
            vec![
                Save {
                    line: a,
                    confirmed: false
                },
                Save {
                    line: b,
                    confirmed: false
                },
                AlreadyInBatch(a),
                AlreadyInBatch(b),
            ]
        );
        assert_eq!(s.saved(), 2);
    }

    /// A shell that answers names from a list and confirms everything it is shown,
    /// recording what it was asked to do.
    struct Script {
        session: Session,
        names: Vec<(OcrLine, Option<NameLookupResponse>)>,
        done: Vec<String>,
    }

    impl Host for Script {
        type Error = String;
        fn step(&mut self, input: Input) -> Result<Vec<Effect>, String> {
            Ok(self.session.step(input))
        }
        fn look_up_name(&mut self, line: OcrLine) -> Result<Input, String> {
            self.done.push(format!("ask {}", line.number));
            let answer = self.names.iter().find(|(l, _)| *l == line);
            Ok(match answer {
                Some((_, n)) => Input::NameAnswer(line, n.clone()),
                None => Input::NameOffline(line),
            })
        }
        fn name_shown(&mut self, line: OcrLine) -> Result<Option<Input>, String> {
            self.done.push(format!("shown {}", line.number));
            Ok(Some(Input::Confirm))
        }
        fn save(&mut self, line: OcrLine, confirmed: bool) -> Result<(), String> {
            self.done.push(format!("save {} {confirmed}", line.number));
            Ok(())
        }
        fn tell(&mut self, effect: &Effect) -> Result<(), String> {
            self.done.push(format!("{effect:?}"));
            Ok(())
        }
    }

    #[test]
    fn the_loop_asks_shows_confirms_and_saves_in_order() {
        let (known, stranger) = (line(A), line(B));
        let mut host = Script {
            session: Session::new(setup(), Mode::Single),
            names: vec![(known, Some(taro())), (stranger, None)],
            done: Vec::new(),
        };
        drive(&mut host, Input::Read(known)).expect("drive");
        drive(&mut host, Input::Read(stranger)).expect("drive");
        let (k, s) = (known.number, stranger.number);
        assert_eq!(
            host.done,
            [
                format!("ask {k}"),
                format!("shown {k}"),
                format!("save {k} true"),
                "Ready".into(),
                format!("ask {s}"),
                format!("{:?}", Effect::UnknownVoucher(stranger)),
                format!("shown {s}"),
                format!("save {s} false"),
                "Ready".into(),
            ]
        );
        assert_eq!(host.session.saved(), 2);
    }
}
