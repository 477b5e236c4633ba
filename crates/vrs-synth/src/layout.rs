//! Sheet designs: the voucher card (接種券), the 予診票 it often lies on, a
//! reservation slip (予約確認書) for clutter, and a vaccine box with its barcode
//! sticker. Every choice of design is drawn from the `design` generator, so a
//! municipality's vouchers can share a look while their digits differ.

use fastrand::Rng;

use super::SynthError;
use super::content::{self, LabelData, Voucher};
use super::fonts::Fonts;
use super::geom::{Homography, Rect};
use super::paper::{Face, INK, Mark, Rgb8, Sheet, text, text_width};
use super::symbols::{self, Modules};

/// The height of an OCR-B digit on a voucher: 9 pt OCR-B, as the domain specifies,
/// has digits about 2.3 mm tall.
pub(crate) const LINE_DIGIT_MM: f64 = 2.3;

pub(crate) fn range(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.f64()
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// A sheet and the regions of it the camera must see for the scene to be what its
/// truth says.
#[derive(Clone, Debug)]
pub(crate) struct Placed {
    pub sheet: Sheet,
    /// Regions (sheet mm) that must be in view: the OCR line, a barcode.
    pub key: Vec<Rect>,
    /// The tight box of the 18 OCR digits (sheet mm), to measure their height.
    pub line: Option<Rect>,
    /// A region a card could be laid on (the form's 接種券貼付欄).
    pub slot: Option<Rect>,
}

/// Which machine-readable symbol a voucher carries besides its OCR line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoucherSymbol {
    None,
    Qr,
    Nw7,
}

const PAPERS: [Rgb8; 7] = [
    [250, 250, 247],
    [252, 251, 245],
    [247, 242, 226],
    [244, 246, 250],
    [251, 241, 243],
    [241, 248, 240],
    [250, 246, 232],
];

const ACCENTS: [Rgb8; 6] = [
    [20, 60, 130],
    [16, 100, 70],
    [140, 30, 40],
    [40, 40, 44],
    [90, 40, 110],
    [0, 110, 140],
];

const TITLES: [&str; 5] = [
    "新型コロナウイルス感染症 予防接種券",
    "新型コロナウイルスワクチン接種券",
    "予防接種券（新型コロナウイルス感染症）",
    "接種券",
    "新型コロナワクチン接種券 兼 予診票貼付用シール",
];

const SMALL_PRINT: [&str; 5] = [
    "この接種券は大切に保管してください。",
    "接種を受ける際には、本券を切り離さずにお持ちください。",
    "※予診票と一緒に接種会場へお持ちください",
    "再発行の際は下記までお問い合わせください。",
    "※この券は他の人に譲渡できません。",
];

/// Lays rows out top to bottom within a column, collecting marks.
struct Flow<'f> {
    fonts: &'f Fonts,
    marks: Vec<Mark>,
    x0: f64,
    x1: f64,
    y: f64,
}

impl Flow<'_> {
    fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    /// A text at most `max_w` wide: shrinks the size rather than run off the card.
    fn fit_text(&self, at: (f64, f64), size: f64, s: &str, color: Rgb8, max_w: f64) -> (Mark, f64) {
        let w = text_width(self.fonts, Face::Jp, size, s);
        let size = if w > max_w && w > 0.0 {
            size * max_w / w
        } else {
            size
        };
        (text(self.fonts, at, size, s, color, Face::Jp), size)
    }

    fn push_text(&mut self, at: (f64, f64), size: f64, s: &str, color: Rgb8, max_w: f64) -> f64 {
        let (m, size) = self.fit_text(at, size, s, color, max_w);
        self.marks.push(m);
        size
    }

    fn gap(&mut self, mm: f64) {
        self.y += mm;
    }
}

/// Field rows in a table (label cell shaded, cells outlined) or as plain text.
struct FieldStyle {
    size: f64,
    label_w: f64,
    table: bool,
    shade: Rgb8,
    rule: Rgb8,
}

