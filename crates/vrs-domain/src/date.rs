//! Dates as municipal systems write them: `YYYYMMDD`, `YYYY-MM-DD`, `YYYY/MM/DD`,
//! `YYYY年M月D日`, and 和暦 (Japanese era) dates such as `S55.1.1`, `昭和55年1月1日`,
//! `令和元年5月1日` or the 7-digit `GYYMMDD` form (era digit 1 明治 … 5 令和).

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, Utc};

use crate::ids::{digit_value, trim_blank};

/// Now in Japan Standard Time: registration times in the ledger are local, and a
/// session's date is Japan's, wherever the machine's clock is set.
pub fn jst_now() -> NaiveDateTime {
    let jst = FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!());
    Utc::now().with_timezone(&jst).naive_local()
}

/// Today in Japan.
pub fn today_jst() -> NaiveDate {
    jst_now().date()
}

/// Why a date could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("{0:?} is not a date in a known form")]
    Unrecognised(String),
    #[error("{year:04}-{month:02}-{day:02} does not exist")]
    Impossible { year: i32, month: u32, day: u32 },
    #[error("{era}{year}年 {month}月{day}日 is outside the {era} era")]
    OutsideEra {
        era: &'static str,
        year: u32,
        month: u32,
        day: u32,
    },
}

impl DateError {
    pub fn fix(&self) -> &'static str {
        match self {
            DateError::Unrecognised(_) => {
                "write YYYYMMDD (e.g. 19800401), YYYY/MM/DD, YYYY-MM-DD or a 和暦 date such as S55.4.1"
            }
            DateError::Impossible { .. } => {
                "check the day and month against the source record (a typo, or day and month swapped?)"
            }
            DateError::OutsideEra { .. } => {
                "check the era: the date falls in another era (e.g. 昭和64年1月8日 is 平成元年)"
            }
        }
    }
}

struct Era {
    names: &'static [&'static str],
    kanji: &'static str,
    digit: u8,
    start: (i32, u32, u32),
}

// Start dates of the modern eras. Meiji is counted from the start of its year 1 (1868).
const ERAS: [Era; 5] = [
    Era {
        names: &["明治", "明", "M"],
        kanji: "明治",
        digit: 1,
        start: (1868, 1, 1),
    },
    Era {
        names: &["大正", "大", "T"],
        kanji: "大正",
        digit: 2,
        start: (1912, 7, 30),
    },
    Era {
        names: &["昭和", "昭", "S"],
        kanji: "昭和",
        digit: 3,
        start: (1926, 12, 25),
    },
    Era {
        names: &["平成", "平", "H"],
        kanji: "平成",
        digit: 4,
        start: (1989, 1, 8),
    },
    Era {
        names: &["令和", "令", "R"],
        kanji: "令和",
        digit: 5,
        start: (2019, 5, 1),
    },
];

fn ymd(year: i32, month: u32, day: u32) -> Result<NaiveDate, DateError> {
    NaiveDate::from_ymd_opt(year, month, day).ok_or(DateError::Impossible { year, month, day })
}

fn era_date(idx: usize, year: u32, month: u32, day: u32) -> Result<NaiveDate, DateError> {
    let era = &ERAS[idx];
    let outside = DateError::OutsideEra {
        era: era.kanji,
        year,
        month,
        day,
    };
    // No era has lasted 100 years; this also keeps the arithmetic below in range.
    if year == 0 || year > 99 {
        return Err(outside);
    }
    let g = era.start.0 + year as i32 - 1;
    let date = ymd(g, month, day)?;
    let (sy, sm, sd) = era.start;
    let start = NaiveDate::from_ymd_opt(sy, sm, sd);
    let end = ERAS
        .get(idx + 1)
        .and_then(|e| NaiveDate::from_ymd_opt(e.start.0, e.start.1, e.start.2));
    if start.is_some_and(|s| date < s) || end.is_some_and(|e| date >= e) {
        return Err(outside);
    }
    Ok(date)
}

