#![allow(clippy::unwrap_used)] // test helpers panic on purpose when a fixture is wrong
//! The embedded store, end to end on real SQLite files: register import, dose
//! ingest and its checks, paper records, the ledger export, the transfer look-up,
//! and what is (not) readable on disk.

use chrono::NaiveDate;
use uuid::Uuid;
use vrs_domain::csv::OutputEncoding;
use vrs_domain::synth::{RegisterSpec, write_register};
use vrs_domain::wire::{HoldReason, LotEntry, NameLookupRequest, Outcome, UploadBatch};
use vrs_domain::{
    ClientRecordId, DeviceId, DoseNumber, DoseRecord, MunicipalityCode, MyNumber, SiteRef, Vaccine,
    VoucherNumber,
};
use vrs_server::postgres::PgStore;
use vrs_server::rules::devices::DeviceRegistration;
use vrs_server::store::{Amendment, ImportMode, ImportOptions, ImportOutcome, Register, Vault};
use vrs_server::{Keys, Principal, SqliteStore, Store};

use vrs_testkit::pg as support;

const CHIYODA: &str = "131016";
const SAPPORO: &str = "011002";

fn m(s: &str) -> MunicipalityCode {
    s.parse().unwrap()
}

fn staff(code: &str) -> Principal {
    Principal::Staff {
        municipality: m(code),
        user: "tester@city.lg.jp".into(),
    }
}

const DEVICE: DeviceId = DeviceId(Uuid::from_u128(0xD1));

fn tablet(code: &str) -> Principal {
    Principal::Device {
        municipality: m(code),
        device: DEVICE,
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2021, 7, 1).unwrap()
}

fn opts() -> ImportOptions {
    ImportOptions {
        today: today(),
        ..Default::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Box<dyn Store>,
    /// Chiyoda's tablet, registered for the clinic the tests' doses name.
    device: DeviceId,
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Keys::generate().unwrap()).unwrap();
    seeded(dir, Box::new(store))
}

fn postgres() -> Fixture {
    let db = support::database();
    let url = support::url(support::cluster().port, "postgres", &db);
    let store = PgStore::open(&url, &url, &Keys::generate().unwrap()).unwrap();
    seeded(tempfile::tempdir().unwrap(), Box::new(store))
}

fn seeded(dir: tempfile::TempDir, store: Box<dyn Store>) -> Fixture {
    for (code, name) in [(CHIYODA, "東京都千代田区"), (SAPPORO, "北海道札幌市")] {
        store
            .upsert_municipality(
                &staff(code),
                m(code),
                name,
                &format!("{name} 予防接種担当 03-0000-0000"),
            )
            .unwrap();
    }
    // The lot master, as the operator keeps it: the tests' doses use FA4597.
    store
        .import_lots(
            &Principal::System,
            &mut "pfizer,FA4597,2030-12-31,04987123456784\n".as_bytes(),
            &ImportOptions::default(),
        )
        .unwrap();
    let device = store
        .register_device(
            &staff(CHIYODA),
            m(CHIYODA),
            &DeviceRegistration {
                site: SiteRef::Clinic(CLINIC.parse().unwrap()),
                site_name: "千代田テストクリニック".into(),
                address: String::new(),
                email: "tablet@clinic.example.jp".into(),
                delivery: String::new(),
                contact: String::new(),
                notes: String::new(),
                doses_per_day: None,
            },
        )
        .unwrap()
        .device_id;
    Fixture {
        _dir: dir,
        store,
        device,
    }
}

const CLINIC: &str = "0110113719";

fn lot(vaccine: Vaccine, lot: &str, expiry: &str) -> LotEntry {
    LotEntry {
        vaccine,
        lot: lot.parse().unwrap(),
        expiry: expiry.parse().unwrap(),
        gtin: None,
    }
}

fn register(rows: u64, seed: u64, bad_every: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_register(
        &mut out,
        &RegisterSpec {
            rows,
            seed,
            bad_every,
            first_voucher: 1_310_160_001,
            encoding: OutputEncoding::Cp932,
            ..Default::default()
        },
    )
    .unwrap();
    out
}

fn dose(voucher: u64, n: u8, date: &str, lot: &str) -> DoseRecord {
    DoseRecord {
        client_record_id: ClientRecordId::new(),
        municipality: m(CHIYODA),
        voucher: vrs_domain::VoucherNumber::new(voucher).unwrap(),
        voucher_kind: vrs_domain::VoucherKind::new(1).unwrap(),
        dose_number: DoseNumber::new(n).unwrap(),
        vaccinated_on: date.parse().unwrap(),
        vaccine: Vaccine::Pfizer,
        lot: lot.parse().unwrap(),
        site: SiteRef::Clinic(CLINIC.parse().unwrap()),
        device_id: DEVICE,
        supersedes: None,
    }
}

/// The outcomes of `records` sent by the fixture's tablet (the records' device set
/// to it).
fn receipts(f: &Fixture, mut records: Vec<DoseRecord>) -> Vec<Outcome> {
    for r in &mut records {
        r.device_id = f.device;
    }
    let tablet = Principal::Device {
        municipality: m(CHIYODA),
        device: f.device,
    };
    f.store
        .ingest(&tablet, &UploadBatch { records }, today())
        .unwrap()
        .into_iter()
        .map(|r| r.outcome)
        .collect()
}

fn held(o: &Outcome) -> Option<HoldReason> {
    match o {
        Outcome::Held { reason, .. } => Some(*reason),
        _ => None,
    }
}