fn field_row(flow: &mut Flow, st: &FieldStyle, label: &str, value: &str) {
    let h = st.size * if st.table { 1.9 } else { 1.55 };
    let (x0, y) = (flow.x0, flow.y);
    let value_x = x0 + st.label_w;
    let pad = if st.table { 1.0 } else { 0.0 };
    if st.table {
        flow.marks.push(Mark::Fill {
            rect: Rect::new(x0, y, st.label_w, h),
            color: st.shade,
        });
        flow.marks.push(Mark::Frame {
            rect: Rect::new(x0, y, st.label_w, h),
            width: 0.2,
            color: st.rule,
            dash: None,
        });
        flow.marks.push(Mark::Frame {
            rect: Rect::new(value_x, y, flow.x1 - value_x, h),
            width: 0.2,
            color: st.rule,
            dash: None,
        });
    }
    let ty = y + (h - st.size) / 2.0 - st.size * 0.08;
    flow.push_text(
        (x0 + pad, ty),
        st.size * 0.9,
        label,
        INK,
        st.label_w - 2.0 * pad,
    );
    flow.push_text(
        (value_x + pad + 0.8, ty),
        st.size,
        value,
        INK,
        flow.x1 - value_x - 2.0 * pad - 0.8,
    );
    flow.y += h + if st.table { 0.0 } else { st.size * 0.25 };
}

/// Where the OCR line sits on the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinePos {
    Top,
    AfterTitle,
    Bottom,
}

/// The OCR line as a mark, with its tight digit box.
fn ocr_line(fonts: &Fonts, at: (f64, f64), digits: &str) -> (Mark, Rect) {
    let size = LINE_DIGIT_MM / fonts.ocr_digit_ratio;
    let m = text(fonts, at, size, digits, [10, 10, 12], Face::OcrB);
    let w = 18.0 * fonts.ocr_advance_ratio * size;
    let top = at.1 + fonts.ocr_digit_top_ratio * size;
    (m, Rect::new(at.0, top, w, LINE_DIGIT_MM))
}

/// Places the OCR line as a row of its own, with a clear zone above and below.
struct LineAt {
    card_w: f64,
    margin: f64,
    line_w: f64,
}

impl LineAt {
    fn place(&self, d: &mut Rng, flow: &mut Flow, full_width: bool, digits: &str) -> Rect {
        flow.gap(3.0);
        let span = if full_width {
            self.card_w - 2.0 * self.margin
        } else {
            flow.width()
        };
        let slack = (span - self.line_w).max(0.0);
        let x = self.margin
            + match d.u8(0..3) {
                0 => 0.0,
                1 => slack / 2.0,
                _ => slack * d.f64(),
            };
        let (m, r) = ocr_line(flow.fonts, (x, flow.y), digits);
        flow.marks.push(m);
        // The OCR area's clear zone below the digits.
        flow.y = r.y1 + 3.5;
        r
    }
}

fn ocr_line_width(fonts: &Fonts) -> f64 {
    18.0 * fonts.ocr_advance_ratio * (LINE_DIGIT_MM / fonts.ocr_digit_ratio)
}

fn modules_mark(m: &Modules, origin: (f64, f64), module: (f64, f64)) -> Mark {
    Mark::Modules {
        origin,
        module,
        cols: m.cols,
        bits: m.bits.clone(),
        color: [12, 12, 14],
    }
}