/// Splits a string into runs of digits (full-width digits count) and the separators
/// between them. `元` (the first year of an era) reads as the number 1.
fn numbers(s: &str) -> Option<(Vec<u32>, Vec<char>)> {
    let mut nums = Vec::with_capacity(3);
    let mut seps = Vec::with_capacity(3);
    let mut cur: Option<u32> = None;
    for c in s.chars() {
        if let Some(d) = digit_value(c) {
            cur = Some(
                cur.unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u32::from(d))?,
            );
        } else if c == '元' && cur.is_none() {
            cur = Some(1);
        } else {
            if let Some(n) = cur.take() {
                nums.push(n);
            } else if nums.is_empty() {
                return None;
            }
            seps.push(c);
        }
    }
    if let Some(n) = cur {
        nums.push(n);
    }
    Some((nums, seps))
}

fn separators_ok(seps: &[char]) -> bool {
    let plain = |c: &char| matches!(c, '/' | '-' | '.' | '／' | '－' | '．');
    match seps {
        [a, b] => (plain(a) && a == b) || (*a == '年' && *b == '月'),
        [a, b, c] => *a == '年' && *b == '月' && *c == '日',
        _ => false,
    }
}

/// Reads a calendar date in any of the forms in the module docs.
pub fn parse_date(input: &str) -> Result<NaiveDate, DateError> {
    let s = trim_blank(input);
    // The common case, YYYYMMDD in ASCII, without the general machinery.
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = |r: std::ops::Range<usize>| {
            s.as_bytes()[r]
                .iter()
                .fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'))
        };
        return ymd(n(0..4) as i32, n(4..6), n(6..8));
    }
    let unrecognised = || DateError::Unrecognised(s.to_owned());

    // 和暦 with an era name in front.
    for (idx, era) in ERAS.iter().enumerate() {
        for name in era.names {
            let rest = if name.is_ascii() {
                s.get(..1)
                    .filter(|p| p.eq_ignore_ascii_case(name))
                    .map(|_| &s[1..])
            } else {
                s.strip_prefix(name)
            };
            if let Some(rest) = rest {
                let (n, seps) = numbers(rest).ok_or_else(unrecognised)?;
                if n.len() != 3 || !separators_ok(&seps) {
                    return Err(unrecognised());
                }
                return era_date(idx, n[0], n[1], n[2]);
            }
        }
    }

    let (n, seps) = numbers(s).ok_or_else(unrecognised)?;
    match (n.as_slice(), seps.len()) {
        ([whole], 0) => {
            let digits = s.chars().count();
            match digits {
                8 => ymd((*whole / 10_000) as i32, (*whole / 100) % 100, *whole % 100),
                7 => {
                    let era = (*whole / 1_000_000) as u8;
                    let idx = ERAS
                        .iter()
                        .position(|e| e.digit == era)
                        .ok_or_else(unrecognised)?;
                    era_date(
                        idx,
                        (*whole / 10_000) % 100,
                        (*whole / 100) % 100,
                        *whole % 100,
                    )
                }
                _ => Err(unrecognised()),
            }
        }
        ([y, m, d], _) if separators_ok(&seps) && (1000..=9999).contains(y) => {
            ymd(*y as i32, *m, *d)
        }
        _ => Err(unrecognised()),
    }
}

/// Reads the ledger's registration time, `YYYYMMDDHHMMSS`.
pub fn parse_timestamp(input: &str) -> Option<NaiveDateTime> {
    let s = trim_blank(input);
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok()
}

/// How a person reads a date: `2026/12/04`.
pub fn format_slash(d: NaiveDate) -> String {
    d.format("%Y/%m/%d").to_string()
}

/// Writes `YYYYMMDD`. (By hand: chrono's `format` costs several times more, and the
/// ledger export writes millions of these.)
pub fn format_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// How the API (and the embedded store) writes a time: JST, to the second,
/// `2026-12-04T09:30:00`.
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Writes a time as [`TIME_FORMAT`] says.
pub fn format_time(t: NaiveDateTime) -> String {
    t.format(TIME_FORMAT).to_string()
}