fn importing_the_same_file_twice_changes_nothing_the_second_time(f: Fixture) {
    let file = register(300, 7, 0);
    let first = f
        .store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut &file[..], &opts())
        .unwrap();
    assert_eq!(first.outcome, ImportOutcome::Applied);
    assert_eq!((first.rows, first.new, first.rejected), (300, 300, 0));
    assert_eq!(first.encoding, "CP932 (Shift_JIS)");
    let second = f
        .store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut &file[..], &opts())
        .unwrap();
    assert_eq!((second.new, second.updated, second.unchanged), (0, 0, 300));
    assert_eq!(
        f.store.person_count(&staff(CHIYODA), m(CHIYODA)).unwrap(),
        300
    );
    assert_eq!(f.store.vault_count().unwrap(), 300);
}

fn strict_mode_rejects_a_file_with_bad_rows_whole_and_partial_applies_the_rest(f: Fixture) {
    let file = register(200, 3, 20);
    let strict = f
        .store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut &file[..], &opts())
        .unwrap();
    assert_eq!(strict.outcome, ImportOutcome::Rejected);
    assert_eq!(strict.rejected, 10);
    assert_eq!(strict.errors.len(), 10);
    assert_eq!(
        f.store.person_count(&staff(CHIYODA), m(CHIYODA)).unwrap(),
        0
    );
    assert_eq!(f.store.vault_count().unwrap(), 0);

    let partial = ImportOptions {
        mode: ImportMode::Partial,
        ..opts()
    };
    let r = f
        .store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut &file[..], &partial)
        .unwrap();
    assert_eq!(r.outcome, ImportOutcome::Applied);
    assert_eq!((r.new, r.rejected), (190, 10));
    assert_eq!(
        f.store.person_count(&staff(CHIYODA), m(CHIYODA)).unwrap(),
        190
    );
    let csv = f
        .store
        .import_errors_csv(&staff(CHIYODA), r.import_id)
        .unwrap();
    assert!(csv.starts_with("行,個別宛名番号,項目,内容,対処"));
    assert_eq!(csv.lines().count(), 11, "{csv}");
    // Another municipality cannot read it, and it never holds a マイナンバー.
    assert!(
        f.store
            .import_errors_csv(&staff(SAPPORO), r.import_id)
            .is_err()
    );
    assert!(
        !csv.split(|c: char| !c.is_ascii_digit())
            .any(|run| run.len() == 12),
        "{csv}"
    );
}

fn a_dry_run_reports_but_stores_nothing(f: Fixture) {
    let file = register(50, 1, 0);
    let dry = ImportOptions {
        dry_run: true,
        ..opts()
    };
    let r = f
        .store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut &file[..], &dry)
        .unwrap();
    assert_eq!((r.outcome, r.new), (ImportOutcome::DryRun, 50));
    assert_eq!(
        f.store.person_count(&staff(CHIYODA), m(CHIYODA)).unwrap(),
        0
    );
    assert_eq!(f.store.vault_count().unwrap(), 0);
}

fn separate_files_fill_fields_and_flags_move_status_with_9_cancelling(f: Fixture) {
    let s = staff(CHIYODA);
    let names = "個別宛名番号,氏名(姓),氏名(名)\n1001,山田,太郎\n";
    let numbers = "個別宛名番号,券番号,マイナンバー\n1001,1310160001,123456789018\n";
    f.store
        .import_register(&s, m(CHIYODA), &mut names.as_bytes(), &opts())
        .unwrap();
    let r = f
        .store
        .import_register(&s, m(CHIYODA), &mut numbers.as_bytes(), &opts())
        .unwrap();
    assert_eq!((r.new, r.updated), (0, 1));
    let req = NameLookupRequest {
        municipality: m(CHIYODA),
        voucher: "1310160001".parse().unwrap(),
    };
    let name = f
        .store
        .lookup_name(&tablet(SAPPORO), &req)
        .unwrap()
        .unwrap();
    assert_eq!(name.family_name.as_deref(), Some("山田"));
    assert_eq!(name.given_name.as_deref(), Some("太郎"));

    let moved = "個別宛名番号,転出/死亡フラグ\n1001,1\n";
    let r = f
        .store
        .import_register(&s, m(CHIYODA), &mut moved.as_bytes(), &opts())
        .unwrap();
    assert_eq!(r.flagged, 1);
    let out = receipts(&f, vec![dose(1310160001, 1, "2021-06-01", "FA4597")]);
    // The tablet learns the record is held, not that the person moved out.
    assert_eq!(held(&out[0]), Some(HoldReason::PersonRemoved));

    let cancel = "個別宛名番号,転出/死亡フラグ\n1001,9\n";
    f.store
        .import_register(&s, m(CHIYODA), &mut cancel.as_bytes(), &opts())
        .unwrap();
    let out = receipts(&f, vec![dose(1310160001, 1, "2021-06-01", "FA4597")]);
    assert_eq!(out[0], Outcome::Accepted);
}

fn a_voucher_already_held_by_someone_else_rejects_the_row(f: Fixture) {
    let s = staff(CHIYODA);
    let csv = "個別宛名番号,券番号\n1001,1310160001\n1002,1310160001\n";
    let r = f
        .store
        .import_register(&s, m(CHIYODA), &mut csv.as_bytes(), &opts())
        .unwrap();
    assert_eq!(r.outcome, ImportOutcome::Rejected);
    assert_eq!(r.errors[0].line, 3);
    assert!(
        r.errors[0]
            .to_string()
            .contains("already belongs to 個別宛名番号 1001")
    );
}

