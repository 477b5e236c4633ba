//! What is printed: vouchers' identifiers, names, addresses, dates, phone numbers and
//! the other digit strings that sit near an OCR line and must not be mistaken for it.

use fastrand::Rng;
use vrs_domain::gs1::Gtin;
use vrs_domain::ids::{DoseNumber, MunicipalityCode, OcrLine, VoucherKind, VoucherNumber};

use super::SynthError;

/// (first five digits of the JIS code, prefecture, municipality).
const KNOWN: [(u32, &str, &str); 21] = [
    (13101, "東京都", "千代田区"),
    (1100, "北海道", "札幌市"),
    (27100, "大阪府", "大阪市"),
    (13104, "東京都", "新宿区"),
    (13113, "東京都", "渋谷区"),
    (14100, "神奈川県", "横浜市"),
    (23100, "愛知県", "名古屋市"),
    (26100, "京都府", "京都市"),
    (40130, "福岡県", "福岡市"),
    (4100, "宮城県", "仙台市"),
    (34100, "広島県", "広島市"),
    (28100, "兵庫県", "神戸市"),
    (11100, "埼玉県", "さいたま市"),
    (12100, "千葉県", "千葉市"),
    (22130, "静岡県", "浜松市"),
    (15100, "新潟県", "新潟市"),
    (33100, "岡山県", "岡山市"),
    (43100, "熊本県", "熊本市"),
    (47201, "沖縄県", "那覇市"),
    (13201, "東京都", "八王子市"),
    (46201, "鹿児島県", "鹿児島市"),
];

const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

const PLACE_PARTS: [&str; 20] = [
    "北", "南", "東", "西", "中", "大", "小", "新", "高", "山", "川", "田", "野", "原", "松", "石",
    "岡", "島", "宮", "富",
];

const TOWNS: [&str; 10] = [
    "本町",
    "栄町",
    "緑町",
    "旭町",
    "中央",
    "幸町",
    "桜木町",
    "若葉",
    "青葉台",
    "曙町",
];

const FAMILY: [&str; 16] = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
];

const GIVEN: [&str; 16] = [
    "太郎",
    "健",
    "翔太",
    "大輔",
    "誠",
    "浩",
    "蓮",
    "悠真",
    "花子",
    "陽子",
    "美咲",
    "愛",
    "結衣",
    "恵子",
    "さくら",
    "葵",
];

/// Everything printed on one voucher.
#[derive(Clone, Debug)]
pub(crate) struct Voucher {
    /// The 18 digits printed as the OCR line (not valid when `valid` is false).
    pub line: String,
    pub valid: bool,
    pub dose: u8,
    pub municipality_code: String,
    pub prefecture: String,
    pub municipality: String,
    /// 券番号, 10 digits.
    pub number: String,
    pub name: String,
    pub address: String,
    pub postal: String,
    pub issued: Date,
    pub birth: String,
    pub phone: String,
    /// The resident's other numbers printed near the line: 宛名番号 (12 digits) and
    /// 整理番号 (10 digits).
    pub address_no: String,
    pub file_no: String,
}

/// A date printed in one of the ways municipal print shops do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Date {
    pub y: i32,
    pub m: u32,
    pub d: u32,
}

impl Date {
    pub fn wareki(self) -> String {
        // 令和 began in 2019.
        format!("令和{}年{}月{}日", self.y - 2018, self.m, self.d)
    }
    pub fn slashed(self) -> String {
        format!("{}/{:02}/{:02}", self.y, self.m, self.d)
    }
    pub fn kanji_western(self) -> String {
        format!("{}年{}月{}日", self.y, self.m, self.d)
    }
    pub fn any(self, rng: &mut Rng) -> String {
        match rng.u8(0..3) {
            0 => self.wareki(),
            1 => self.slashed(),
            _ => self.kanji_western(),
        }
    }
}

pub(crate) fn date_2021(rng: &mut Rng) -> Date {
    Date {
        y: 2021 + i32::from(rng.u8(0..2)),
        m: rng.u32(1..13),
        d: rng.u32(1..29),
    }
}

pub(crate) fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.u8(0..10))).collect()
}

pub(crate) fn phone(rng: &mut Rng) -> String {
    match rng.u8(0..4) {
        0 => format!("03-{}-{}", digits(rng, 4), digits(rng, 4)),
        1 => format!(
            "0{}-{}-{}",
            rng.u16(11..100),
            digits(rng, 3),
            digits(rng, 4)
        ),
        2 => format!("0120-{}-{}", digits(rng, 3), digits(rng, 3)),
        _ => format!("0{}-{}-{}", rng.u8(6..10), digits(rng, 4), digits(rng, 4)),
    }
}