/// The voucher card. `design` makes every layout choice; `v` supplies the print.
pub(crate) fn voucher_card(
    fonts: &Fonts,
    design: &mut Rng,
    v: &Voucher,
    symbol: VoucherSymbol,
) -> Result<Placed, SynthError> {
    let d = design;
    let line_w = ocr_line_width(fonts);
    let w = range(d, 92.0, 118.0);
    let margin = range(d, 4.0, 6.5);
    let paper = *pick(d, &PAPERS);
    let accent = *pick(d, &ACCENTS);
    let line_pos = match d.u8(0..20) {
        0..=2 => LinePos::Top,
        3..=7 => LinePos::AfterTitle,
        _ => LinePos::Bottom,
    };
    let mut key = Vec::new();

    // The side column: the QR code, or a dose box and the municipality's seal.
    let qr = match symbol {
        VoucherSymbol::Qr => Some(symbols::qr(&v.line)?),
        _ => None,
    };
    let qr_module = range(d, 0.55, 0.75);
    let side_w = match &qr {
        Some(q) => q.cols as f64 * qr_module + 4.0,
        None if d.bool() => range(d, 17.0, 22.0),
        None => 0.0,
    };
    let side_gap = if side_w > 0.0 { 3.0 } else { 0.0 };
    let main_x1 = w - margin - side_w - side_gap;
    // The OCR line must fit in the main column with a clear zone each side.
    let main_x1 = main_x1.max(margin + line_w + 2.0);
    let w = w.max(main_x1 + side_gap + side_w + margin);

    let mut flow = Flow {
        fonts,
        marks: Vec::new(),
        x0: margin,
        x1: main_x1,
        y: margin,
    };
    let mut line_rect = None;
    let line_at = LineAt {
        card_w: w,
        margin,
        line_w,
    };
    // Title: in a coloured band across the card, or plain.
    let band = line_pos != LinePos::Top && d.u8(0..3) == 0;
    let title = *pick(d, &TITLES);
    let title_size = range(d, 3.6, 4.6);
    if line_pos == LinePos::Top {
        line_rect = Some(line_at.place(d, &mut flow, side_w == 0.0, &v.line));
    }
    if band {
        let h = title_size + 3.0;
        flow.marks.push(Mark::Fill {
            rect: Rect::new(0.0, 0.0, w, h + margin - 1.5),
            color: accent,
        });
        let y = (h + margin - 1.5 - title_size) / 2.0 - 0.3;
        flow.push_text(
            (margin, y),
            title_size,
            title,
            [250, 250, 250],
            w - 2.0 * margin,
        );
        flow.y = h + margin + 1.0;
    } else {
        let (mut m, _) = flow.fit_text((margin, flow.y), title_size, title, accent, flow.width());
        if let Mark::Text { bold, .. } = &mut m {
            *bold = d.bool();
        }
        flow.marks.push(m);
        flow.y += title_size * 1.45;
    }
    let sub = match d.u8(0..3) {
        0 => format!("{}回目接種用", v.dose),
        1 => format!("（第{}回）{}", v.dose, v.municipality),
        _ => format!("{}{}", v.prefecture, v.municipality),
    };
    let sub_size = range(d, 2.4, 3.0);
    flow.push_text((margin, flow.y), sub_size, &sub, INK, flow.width());
    flow.y += sub_size * 1.6;
    if line_pos == LinePos::AfterTitle {
        line_rect = Some(line_at.place(d, &mut flow, false, &v.line));
    }

    // Field rows: the printed 券番号 always, then a shuffled handful of others, some
    // of them digit strings of 10 and 12 digits to tempt a careless reader.
    let style = FieldStyle {
        size: range(d, 2.4, 3.0),
        label_w: range(d, 16.0, 21.0),
        table: d.u8(0..5) < 2,
        shade: paper.map(|c| c.saturating_sub(14)),
        rule: [90, 90, 95],
    };
    let mut fields: Vec<(String, String)> = vec![
        ("氏名".into(), format!("{} 様", v.name)),
        ("住所".into(), v.address.clone()),
        ("生年月日".into(), v.birth.clone()),
        ("発行日".into(), v.issued.any(d)),
        ("市町村コード".into(), v.municipality_code.clone()),
        ("問合せ先".into(), v.phone.clone()),
        ("郵便番号".into(), v.postal.clone()),
        ("宛名番号".into(), v.address_no.clone()),
        ("整理番号".into(), v.file_no.clone()),
    ];
    d.shuffle(&mut fields);
    fields.truncate(d.usize(3..7));
    let number_label = if d.bool() {
        "券番号"
    } else {
        "接種券番号"
    };
    fields.insert(
        d.usize(..=fields.len().min(2)),
        (number_label.into(), v.number.clone()),
    );
    for (label, value) in &fields {
        field_row(&mut flow, &style, label, value);
    }
    if style.table {
        flow.gap(1.5);
    }

    // A hard distractor: a shorter number in the same OCR-B face.
    if d.u8(0..10) < 3 {
        let n = if d.bool() { 10 } else { 12 };
        let s = format!("No.{}", content::digits(d, n));
        let size = LINE_DIGIT_MM * 0.8 / fonts.ocr_digit_ratio;
        flow.gap(1.0);
        flow.marks
            .push(text(fonts, (flow.x0, flow.y), size, s, INK, Face::OcrB));
        flow.y += size * 1.4;
    }

    // NW-7: the 券番号 only, usually with its digits printed under the bars.
    if symbol == VoucherSymbol::Nw7 {
        let guard = *pick(d, &['A', 'A', 'B', 'C', 'D']);
        let bars = symbols::nw7(&v.number, guard, d.bool())?;
        let narrow = range(d, 0.30, 0.36);
        let bar_h = range(d, 7.0, 10.0);
        let bw = bars.cols as f64 * narrow;
        flow.gap(2.5);
        let slack = (flow.width() - bw).max(0.0);
        let x = flow.x0 + if d.bool() { 0.0 } else { slack * d.f64() };
        let origin = (x, flow.y);
        flow.marks
            .push(modules_mark(&bars, origin, (narrow, bar_h)));
        key.push(Rect::new(x, flow.y, bw, bar_h).grow(3.0));
        flow.y += bar_h + 0.6;
        if d.u8(0..3) > 0 {
            let hri = if d.bool() {
                v.number.clone()
            } else {
                format!("{guard}{}{guard}", v.number)
            };
            let size = 2.2;
            let tw = text_width(fonts, Face::Jp, size, &hri);
            flow.push_text((x + (bw - tw).max(0.0) / 2.0, flow.y), size, &hri, INK, bw);
            flow.y += size * 1.3;
        }
        flow.gap(1.0);
    }

    if d.u8(0..5) < 3 {
        let s = *pick(d, &SMALL_PRINT);
        flow.push_text((flow.x0, flow.y), range(d, 1.8, 2.2), s, INK, flow.width());
        flow.y += 3.0;
    }
    if line_pos == LinePos::Bottom {
        line_rect = Some(line_at.place(d, &mut flow, false, &v.line));
    }
    let mut marks = flow.marks;
    let mut bottom = flow.y;

    // The side column, top down.
    if side_w > 0.0 {
        let x = w - margin - side_w;
        let mut y = if band {
            title_size + margin + 3.0
        } else {
            margin
        };
        if let Some(q) = &qr {
            let size = q.cols as f64 * qr_module;
            let qx = x + (side_w - size) / 2.0;
            y += 1.5;
            marks.push(modules_mark(q, (qx, y), (qr_module, qr_module)));
            key.push(Rect::new(qx, y, size, size).grow(3.0));
            y += size + 1.0;
            let cap = if d.bool() { "接種記録用" } else { "QR" };
            let tw = text_width(fonts, Face::Jp, 1.8, cap);
            marks.push(text(
                fonts,
                (x + (side_w - tw) / 2.0, y),
                1.8,
                cap,
                INK,
                Face::Jp,
            ));
            y += 3.5;
        }
        let box_h = 8.0;
        marks.push(Mark::Frame {
            rect: Rect::new(x + 1.0, y, side_w - 2.0, box_h),
            width: 0.3,
            color: accent,
            dash: None,
        });
        let dose_text = format!("{}回目", v.dose);
        let tw = text_width(fonts, Face::Jp, 3.4, &dose_text);
        marks.push(text(
            fonts,
            (x + (side_w - tw) / 2.0, y + 2.0),
            3.4,
            dose_text,
            accent,
            Face::Jp,
        ));
        y += box_h + 2.5;
        if qr.is_none() || d.bool() {
            // The municipality's seal: a red ring with the name inside.
            let r = (side_w / 2.0 - 1.5).min(7.0);
            let center = (x + side_w / 2.0, y + r);
            marks.push(Mark::Ring {
                center,
                radius: r,
                width: 0.5,
                color: [200, 50, 45],
            });
            let name: String = v.municipality.chars().take(3).collect();
            let s = format!("{name}印");
            let size = (1.6 * r / s.chars().count().max(1) as f64).min(3.5);
            let tw = text_width(fonts, Face::Jp, size, &s);
            marks.push(text(
                fonts,
                (center.0 - tw / 2.0, center.1 - size * 0.6),
                size,
                s,
                [200, 50, 45],
                Face::Jp,
            ));
            y += 2.0 * r + 2.0;
        }
        bottom = bottom.max(y);
    }
    let h = (bottom + margin).max(52.0);

    // A printed border and/or a cut line around the edge.
    if d.bool() {
        marks.push(Mark::Frame {
            rect: Rect::new(1.6, 1.6, w - 3.2, h - 3.2),
            width: range(d, 0.25, 0.6),
            color: accent,
            dash: None,
        });
    } else if d.u8(0..3) == 0 {
        marks.push(Mark::Frame {
            rect: Rect::new(0.8, 0.8, w - 1.6, h - 1.6),
            width: 0.2,
            color: [120, 120, 120],
            dash: Some(1.2),
        });
    }

    let line = line_rect.ok_or(SynthError::Internal {
        detail: "the voucher layout placed no OCR line".into(),
    })?;
    key.push(line.grow(2.0));
    Ok(Placed {
        sheet: Sheet {
            size: (w, h),
            paper,
            marks,
            place: Homography::IDENTITY,
            lift: range(d, 0.25, 0.7),
            grain: range(d, 0.2, 1.0) as f32,
            seed: d.u64(..),
        },
        key,
        line: Some(line),
        slot: None,
    })
}