/// A first upload skips the look-ups for keys no earlier chunk wrote: a person and a
/// voucher seen again thousands of rows later must still be found.
fn a_first_upload_sees_its_own_earlier_chunks(f: Fixture) {
    let s = staff(CHIYODA);
    let mut csv = String::from("個別宛名番号,氏名(姓),氏名(名),券番号\n");
    for i in 0..4500u64 {
        csv.push_str(&format!(
            "{},山田,太郎,{:010}\n",
            10_000 + i,
            1_310_160_000 + i
        ));
    }
    // Person 10000 again, renamed; then someone new taking 10001's voucher.
    csv.push_str("10000,山田,花子,\n");
    csv.push_str("99999,佐藤,一郎,1310160001\n");
    let mut partial = opts();
    partial.mode = ImportMode::Partial;
    let r = f
        .store
        .import_register(&s, m(CHIYODA), &mut csv.as_bytes(), &partial)
        .unwrap();
    assert_eq!((r.new, r.updated, r.rejected), (4500, 1, 1), "{r:?}");
    assert_eq!(r.errors[0].line, 4503);
    assert!(
        r.errors[0]
            .to_string()
            .contains("already belongs to 個別宛名番号 10001")
    );
    let name = f
        .store
        .lookup_name(
            &tablet(CHIYODA),
            &NameLookupRequest {
                municipality: m(CHIYODA),
                voucher: VoucherNumber::new(1_310_160_000).unwrap(),
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(name.given_name.as_deref(), Some("花子"));
}

fn tablet_records_are_idempotent_and_checked(f: Fixture) {
    let s = staff(CHIYODA);
    f.store
        .import_register(&s, m(CHIYODA), &mut register(10, 2, 0).as_slice(), &opts())
        .unwrap();
    f.store
        .add_lot(
            &Principal::System,
            &lot(Vaccine::Pfizer, "EY0001", "2021-05-31"),
        )
        .unwrap();
    let first = dose(1310160001, 1, "2021-06-01", "FA4597");
    let out = receipts(&f, vec![first.clone(), first.clone()]);
    assert_eq!(out, [Outcome::Accepted, Outcome::Duplicate]);
    // Sent again in a later batch: still one record.
    assert_eq!(receipts(&f, vec![first])[0], Outcome::Duplicate);

    let cases = [
        (
            dose(1310160002, 2, "2021-06-22", "FA4597"),
            HoldReason::MissingEarlierDose,
        ),
        (
            dose(1310160099, 1, "2021-06-22", "FA4597"),
            HoldReason::UnknownVoucher,
        ),
        (
            dose(1310160003, 1, "2021-07-02", "FA4597"),
            HoldReason::DateInFuture,
        ),
        (
            dose(1310160004, 1, "2021-06-02", "EY0001"),
            HoldReason::LotExpired,
        ),
        (
            dose(1310160001, 2, "2021-05-20", "FA4597"),
            HoldReason::BeforePreviousDose,
        ),
    ];
    for (rec, reason) in cases {
        let out = receipts(&f, vec![rec]);
        assert_eq!(held(&out[0]), Some(reason));
    }
    assert_eq!(
        receipts(&f, vec![dose(1310160001, 2, "2021-06-22", "FA4597")]),
        [Outcome::Accepted]
    );
    // Every held record is kept for review, none dropped.
    assert_eq!(f.store.held(&s, m(CHIYODA)).unwrap().len(), 5);
}

fn a_held_record_can_be_amended_into_acceptance_and_voided_with_history(f: Fixture) {
    let s = staff(CHIYODA);
    f.store
        .import_register(&s, m(CHIYODA), &mut register(5, 2, 0).as_slice(), &opts())
        .unwrap();
    let rec = dose(1310160001, 2, "2021-06-01", "FA4597");
    let id = rec.client_record_id;
    assert_eq!(
        held(&receipts(&f, vec![rec])[0]),
        Some(HoldReason::MissingEarlierDose)
    );
    let fix = Amendment {
        dose_number: DoseNumber::new(1),
        ..Default::default()
    };
    assert!(
        f.store
            .amend(&s, m(CHIYODA), id, &fix, "", today())
            .is_err(),
        "a reason is required"
    );
    let out = f
        .store
        .amend(
            &s,
            m(CHIYODA),
            id,
            &fix,
            "typed as dose 2 by mistake",
            today(),
        )
        .unwrap();
    assert_eq!(out, Outcome::Accepted);
    assert!(f.store.held(&s, m(CHIYODA)).unwrap().is_empty());
    f.store
        .void(&s, m(CHIYODA), id, "entered for the wrong person")
        .unwrap();
    let mut csv = Vec::new();
    let n = f
        .store
        .export_ledger(
            &s,
            m(CHIYODA),
            today() - chrono::Duration::days(365),
            today(),
            OutputEncoding::Utf8,
            &mut csv,
        )
        .unwrap();
    assert_eq!(n, 0, "a voided record leaves the ledger");
}

fn the_ledger_export_has_the_domain_columns_and_only_accepted_records_in_range(f: Fixture) {
    let s = staff(CHIYODA);
    f.store
        .import_register(&s, m(CHIYODA), &mut register(5, 2, 0).as_slice(), &opts())
        .unwrap();
    f.store
        .add_site(&s, m(CHIYODA), "0110113719", "千代田クリニック")
        .unwrap();
    receipts(
        &f,
        vec![
            dose(1310160001, 1, "2021-06-01", "FA4597"),
            dose(1310160002, 1, "2021-06-15", "FA4597"),
            dose(1310160003, 3, "2021-06-15", "FA4597"), // held
        ],
    );
    let mut out = Vec::new();
    let n = f
        .store
        .export_ledger(
            &s,
            m(CHIYODA),
            NaiveDate::from_ymd_opt(2021, 6, 10).unwrap(),
            NaiveDate::from_ymd_opt(2021, 6, 30).unwrap(),
            OutputEncoding::Utf8,
            &mut out,
        )
        .unwrap();
    assert_eq!(n, 1);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "登録日時,接種日,券番号,接種会場市町村コード,接種会場名,医師名,ワクチンメーカー,ロット番号,接種回数"
    );
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(fields[0].len(), 14, "YYYYMMDDHHMMSS");
    assert_eq!(
        &fields[1..],
        [
            "20210615",
            "1310160002",
            CHIYODA,
            "千代田クリニック",
            "",
            "ファイザー",
            "FA4597",
            "1"
        ]
    );
    // Another municipality's staff cannot export Chiyoda's ledger.
    assert!(
        f.store
            .export_ledger(
                &staff(SAPPORO),
                m(CHIYODA),
                today(),
                today(),
                OutputEncoding::Utf8,
                &mut Vec::new()
            )
            .is_err()
    );
}

fn paper_records_upload_once_even_when_sent_twice(f: Fixture) {
    let s = staff(CHIYODA);
    f.store
        .import_register(&s, m(CHIYODA), &mut register(5, 2, 0).as_slice(), &opts())
        .unwrap();
    let paper = ",20210601,1310160001,131016,千代田区役所,山田医師,ファイザー,FA4597,1\r\n\
                 20210622120000,20210622,1310160001,131016,千代田区役所,山田医師,ファイザー,FA4597\r\n";
    let r = f
        .store
        .import_paper(&s, m(CHIYODA), &mut paper.as_bytes(), &opts())
        .unwrap();
    assert_eq!(
        (r.outcome, r.new, r.flagged),
        (ImportOutcome::Applied, 2, 0)
    );
    let again = f
        .store
        .import_paper(&s, m(CHIYODA), &mut paper.as_bytes(), &opts())
        .unwrap();
    assert_eq!((again.new, again.unchanged), (0, 2));
    let mut out = Vec::new();
    let n = f
        .store
        .export_ledger(
            &s,
            m(CHIYODA),
            today() - chrono::Duration::days(60),
            today(),
            OutputEncoding::Utf8,
            &mut out,
        )
        .unwrap();
    assert_eq!(n, 2);
    assert!(String::from_utf8(out).unwrap().contains(
        "20210622120000,20210622,1310160001,131016,千代田区役所,山田医師,ファイザー,FA4597,2"
    ));
}

fn the_transfer_look_up_finds_doses_held_by_other_municipalities_with_their_contact(f: Fixture) {
    let my = "123456789018";
    let old = format!("個別宛名番号,マイナンバー,券番号\n5001,{my},1310160001\n");
    f.store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut old.as_bytes(), &opts())
        .unwrap();
    receipts(&f, vec![dose(1310160001, 1, "2021-06-01", "FA4597")]);
    let new = format!("個別宛名番号,マイナンバー,券番号\n9001,{my},0110020001\n");
    f.store
        .import_register(&staff(SAPPORO), m(SAPPORO), &mut new.as_bytes(), &opts())
        .unwrap();

    let n: MyNumber = my.parse().unwrap();
    let found = f.store.transfer_lookup(&staff(SAPPORO), &n).unwrap();
    assert_eq!(found.len(), 1, "only the other municipality");
    assert_eq!(found[0].municipality, m(CHIYODA));
    assert!(found[0].transfer_contact.contains("予防接種担当"));
    assert_eq!(found[0].doses.len(), 1);
    assert_eq!(found[0].doses[0].lot.as_str(), "FA4597");
    // A tablet may not use it.
    assert!(f.store.transfer_lookup(&tablet(SAPPORO), &n).is_err());
    // Unknown numbers find nothing.
    let other: MyNumber = "000000000000".parse().unwrap();
    assert!(
        f.store
            .transfer_lookup(&staff(SAPPORO), &other)
            .unwrap()
            .is_empty()
    );
}