/// Writes `YYYYMMDDHHMMSS`.
pub fn format_timestamp(t: NaiveDateTime) -> String {
    use chrono::Timelike;
    format!(
        "{}{:02}{:02}{:02}",
        format_date(t.date()),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn western_forms() {
        for s in [
            "19800401",
            "1980-04-01",
            "1980/04/01",
            "1980/4/1",
            "1980年4月1日",
            "１９８０／０４／０１",
        ] {
            assert_eq!(parse_date(s), Ok(d(1980, 4, 1)), "{s}");
        }
    }

    #[test]
    fn wareki_forms() {
        assert_eq!(parse_date("S55.4.1"), Ok(d(1980, 4, 1)));
        assert_eq!(parse_date("s55/04/01"), Ok(d(1980, 4, 1)));
        assert_eq!(parse_date("昭和55年4月1日"), Ok(d(1980, 4, 1)));
        assert_eq!(parse_date("3550401"), Ok(d(1980, 4, 1)));
        assert_eq!(parse_date("令和元年5月1日"), Ok(d(2019, 5, 1)));
        assert_eq!(parse_date("H31.4.30"), Ok(d(2019, 4, 30)));
        assert_eq!(parse_date("平成元年1月8日"), Ok(d(1989, 1, 8)));
    }

    #[test]
    fn wareki_date_outside_its_era_is_rejected() {
        assert!(matches!(
            parse_date("昭和64年1月8日"),
            Err(DateError::OutsideEra { .. })
        ));
        assert!(matches!(
            parse_date("H31.5.1"),
            Err(DateError::OutsideEra { .. })
        ));
    }

    #[test]
    fn impossible_date_is_named() {
        let e = parse_date("20210230").unwrap_err();
        assert_eq!(
            e,
            DateError::Impossible {
                year: 2021,
                month: 2,
                day: 30
            }
        );
        assert_eq!(e.to_string(), "2021-02-30 does not exist");
        assert!(parse_date("19801301").is_err());
        assert!(parse_date("2020-02-29").is_ok());
    }

    #[test]
    fn unrecognised_forms() {
        for s in [
            "",
            "1980",
            "1980/04",
            "1980/04-01",
            "abc",
            "198004011",
            "X55.4.1",
            "4/1/1980",
        ] {
            assert!(
                matches!(parse_date(s), Err(DateError::Unrecognised(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn timestamp_round_trip() {
        let t = parse_timestamp("20210412093015").unwrap();
        assert_eq!(format_timestamp(t), "20210412093015");
        assert!(parse_timestamp("20210412253015").is_none());
    }

    proptest! {
        #[test]
        fn every_day_round_trips_in_each_western_form(days in 0i64..80_000) {
            let date = d(1868, 1, 1) + chrono::Duration::days(days);
            prop_assert_eq!(parse_date(&format_date(date)), Ok(date));
            prop_assert_eq!(parse_date(&date.format("%Y/%m/%d").to_string()), Ok(date));
            prop_assert_eq!(parse_date(&date.format("%Y-%-m-%-d").to_string()), Ok(date));
        }

        #[test]
        fn wareki_forms_round_trip(days in 0i64..57_000, era_form in 0usize..3) {
            // From 1868 to about 2024, through whichever era the day falls in.
            let date = d(1868, 1, 1) + chrono::Duration::days(days);
            let idx = ERAS.iter().rposition(|e| {
                NaiveDate::from_ymd_opt(e.start.0, e.start.1, e.start.2).is_some_and(|s| s <= date)
            }).unwrap();
            let era = &ERAS[idx];
            let year = date.year() - era.start.0 + 1;
            let text = match era_form {
                0 => format!("{}{}年{}月{}日", era.kanji, year, date.month(), date.day()),
                1 => format!("{}{:02}.{:02}.{:02}", era.names[2], year, date.month(), date.day()),
                _ => format!("{}{:02}{:02}{:02}", era.digit, year, date.month(), date.day()),
            };
            prop_assert_eq!(parse_date(&text), Ok(date), "{}", text);
        }

        #[test]
        fn era_dates_with_huge_years_are_refused_not_overflowed(
            era in prop::sample::select(vec!["S", "H", "R", "昭和", "令和", "M"]),
            year in 0u32..=u32::MAX,
        ) {
            let _ = parse_date(&format!("{era}{year}.1.1"));
            let _ = parse_date(&format!("{era}{year}年1月1日"));
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,16}") {
            let _ = parse_date(&s);
            let _ = parse_timestamp(&s);
        }
    }
}