const QUESTIONS: [&str; 12] = [
    "現在、何らかの病気にかかって、治療（投薬など）を受けていますか。",
    "最近1か月以内に熱が出たり、病気にかかったりしましたか。",
    "今日、体に具合が悪いところがありますか。",
    "けいれん（ひきつけ）を起こしたことがありますか。",
    "薬や食品などで、重いアレルギー症状を起こしたことがありますか。",
    "これまでに予防接種を受けて具合が悪くなったことはありますか。",
    "現在、妊娠している可能性はありますか。または授乳中ですか。",
    "2週間以内に予防接種を受けましたか。",
    "今日の予防接種について、質問がありますか。",
    "新型コロナワクチンの接種を初めて受けますか。",
    "現時点で住民票のある市町村と、接種券に記載の市町村は同じですか。",
    "血をサラサラにする薬を飲んでいますか。",
];

/// The 予診票 (pre-vaccination questionnaire), A4 portrait, partly filled in.
pub(crate) fn form(fonts: &Fonts, rng: &mut Rng) -> Placed {
    let (w, h) = (210.0, 297.0);
    let ink = INK;
    let blue = [30, 45, 110];
    let rule = [70, 70, 75];
    let mut m = Vec::new();
    let title = if rng.bool() {
        "新型コロナワクチン接種の予診票"
    } else {
        "新型コロナワクチン接種希望書 兼 予診票"
    };
    let tsize = 6.5;
    let tw = text_width(fonts, Face::Jp, tsize, title);
    m.push(Mark::Text {
        at: ((w - tw) / 2.0, 14.0),
        size: tsize,
        text: title.into(),
        color: ink,
        face: Face::Jp,
        bold: true,
        width: tw,
    });
    m.push(text(
        fonts,
        (160.0, 6.0),
        2.8,
        format!("様式第{}号", rng.u8(1..6)),
        ink,
        Face::Jp,
    ));
    m.push(text(
        fonts,
        (150.0, 24.0),
        2.8,
        format!("No.{}", content::digits(rng, 10)),
        ink,
        Face::Jp,
    ));
    m.push(text(
        fonts,
        (14.0, 26.0),
        2.6,
        "※太枠内にご記入ください。",
        ink,
        Face::Jp,
    ));

    // The header table: who is being vaccinated, typed in as if by a reception desk.
    let rows: [(&str, String); 4] = [
        (
            "住所",
            format!("{}  {}", content::postal(rng), content::address(rng)),
        ),
        ("氏名", content::person_name(rng)),
        ("生年月日", content::date_2021(rng).any(rng)),
        ("電話番号", content::phone(rng)),
    ];
    let (x0, mut y) = (14.0, 32.0);
    let (lw, row_h) = (28.0, 11.0);
    let table_w = 110.0;
    for (label, value) in &rows {
        m.push(Mark::Frame {
            rect: Rect::new(x0, y, lw, row_h),
            width: 0.3,
            color: rule,
            dash: None,
        });
        m.push(Mark::Frame {
            rect: Rect::new(x0 + lw, y, table_w - lw, row_h),
            width: 0.3,
            color: rule,
            dash: None,
        });
        m.push(text(fonts, (x0 + 2.0, y + 3.5), 3.2, *label, ink, Face::Jp));
        if rng.u8(0..4) > 0 {
            m.push(text(
                fonts,
                (x0 + lw + 3.0, y + 3.0),
                3.6,
                value,
                blue,
                Face::Jp,
            ));
        }
        y += row_h;
    }
    // The voucher slot (接種券貼付欄) to the right of the table.
    let slot = Rect::new(130.0, 32.0, 68.0, 44.0);
    m.push(Mark::Frame {
        rect: slot,
        width: 0.3,
        color: rule,
        dash: Some(1.5),
    });
    m.push(text(
        fonts,
        (slot.x0 + 12.0, slot.y0 + 18.0),
        3.4,
        "接種券貼付欄",
        ink,
        Face::Jp,
    ));
    m.push(text(
        fonts,
        (slot.x0 + 6.0, slot.y0 + 25.0),
        2.4,
        "（シールを貼ってください）",
        ink,
        Face::Jp,
    ));

    // The questions, each with はい / いいえ.
    y += 8.0;
    m.push(Mark::Fill {
        rect: Rect::new(x0, y, w - 28.0, 8.0),
        color: [225, 225, 228],
    });
    m.push(text(
        fonts,
        (x0 + 2.0, y + 2.0),
        3.2,
        "質問事項",
        ink,
        Face::Jp,
    ));
    m.push(text(fonts, (160.0, y + 2.0), 3.2, "回答欄", ink, Face::Jp));
    y += 8.0;
    let mut qs: Vec<&str> = QUESTIONS.to_vec();
    rng.shuffle(&mut qs);
    for (i, q) in qs.iter().take(10).enumerate() {
        m.push(Mark::Frame {
            rect: Rect::new(x0, y, w - 28.0, 12.0),
            width: 0.25,
            color: rule,
            dash: None,
        });
        m.push(text(
            fonts,
            (x0 + 2.0, y + 4.0),
            3.0,
            format!("{}. {q}", i + 1),
            ink,
            Face::Jp,
        ));
        m.push(text(
            fonts,
            (158.0, y + 4.0),
            3.0,
            "□はい □いいえ",
            ink,
            Face::Jp,
        ));
        y += 12.0;
    }

    // The doctor's box at the bottom, with the lot and dose lines left blank.
    y += 6.0;
    m.push(Mark::Frame {
        rect: Rect::new(x0, y, w - 28.0, 50.0),
        width: 0.5,
        color: rule,
        dash: None,
    });
    m.push(text(
        fonts,
        (x0 + 2.0, y + 2.0),
        3.2,
        "医師記入欄",
        ink,
        Face::Jp,
    ));
    let lines = [
        "以上の問診及び診察の結果、今日の接種は（ 可能 ・ 見合わせる ）".to_string(),
        "ワクチン名              ロット番号".to_string(),
        format!("接種量  0.{}mL     接種日  令和  年  月  日", rng.u8(2..6)),
        format!("接種場所  {}", content::phone(rng)),
    ];
    for (i, s) in lines.iter().enumerate() {
        m.push(text(
            fonts,
            (x0 + 4.0, y + 10.0 + 9.0 * i as f64),
            3.0,
            s,
            ink,
            Face::Jp,
        ));
    }
    m.push(text(
        fonts,
        (x0, h - 10.0),
        2.4,
        format!(
            "（{}版）  問合せ {}",
            content::date_2021(rng).slashed(),
            content::phone(rng)
        ),
        ink,
        Face::Jp,
    ));
    Placed {
        sheet: Sheet {
            size: (w, h),
            paper: *pick(rng, &[[250, 250, 250], [246, 246, 240], [252, 250, 243]]),
            marks: m,
            place: Homography::IDENTITY,
            lift: 0.15,
            grain: range(rng, 0.2, 0.6) as f32,
            seed: rng.u64(..),
        },
        key: Vec::new(),
        line: None,
        slot: Some(slot),
    }
}