fn scoping_staff_reach_only_their_municipality_and_tablets_only_names_and_uploads(f: Fixture) {
    let file = register(5, 1, 0);
    assert!(
        f.store
            .import_register(&staff(SAPPORO), m(CHIYODA), &mut &file[..], &opts())
            .is_err()
    );
    assert!(
        f.store
            .import_register(&tablet(CHIYODA), m(CHIYODA), &mut &file[..], &opts())
            .is_err()
    );
    assert!(f.store.held(&staff(SAPPORO), m(CHIYODA)).is_err());
    assert!(
        f.store
            .ingest(&staff(CHIYODA), &UploadBatch { records: vec![] }, today())
            .is_err()
    );
    let req = NameLookupRequest {
        municipality: m(CHIYODA),
        voucher: "1310160001".parse().unwrap(),
    };
    assert!(f.store.lookup_name(&staff(SAPPORO), &req).is_err());
}

#[test]
fn neither_file_on_disk_shows_names_or_numbers_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), Keys::generate().unwrap()).unwrap();
        let csv = "個別宛名番号,マイナンバー,氏名(姓),券番号\n1001,123456789018,山田,1310160001\n";
        store
            .import_register(&staff(CHIYODA), m(CHIYODA), &mut csv.as_bytes(), &opts())
            .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data folder is its owner's only");
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains("123456789018"));
        assert!(!hay.contains("山田"));
        assert!(!hay.contains("1310160001"));
    }
}

fn the_vault_seals_each_number_to_its_person(f: Fixture) {
    let csv = "個別宛名番号,マイナンバー\n1001,123456789018\n";
    f.store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut csv.as_bytes(), &opts())
        .unwrap();
    let n = f
        .store
        .vault_reveal(m(CHIYODA), &"1001".parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(n.expose_for_vault(), b"123456789018");
    assert!(
        f.store
            .vault_reveal(m(CHIYODA), &"1002".parse().unwrap())
            .unwrap()
            .is_none()
    );
}