pub(crate) fn postal(rng: &mut Rng) -> String {
    format!("〒{}-{}", digits(rng, 3), digits(rng, 4))
}

/// A street address somewhere in Japan, for forms filled in at reception.
pub(crate) fn address(rng: &mut Rng) -> String {
    let pref = PREFECTURES[rng.usize(..PREFECTURES.len())];
    let city = place_name(rng, "市");
    let town = TOWNS[rng.usize(..TOWNS.len())];
    format!(
        "{pref}{city}{town}{}-{}-{}",
        rng.u8(1..6),
        rng.u8(1..30),
        rng.u8(1..20)
    )
}

pub(crate) fn person_name(rng: &mut Rng) -> String {
    let f = FAMILY[rng.usize(..FAMILY.len())];
    let g = GIVEN[rng.usize(..GIVEN.len())];
    format!("{f} {g}")
}

fn birth(rng: &mut Rng) -> String {
    if rng.bool() {
        format!(
            "昭和{}年{}月{}日",
            rng.u8(10..64),
            rng.u8(1..13),
            rng.u8(1..29)
        )
    } else {
        format!(
            "平成{}年{}月{}日",
            rng.u8(1..16),
            rng.u8(1..13),
            rng.u8(1..29)
        )
    }
}

fn place_name(rng: &mut Rng, suffix: &str) -> String {
    let a = PLACE_PARTS[rng.usize(..PLACE_PARTS.len())];
    let b = PLACE_PARTS[rng.usize(..PLACE_PARTS.len())];
    format!("{a}{b}{suffix}")
}

/// A municipality: half from a list of real ones, half a made-up code (with a valid
/// check digit) so the digits vary freely.
fn municipality(rng: &mut Rng) -> (MunicipalityCode, String, String) {
    if rng.bool() {
        let (prefix, pref, name) = KNOWN[rng.usize(..KNOWN.len())];
        if let Some(code) = MunicipalityCode::from_prefix(prefix) {
            return (code, pref.into(), name.into());
        }
    }
    loop {
        let pref = rng.u32(1..48);
        let (rest, suffix) = match rng.u8(0..3) {
            0 => (rng.u32(201..240), "市"),
            1 => (rng.u32(300..600), "町"),
            _ => (rng.u32(600..900), "村"),
        };
        if let Some(code) = MunicipalityCode::from_prefix(pref * 1000 + rest) {
            let pref_name = PREFECTURES[(pref - 1) as usize];
            return (code, pref_name.into(), place_name(rng, suffix));
        }
    }
}

/// A voucher with a valid OCR line, checked by parsing it back.
pub(crate) fn voucher(rng: &mut Rng, dose: u8) -> Result<Voucher, SynthError> {
    let (code, prefecture, municipality) = municipality(rng);
    voucher_in(rng, dose, code, prefecture, municipality)
}

/// Another resident's voucher from the same municipality as `v` (the next person in
/// the queue usually lives in the same town).
pub(crate) fn neighbour(rng: &mut Rng, v: &Voucher, dose: u8) -> Result<Voucher, SynthError> {
    let code: MunicipalityCode = v
        .municipality_code
        .parse()
        .map_err(|e| internal(&format!("municipality code {}: {e}", v.municipality_code)))?;
    voucher_in(
        rng,
        dose,
        code,
        v.prefecture.clone(),
        v.municipality.clone(),
    )
}

fn voucher_in(
    rng: &mut Rng,
    dose: u8,
    code: MunicipalityCode,
    prefecture: String,
    municipality: String,
) -> Result<Voucher, SynthError> {
    let number = VoucherNumber::new(rng.u64(0..10_000_000_000))
        .ok_or_else(|| internal("券番号 below 10^10"))?;
    let line = OcrLine {
        kind: VoucherKind::new(1).ok_or_else(|| internal("券種 1"))?,
        dose: DoseNumber::new(dose).ok_or_else(|| internal("dose number 1 to 9"))?,
        municipality: code,
        number,
    };
    voucher_of(rng, &line, prefecture, municipality)
}

/// The voucher printed with this OCR line (a registered resident's, for a demo or a
/// test), by `municipality` of `prefecture`; the rest of the print is made up.
pub(crate) fn voucher_of(
    rng: &mut Rng,
    line: &OcrLine,
    prefecture: String,
    municipality: String,
) -> Result<Voucher, SynthError> {
    let (code, number, dose) = (line.municipality, line.number, line.dose.get());
    let line = line.to_string();
    let parsed: OcrLine = line
        .parse()
        .map_err(|e| internal(&format!("made an OCR line that does not parse: {e}")))?;
    if parsed.to_string() != line {
        return Err(internal("the OCR line does not round-trip"));
    }
    let town = TOWNS[rng.usize(..TOWNS.len())];
    let address = format!(
        "{prefecture}{municipality}{town}{}丁目{}番{}号",
        rng.u8(1..6),
        rng.u8(1..30),
        rng.u8(1..20)
    );
    Ok(Voucher {
        line,
        valid: true,
        dose,
        municipality_code: code.to_string(),
        prefecture,
        municipality,
        number: number.to_string(),
        name: person_name(rng),
        address,
        postal: postal(rng),
        issued: date_2021(rng),
        birth: birth(rng),
        phone: phone(rng),
        address_no: digits(rng, 12),
        file_no: digits(rng, 10),
    })
}