/// A reservation slip (予約確認書): more numbers and dates, no OCR line.
pub(crate) fn slip(fonts: &Fonts, rng: &mut Rng) -> Placed {
    let (w, h) = (range(rng, 90.0, 110.0), range(rng, 55.0, 70.0));
    let mut m = Vec::new();
    let d = content::date_2021(rng);
    let lines = [
        (4.2, "接種予約確認書".to_string()),
        (3.0, format!("予約番号  {}", content::digits(rng, 10))),
        (
            3.0,
            format!(
                "予約日時  {}  {}:{:02}",
                d.slashed(),
                rng.u8(9..18),
                rng.u8(0..4) * 15
            ),
        ),
        (3.0, format!("受付番号  {}", content::digits(rng, 12))),
        (
            3.0,
            format!(
                "会場  {}市民会館",
                content::person_name(rng)
                    .chars()
                    .take(2)
                    .collect::<String>()
            ),
        ),
        (2.6, format!("お問い合わせ  {}", content::phone(rng))),
    ];
    let mut y = 6.0;
    for (size, s) in lines {
        m.push(text(fonts, (6.0, y), size, s, INK, Face::Jp));
        y += size * 1.7;
    }
    if rng.bool() {
        let size = LINE_DIGIT_MM / fonts.ocr_digit_ratio * 0.9;
        m.push(text(
            fonts,
            (6.0, h - 9.0),
            size,
            content::digits(rng, 12),
            INK,
            Face::OcrB,
        ));
    }
    Placed {
        sheet: Sheet {
            size: (w, h),
            paper: *pick(rng, &PAPERS),
            marks: m,
            place: Homography::IDENTITY,
            lift: 0.3,
            grain: 0.5,
            seed: rng.u64(..),
        },
        key: Vec::new(),
        line: None,
        slot: None,
    }
}