fn a_voucher_can_move_between_people_within_one_file(f: Fixture) {
    let s = staff(CHIYODA);
    let first = "個別宛名番号,券番号\n1001,1310160001\n";
    f.store
        .import_register(&s, m(CHIYODA), &mut first.as_bytes(), &opts())
        .unwrap();
    // 1001 gets a new voucher, then 1002 takes the old one; 1003 appears twice.
    let second = "個別宛名番号,券番号,氏名(姓)\n1001,1310160002,\n1002,1310160001,\n1003,,佐藤\n1003,1310160003,\n";
    let r = f
        .store
        .import_register(&s, m(CHIYODA), &mut second.as_bytes(), &opts())
        .unwrap();
    assert_eq!(r.outcome, ImportOutcome::Applied, "{:?}", r.errors);
    // New: 1002 and 1003; updated: 1001, and 1003 by its second row.
    assert_eq!((r.new, r.updated), (2, 2));
    let name = |v: &str| {
        f.store
            .lookup_name(
                &tablet(CHIYODA),
                &NameLookupRequest {
                    municipality: m(CHIYODA),
                    voucher: v.parse().unwrap(),
                },
            )
            .unwrap()
    };
    assert!(name("1310160001").is_some());
    assert_eq!(
        name("1310160003").unwrap().family_name.as_deref(),
        Some("佐藤")
    );
    assert_eq!(f.store.person_count(&s, m(CHIYODA)).unwrap(), 3);
}

fn a_voucher_passed_on_and_its_first_holder_seen_again_in_one_file(f: Fixture) {
    let s = staff(CHIYODA);
    let first = "個別宛名番号,券番号\n1001,1310160001\n";
    f.store
        .import_register(&s, m(CHIYODA), &mut first.as_bytes(), &opts())
        .unwrap();
    // 1001 lets go of ...0001, 1002 takes it, then 1001 appears again (a name).
    let second = "個別宛名番号,券番号,氏名(姓)\n1001,1310160002,\n1002,1310160001,\n1001,,山田\n";
    let r = f
        .store
        .import_register(&s, m(CHIYODA), &mut second.as_bytes(), &opts())
        .unwrap();
    assert_eq!(r.outcome, ImportOutcome::Applied, "{:?}", r.errors);
    let req = |v: &str| NameLookupRequest {
        municipality: m(CHIYODA),
        voucher: v.parse().unwrap(),
    };
    assert_eq!(
        f.store
            .lookup_name(&tablet(CHIYODA), &req("1310160002"))
            .unwrap()
            .unwrap()
            .family_name
            .as_deref(),
        Some("山田")
    );
    assert!(
        f.store
            .lookup_name(&tablet(CHIYODA), &req("1310160001"))
            .unwrap()
            .is_some()
    );
}

fn a_file_that_breaks_off_midway_changes_nothing(f: Fixture) {
    // 3000 good rows (more than one chunk), then a quote that never closes.
    let mut csv = String::from("個別宛名番号,マイナンバー\n");
    for i in 0..3000u64 {
        let mut d = [0u8; 11];
        let mut x = 10_000_000_000 + i * 7;
        for slot in d.iter_mut().rev() {
            *slot = (x % 10) as u8;
            x /= 10;
        }
        let n = MyNumber::from_first_eleven(d).unwrap();
        csv.push_str(&format!(
            "{},{}\n",
            5000 + i,
            std::str::from_utf8(n.expose_for_vault()).unwrap()
        ));
    }
    csv.push_str("9999,\"never closed\n");
    for i in 0..200 {
        csv.push_str(&format!("{},\n", 20000 + i));
    }
    let r = f
        .store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut csv.as_bytes(), &opts());
    assert!(
        r.is_err(),
        "a file that cannot be read to the end is refused"
    );
    assert_eq!(
        f.store.person_count(&staff(CHIYODA), m(CHIYODA)).unwrap(),
        0
    );
    assert_eq!(f.store.vault_count().unwrap(), 0);
}