/// The same voucher with the municipality's check digit (digit 8 of the line)
/// changed to a wrong one.
pub(crate) fn break_check_digit(rng: &mut Rng, v: &mut Voucher) -> Result<(), SynthError> {
    let mut b = v.line.clone().into_bytes();
    let old = b[7] - b'0';
    for _ in 0..10 {
        b[7] = b'0' + (old + rng.u8(1..10)) % 10;
        let s = String::from_utf8_lossy(&b).into_owned();
        if s.parse::<OcrLine>().is_err() {
            v.line = s;
            v.municipality_code = v.line[2..8].to_owned();
            v.valid = false;
            return Ok(());
        }
    }
    Err(internal("could not make an invalid check digit"))
}

fn internal(detail: &str) -> SynthError {
    SynthError::Internal {
        detail: detail.to_owned(),
    }
}

/// A vaccine product as its packaging shows it.
#[derive(Clone, Debug)]
pub(crate) struct Product {
    pub name: &'static str,
    pub maker: &'static str,
    pub generic: &'static str,
    /// Box colour (the band behind the product name).
    pub band: [u8; 3],
    pub pfizer_lot: bool,
}

pub(crate) const PRODUCTS: [Product; 3] = [
    Product {
        name: "コミナティ筋注",
        maker: "ファイザー株式会社",
        generic: "コロナウイルス修飾ウリジンRNAワクチン(SARS-CoV-2)",
        band: [98, 52, 128],
        pfizer_lot: true,
    },
    Product {
        name: "スパイクバックス筋注",
        maker: "武田薬品工業株式会社",
        generic: "コロナウイルス修飾ウリジンRNAワクチン(SARS-CoV-2)",
        band: [22, 86, 160],
        pfizer_lot: false,
    },
    Product {
        name: "コミナティRTU筋注",
        maker: "ファイザー株式会社",
        generic: "コロナウイルス修飾ウリジンRNAワクチン(SARS-CoV-2)",
        band: [150, 40, 60],
        pfizer_lot: true,
    },
];

/// A label's identifiers: GTIN-14 (valid check digit), lot, expiry.
#[derive(Clone, Debug)]
pub(crate) struct LabelData {
    pub product: &'static Product,
    pub gtin: String,
    pub lot: String,
    pub expiry: Date,
}

impl LabelData {
    pub fn expiry_yymmdd(&self) -> String {
        format!(
            "{:02}{:02}{:02}",
            self.expiry.y % 100,
            self.expiry.m,
            self.expiry.d
        )
    }
    pub fn expiry_iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}",
            self.expiry.y, self.expiry.m, self.expiry.d
        )
    }
    pub fn human_readable(&self) -> String {
        format!(
            "(01){}(17){}(10){}",
            self.gtin,
            self.expiry_yymmdd(),
            self.lot
        )
    }
}

pub(crate) fn label(rng: &mut Rng) -> Result<LabelData, SynthError> {
    let product = &PRODUCTS[rng.usize(..PRODUCTS.len())];
    // Packaging indicator 0 or 1, then a Japanese (49) company prefix and item.
    let mut first = [0u8; 13];
    first[0] = rng.u8(0..2);
    first[1] = 4;
    first[2] = 9;
    first[3] = 8;
    first[4] = 7;
    for d in &mut first[5..] {
        *d = rng.u8(0..10);
    }
    let check = Gtin::check_digit(&first);
    let gtin: String = first
        .iter()
        .chain(std::iter::once(&check))
        .map(|d| char::from(b'0' + d))
        .collect();
    gtin.parse::<Gtin>()
        .map_err(|e| internal(&format!("made a GTIN that does not parse: {e}")))?;
    let lot = if product.pfizer_lot {
        let a = char::from(b'E' + rng.u8(0..3));
        let b = char::from(b'A' + rng.u8(0..26));
        format!("{a}{b}{}", digits(rng, 4))
    } else {
        format!("300{}", digits(rng, 4))
    };
    let expiry = Date {
        y: 2021 + i32::from(rng.u8(0..3)),
        m: rng.u32(1..13),
        d: rng.u32(1..29),
    };
    Ok(LabelData {
        product,
        gtin,
        lot,
        expiry,
    })
}