/// Which GS1 symbol a label carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LabelSymbol {
    Gs1_128,
    DataMatrix,
}

/// The face of a vaccine box and the barcode sticker on it. The sticker is its own
/// sheet so it can sit slightly askew, as stickers do. Returns (box, sticker,
/// module size in mm).
pub(crate) fn label(
    fonts: &Fonts,
    rng: &mut Rng,
    data: &LabelData,
    kind: LabelSymbol,
) -> Result<(Placed, Placed, f64), SynthError> {
    // The sticker: symbol, the human-readable AIs, expiry and lot in words.
    let elements = symbols::gs1_elements(&data.gtin, &data.expiry_yymmdd(), &data.lot);
    let hri = data.human_readable();
    let exp = format!(
        "有効期限 {}.{:02}.{:02}",
        data.expiry.y, data.expiry.m, data.expiry.d
    );
    let lot = format!("製造番号 {}", data.lot);
    let mut sm = Vec::new();
    let (sw, sh, sym_rect, module);
    match kind {
        LabelSymbol::Gs1_128 => {
            let bars = symbols::gs1_128(&elements)?;
            module = range(rng, 0.25, 0.33);
            let bar_h = range(rng, 10.0, 13.0);
            let width = bars.cols as f64 * module;
            sw = width + 12.0;
            sh = bar_h + 16.0;
            sym_rect = Rect::new(6.0, 4.0, width, bar_h);
            sm.push(modules_mark(&bars, (6.0, 4.0), (module, bar_h)));
            sm.push(text(fonts, (6.0, 5.0 + bar_h), 2.4, &hri, INK, Face::Jp));
            sm.push(text(
                fonts,
                (6.0, 9.0 + bar_h),
                2.4,
                format!("{exp}   {lot}"),
                INK,
                Face::Jp,
            ));
        }
        LabelSymbol::DataMatrix => {
            let dm = symbols::gs1_datamatrix(&elements)?;
            module = range(rng, 0.45, 0.6);
            let size = dm.cols as f64 * module;
            let tw = text_width(fonts, Face::Jp, 2.4, &hri);
            sw = size + tw + 14.0;
            sh = size.max(14.0) + 8.0;
            sym_rect = Rect::new(4.0, 4.0, size, dm.rows() as f64 * module);
            sm.push(modules_mark(&dm, (4.0, 4.0), (module, module)));
            let tx = size + 8.0;
            sm.push(text(
                fonts,
                (tx, 4.0),
                2.4,
                format!("GTIN {}", data.gtin),
                INK,
                Face::Jp,
            ));
            sm.push(text(fonts, (tx, 8.0), 2.4, &exp, INK, Face::Jp));
            sm.push(text(fonts, (tx, 12.0), 2.4, &lot, INK, Face::Jp));
            sm.push(text(fonts, (tx, 16.0), 2.4, &hri, INK, Face::Jp));
        }
    }
    let p = data.product;
    // The box is at least big enough for the sticker below its printed header.
    let bw = range(rng, 95.0, 120.0).max(sw + 8.0);
    let bh = range(rng, 55.0, 70.0).max(sh + 36.0);
    let mut bm = vec![Mark::Fill {
        rect: Rect::new(0.0, 0.0, bw, 15.0),
        color: p.band,
    }];
    bm.push(Mark::Text {
        at: (5.0, 3.5),
        size: 7.0,
        text: p.name.into(),
        color: [250, 250, 250],
        face: Face::Jp,
        bold: true,
        width: text_width(fonts, Face::Jp, 7.0, p.name),
    });
    bm.push(text(
        fonts,
        (5.0, 17.5),
        2.6,
        "劇薬  処方箋医薬品",
        [180, 30, 30],
        Face::Jp,
    ));
    bm.push(text(fonts, (5.0, 21.5), 2.2, p.generic, INK, Face::Jp));
    bm.push(text(
        fonts,
        (5.0, bh - 6.0),
        2.4,
        format!("製造販売元  {}", p.maker),
        INK,
        Face::Jp,
    ));
    bm.push(text(
        fonts,
        (bw - 45.0, bh - 6.0),
        2.0,
        "注意―医師等の処方箋により使用すること",
        INK,
        Face::Jp,
    ));
    let boxed = Placed {
        sheet: Sheet {
            size: (bw, bh),
            paper: [248, 248, 250],
            marks: bm,
            place: Homography::IDENTITY,
            lift: 0.8,
            grain: 0.15,
            seed: rng.u64(..),
        },
        key: Vec::new(),
        line: None,
        slot: None,
    };

    let sticker = Placed {
        sheet: Sheet {
            size: (sw, sh),
            paper: [252, 252, 252],
            marks: sm,
            place: Homography::IDENTITY,
            lift: 0.15,
            grain: 0.1,
            seed: rng.u64(..),
        },
        key: vec![sym_rect.grow(2.5)],
        line: None,
        slot: None,
    };
    Ok((boxed, sticker, module))
}