fn the_lot_master_is_the_operators_and_holds_unknown_and_expired_lots(f: Fixture) {
    let s = staff(CHIYODA);
    f.store
        .import_register(&s, m(CHIYODA), &mut register(5, 2, 0).as_slice(), &opts())
        .unwrap();
    let operator = Principal::Operator { user: "ops".into() };
    // Staff and tablets read the master; only the operator changes it.
    assert!(matches!(
        f.store
            .add_lot(&s, &lot(Vaccine::Pfizer, "EY0001", "2021-05-31")),
        Err(vrs_server::StoreError::Forbidden(_))
    ));
    assert!(
        f.store
            .import_lots(
                &tablet(CHIYODA),
                &mut "pfizer,EY0001,2021-05-31\n".as_bytes(),
                &opts()
            )
            .is_err()
    );
    assert_eq!(f.store.lots(&tablet(CHIYODA)).unwrap().len(), 1);
    // A file with a bad line changes nothing, and says what it would have done.
    let file = "ワクチンメーカー,ロット番号,有効期限,GTIN\n\
                ファイザー,EY0001,2021/05/31,\n\
                ファイザー,FA4597,20300131,04987123456784\n\
                ファイザー,XX,2021-05-31,\n";
    let r = f
        .store
        .import_lots(&operator, &mut file.as_bytes(), &opts())
        .unwrap();
    assert_eq!(
        (r.outcome, r.new, r.updated, r.rejected),
        (ImportOutcome::Rejected, 1, 1, 1),
        "{r:?}"
    );
    assert_eq!(r.errors[0].line, 4);
    assert!(
        r.summary
            .en
            .starts_with("Nothing was stored because of bad rows (1)"),
        "{:?}",
        r.summary
    );
    assert!(
        r.summary.ja.contains("取り込んだ場合: 新規 1件"),
        "{:?}",
        r.summary
    );
    assert_eq!(f.store.lots(&s).unwrap().len(), 1);
    let r = f
        .store
        .import_lots(
            &operator,
            &mut file.as_bytes(),
            &ImportOptions {
                mode: ImportMode::Partial,
                ..opts()
            },
        )
        .unwrap();
    assert_eq!(
        (r.outcome, r.new, r.updated),
        (ImportOutcome::Applied, 1, 1)
    );
    let lots = f.store.lots(&s).unwrap();
    assert_eq!(
        lots.iter()
            .map(|l| (l.lot.as_str(), l.expiry.to_string()))
            .collect::<Vec<_>>(),
        [
            ("EY0001", "2021-05-31".into()),
            ("FA4597", "2030-01-31".into())
        ]
    );

    // Tablet records: an expired lot and one the master lacks are held.
    let out = receipts(
        &f,
        vec![
            dose(1310160001, 1, "2021-06-01", "EY0001"),
            dose(1310160002, 1, "2021-06-01", "ZZ9999"),
            dose(1310160003, 1, "2021-06-01", "FA4597"),
        ],
    );
    assert_eq!(
        out.iter().map(held).collect::<Vec<_>>(),
        [
            Some(HoldReason::LotExpired),
            Some(HoldReason::LotUnknown),
            None
        ]
    );
    // Paper records the same.
    let paper = ",20210601,1310160004,131016,千代田区役所,山田医師,ファイザー,ZZ9999,1\r\n\
                 ,20210601,1310160005,131016,千代田区役所,山田医師,ファイザー,EY0001,1\r\n";
    let r = f
        .store
        .import_paper(&s, m(CHIYODA), &mut paper.as_bytes(), &opts())
        .unwrap();
    assert_eq!((r.new, r.flagged), (2, 2));
    assert!(
        r.summary.ja.starts_with("取り込みました"),
        "{:?}",
        r.summary
    );
    // A strict paper file with a bad row stores nothing, and says so.
    let bad = format!("{paper},20210601,1310160099,131016,千代田区役所,,ファイザー,FA4597,0\r\n");
    let r = f
        .store
        .import_paper(&s, m(CHIYODA), &mut bad.as_bytes(), &opts())
        .unwrap();
    assert_eq!(r.outcome, ImportOutcome::Rejected);
    assert!(
        r.summary.en.contains("Had it been applied"),
        "{:?}",
        r.summary
    );
    let held_now = f.store.held(&s, m(CHIYODA)).unwrap();
    let mut reasons: Vec<_> = held_now.iter().map(|h| h.reason).collect();
    reasons.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        reasons,
        [
            HoldReason::LotExpired,
            HoldReason::LotExpired,
            HoldReason::LotUnknown,
            HoldReason::LotUnknown
        ]
    );
}

fn a_dose_is_credited_to_the_tablets_own_site_and_one_naming_another_is_refused(f: Fixture) {
    let s = staff(CHIYODA);
    f.store
        .import_register(&s, m(CHIYODA), &mut register(5, 2, 0).as_slice(), &opts())
        .unwrap();
    let mut elsewhere = dose(1310160002, 1, "2021-06-01", "FA4597");
    elsewhere.site = SiteRef::Clinic("1312345679".parse().unwrap());
    let out = receipts(
        &f,
        vec![
            dose(1310160001, 1, "2021-06-01", "FA4597"),
            elsewhere.clone(),
        ],
    );
    assert_eq!(out[0], Outcome::Accepted);
    let Outcome::Refused { detail } = &out[1] else {
        panic!("{out:?}")
    };
    assert!(detail.contains("0110113719"), "{detail}");
    // Not stored: sent again, refused again; the ledger credits the tablet's site.
    assert!(matches!(
        receipts(&f, vec![elsewhere])[0],
        Outcome::Refused { .. }
    ));
    let mut out = Vec::new();
    let n = f
        .store
        .export_ledger(
            &s,
            m(CHIYODA),
            today() - chrono::Duration::days(60),
            today(),
            OutputEncoding::Utf8,
            &mut out,
        )
        .unwrap();
    assert_eq!(n, 1);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("千代田テストクリニック")
    );
    // A device the service does not know sends nothing.
    assert!(
        f.store
            .ingest(
                &tablet(CHIYODA),
                &UploadBatch {
                    records: vec![dose(1310160003, 1, "2021-06-01", "FA4597")]
                },
                today()
            )
            .is_err()
    );
}

/// A newcomer (転入者): doses 1 and 2 were given in Sapporo, dose 3 in Chiyoda with
/// Chiyoda's voucher. The checks count the doses of every municipality the person
/// is registered in, linked through the vault by the same マイナンバー.
fn a_newcomers_earlier_doses_elsewhere_count_in_the_checks(f: Fixture) {
    let my = "123456789018";
    let old = format!("個別宛名番号,マイナンバー,券番号\n9001,{my},0110020001\n");
    f.store
        .import_register(&staff(SAPPORO), m(SAPPORO), &mut old.as_bytes(), &opts())
        .unwrap();
    let paper = ",20210601,0110020001,011002,札幌会場,,ファイザー,FA4597,1\r\n\
                 ,20210622,0110020001,011002,札幌会場,,ファイザー,FA4597,2\r\n";
    let r = f
        .store
        .import_paper(&staff(SAPPORO), m(SAPPORO), &mut paper.as_bytes(), &opts())
        .unwrap();
    assert_eq!((r.new, r.flagged), (2, 0));
    // Moved to Chiyoda: registered there with the same number and a new voucher;
    // a neighbour with no earlier doses anywhere.
    let new = format!(
        "個別宛名番号,マイナンバー,券番号\n5001,{my},1310160001\n5002,000000000019,1310160002\n"
    );
    f.store
        .import_register(&staff(CHIYODA), m(CHIYODA), &mut new.as_bytes(), &opts())
        .unwrap();
    let out = receipts(
        &f,
        vec![
            // Dose 2 again: Sapporo has it.
            dose(1310160001, 2, "2021-06-25", "FA4597"),
            // Dose 3 dated before Sapporo's dose 2.
            dose(1310160001, 3, "2021-06-20", "FA4597"),
            // The neighbour's dose 3: nothing earlier anywhere.
            dose(1310160002, 3, "2021-06-28", "FA4597"),
            dose(1310160001, 3, "2021-06-28", "FA4597"),
        ],
    );
    assert_eq!(
        out.iter().map(held).collect::<Vec<_>>(),
        [
            Some(HoldReason::DoseAlreadyRecorded),
            Some(HoldReason::BeforePreviousDose),
            Some(HoldReason::MissingEarlierDose),
            None
        ]
    );
    // The tablet learns the reason, not Sapporo's dates.
    let Outcome::Held { detail, .. } = &out[1] else {
        panic!()
    };
    assert!(!detail.contains("2021"), "{detail}");
    // The held dose 3 dated before dose 2, amended to its right date, is still a
    // repeat of the accepted dose 3; the ledger has the newcomer's dose 3 once.
    let held_now = f.store.held(&staff(CHIYODA), m(CHIYODA)).unwrap();
    let early = held_now
        .iter()
        .find(|h| h.reason == HoldReason::BeforePreviousDose)
        .unwrap();
    let outcome = f
        .store
        .amend(
            &staff(CHIYODA),
            m(CHIYODA),
            early.client_record_id,
            &Amendment {
                vaccinated_on: Some("2021-06-28".parse().unwrap()),
                ..Amendment::default()
            },
            "date checked on the paper",
            today(),
        )
        .unwrap();
    assert!(matches!(
        outcome,
        Outcome::Held {
            reason: HoldReason::DoseAlreadyRecorded,
            ..
        }
    ));
    // A paper dose 4 in Chiyoda follows on from the tablet's dose 3.
    let paper = ",20210630,1310160001,131016,千代田区役所,,ファイザー,FA4597\r\n";
    let r = f
        .store
        .import_paper(&staff(CHIYODA), m(CHIYODA), &mut paper.as_bytes(), &opts())
        .unwrap();
    assert_eq!((r.new, r.flagged), (1, 0), "{r:?}");
}

fn ledger_rows(f: &Fixture) -> Vec<String> {
    let mut csv = Vec::new();
    f.store
        .export_ledger(
            &staff(CHIYODA),
            m(CHIYODA),
            today() - chrono::Duration::days(365),
            today(),
            OutputEncoding::Utf8,
            &mut csv,
        )
        .unwrap();
    String::from_utf8(csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// The review queue finishes its work: a record is released as it is (once its
/// voucher has a person), amended in its voucher, or superseded by its tablet's
/// correction; each leaves the queue.
fn the_review_queue_releases_amends_the_voucher_and_takes_tablet_corrections(f: Fixture) {
    let s = staff(CHIYODA);
    let first = "個別宛名番号,券番号\n5001,1310160001\n5002,1310160002\n";
    f.store
        .import_register(&s, m(CHIYODA), &mut first.as_bytes(), &opts())
        .unwrap();
    let unknown = dose(1310160003, 1, "2021-06-01", "FA4597");
    let misread = dose(1310160009, 1, "2021-06-01", "FA4597");
    let wrong_lot = dose(1310160002, 1, "2021-06-01", "ZZ9999");
    let out = receipts(
        &f,
        vec![unknown.clone(), misread.clone(), wrong_lot.clone()],
    );
    assert!(
        out.iter()
            .all(|o| held(o) == Some(HoldReason::UnknownVoucher)
                || held(o) == Some(HoldReason::LotUnknown)),
        "{out:?}"
    );
    assert_eq!(f.store.held(&s, m(CHIYODA)).unwrap().len(), 3);

    // Release: refused while no one holds the voucher, and without a reason.
    let release = |id, why: &str| f.store.release(&s, m(CHIYODA), id, why);
    assert!(release(unknown.client_record_id, "checked").is_err());
    let late = "個別宛名番号,券番号\n5003,1310160003\n";
    let r = f
        .store
        .import_register(&s, m(CHIYODA), &mut late.as_bytes(), &opts())
        .unwrap();
    assert_eq!(r.new, 1);
    assert!(release(unknown.client_record_id, " ").is_err());
    release(unknown.client_record_id, "registered late; voucher checked").unwrap();
    assert!(
        release(unknown.client_record_id, "again").is_err(),
        "only a held record is released"
    );

    // The voucher, misread on the tablet, amended to the right one.
    let out = f
        .store
        .amend(
            &s,
            m(CHIYODA),
            misread.client_record_id,
            &Amendment {
                voucher: Some("1310160001".parse().unwrap()),
                ..Amendment::default()
            },
            "voucher read 9 for 1",
            today(),
        )
        .unwrap();
    assert_eq!(out, Outcome::Accepted);

    // The nurse corrects the lot on the tablet: the correction names its original,
    // which leaves the queue marked superseded.
    let mut fixed = dose(1310160002, 1, "2021-06-01", "FA4597");
    fixed.supersedes = Some(vrs_domain::dose::RecordRef {
        municipality: m(CHIYODA),
        client_record_id: wrong_lot.client_record_id,
    });
    assert_eq!(receipts(&f, vec![fixed.clone()]), [Outcome::Accepted]);
    assert!(f.store.held(&s, m(CHIYODA)).unwrap().is_empty());
    // Sent again: nothing changes.
    assert_eq!(receipts(&f, vec![fixed]), [Outcome::Duplicate]);
    let rows = ledger_rows(&f);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for v in ["1310160001", "1310160002", "1310160003"] {
        assert_eq!(
            rows.iter().filter(|r| r.contains(v)).count(),
            1,
            "{v}: {rows:?}"
        );
    }
    assert!(!rows.iter().any(|r| r.contains("ZZ9999")));
    // A superseded record cannot be released.
    assert!(release(wrong_lot.client_record_id, "x").is_err());
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { super::$name(super::sqlite()) } )*
        }
        mod on_postgres {
            $( #[test] fn $name() { super::$name(super::postgres()) } )*
        }
    };
}

on_both_backends!(
    importing_the_same_file_twice_changes_nothing_the_second_time,
    strict_mode_rejects_a_file_with_bad_rows_whole_and_partial_applies_the_rest,
    a_dry_run_reports_but_stores_nothing,
    separate_files_fill_fields_and_flags_move_status_with_9_cancelling,
    a_voucher_already_held_by_someone_else_rejects_the_row,
    tablet_records_are_idempotent_and_checked,
    a_held_record_can_be_amended_into_acceptance_and_voided_with_history,
    the_ledger_export_has_the_domain_columns_and_only_accepted_records_in_range,
    paper_records_upload_once_even_when_sent_twice,
    the_transfer_look_up_finds_doses_held_by_other_municipalities_with_their_contact,
    scoping_staff_reach_only_their_municipality_and_tablets_only_names_and_uploads,
    the_vault_seals_each_number_to_its_person,
    a_voucher_can_move_between_people_within_one_file,
    a_voucher_passed_on_and_its_first_holder_seen_again_in_one_file,
    a_file_that_breaks_off_midway_changes_nothing,
    a_first_upload_sees_its_own_earlier_chunks,
    the_lot_master_is_the_operators_and_holds_unknown_and_expired_lots,
    a_dose_is_credited_to_the_tablets_own_site_and_one_naming_another_is_refused,
    a_newcomers_earlier_doses_elsewhere_count_in_the_checks,
    the_review_queue_releases_amends_the_voucher_and_takes_tablet_corrections
);

#[test]
fn postgres_vault_lives_in_its_own_schema_that_the_service_role_cannot_read() {
    let db = support::database();
    support::admin_sql(
        &db,
        &format!(
            "CREATE ROLE vrs_app_{db} LOGIN; CREATE ROLE vrs_vault_{db} LOGIN;
             GRANT CREATE ON DATABASE {db} TO vrs_app_{db}, vrs_vault_{db};"
        ),
    );
    let port = support::cluster().port;
    let app = support::url(port, &format!("vrs_app_{db}"), &db);
    let vault = support::url(port, &format!("vrs_vault_{db}"), &db);
    let store = PgStore::open(&app, &vault, &Keys::generate().unwrap()).unwrap();
    let s = staff(CHIYODA);
    store
        .import_register(
            &s,
            m(CHIYODA),
            &mut "個別宛名番号,マイナンバー\n1001,123456789018\n".as_bytes(),
            &opts(),
        )
        .unwrap();
    assert_eq!(store.vault_count().unwrap(), 1);
    let n = store
        .vault_reveal(m(CHIYODA), &"1001".parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(n.expose_for_vault(), b"123456789018");
    // The service's own role reaches the register, never the vault.
    let mut as_app = postgres::Client::connect(&app, postgres::NoTls).unwrap();
    assert!(
        as_app
            .query("SELECT count(*) FROM vrs.persons", &[])
            .is_ok()
    );
    let denied = as_app
        .query("SELECT count(*) FROM vrs_vault.my_numbers", &[])
        .unwrap_err();
    let message = denied
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_default();
    assert!(message.contains("permission denied"), "{denied:?}");
    // And the vault table holds no digits in clear.
    let mut as_vault = postgres::Client::connect(&vault, postgres::NoTls).unwrap();
    let row = as_vault
        .query_one(
            "SELECT sealed, encode(sealed, 'escape') FROM vrs_vault.my_numbers",
            &[],
        )
        .unwrap();
    let text: String = row.get(1);
    assert!(!text.contains("123456789018"));
}

/// The vault commits before the register: a crash between the two leaves a number
/// whose person the register does not hold. Uploading the file again must still
/// work, and leave the file's number.
#[test]
fn postgres_a_number_left_in_the_vault_without_its_person_is_replaced_on_upload() {
    let db = support::database();
    let url = support::url(support::cluster().port, "postgres", &db);
    let store = PgStore::open(&url, &url, &Keys::generate().unwrap()).unwrap();
    store
        .upsert_municipality(&staff(CHIYODA), m(CHIYODA), "東京都千代田区", "")
        .unwrap();
    support::admin_sql(
        &db,
        "INSERT INTO vrs_vault.my_numbers (municipality, person_id, lookup, nonce, sealed)
         VALUES (131016, '1001', '\\x00', '\\x00', '\\x00')",
    );
    let report = store
        .import_register(
            &staff(CHIYODA),
            m(CHIYODA),
            &mut "個別宛名番号,マイナンバー\n1001,123456789018\n1002,000000000019\n".as_bytes(),
            &opts(),
        )
        .unwrap();
    assert_eq!(report.new, 2, "{report:?}");
    assert_eq!(store.vault_count().unwrap(), 2);
    for (person, digits) in [("1001", b"123456789018"), ("1002", b"000000000019")] {
        let n = store
            .vault_reveal(m(CHIYODA), &person.parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(n.expose_for_vault(), digits);
    }
}
