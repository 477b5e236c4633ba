//! The staff web pages: Japanese first, English by `?lang=en`. Each page is a small
//! server-made shell (texts in the chosen language, forms, empty tables) and
//! `app.js` fills it through the same JSON API the other clients use, with the
//! session cookie and the CSRF token: so a page can do nothing the API would not
//! let its user do, and every access is logged by the API.

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// Texts: (key, Japanese, English).
const TEXTS: &[(&str, &str, &str)] = &[
    (
        "app",
        "ワクチン接種記録システム",
        "Vaccination Record System",
    ),
    ("signin", "サインイン", "Sign in"),
    ("email", "メールアドレス (lg.jp)", "E-mail (lg.jp)"),
    (
        "tablet_email",
        "タブレットのメールアドレス",
        "The tablet's e-mail",
    ),
    ("state_waiting", "登録待ち", "waiting for enrolment"),
    ("state_enrolled", "利用中", "enrolled"),
    ("state_expired", "登録コード期限切れ", "code expired"),
    ("state_revoked", "利用停止", "revoked"),
    ("send_code", "パスコードを送る", "Send a passcode"),
    ("passcode", "パスコード (6桁)", "Passcode (6 digits)"),
    ("verify", "サインインする", "Sign in"),
    (
        "code_sent",
        "登録済みのアドレスであれば、パスコードを送りました (10分間有効)。",
        "If this address is registered, a passcode is on its way (good for 10 minutes).",
    ),
    ("signout", "サインアウト", "Sign out"),
    ("home", "ホーム", "Home"),
    ("upload", "アップロード", "Upload"),
    ("review", "確認待ち", "Review queue"),
    ("export", "台帳出力", "Ledger export"),
    ("transfer", "転入者の照会", "Transfer look-up"),
    ("users", "利用者", "Users"),
    ("tablets", "タブレット", "Tablets"),
    ("sites", "接種会場", "Sites"),
    ("contacts", "連絡先", "Contacts"),
    (
        "welcome",
        "自治体の接種記録を管理します。上のメニューから選んでください。",
        "Manage your municipality's vaccination records: choose from the menu above.",
    ),
    (
        "register_csv",
        "接種対象者 CSV",
        "Target-person register CSV",
    ),
    ("paper_csv", "紙の接種記録 CSV", "Paper dose records CSV"),
    (
        "mode_partial",
        "正しい行だけ取り込む",
        "Take the good rows only",
    ),
    (
        "dry_run",
        "確認のみ (保存しない)",
        "Check only (store nothing)",
    ),
    ("send", "送信", "Send"),
    // How far a long upload has got.
    ("stage_sending", "送信中", "Sending"),
    (
        "stage_checking",
        "受信しました。行を確認中",
        "Received. Checking rows",
    ),
    ("stage_storing", "確認しました。保存中", "Checked. Storing"),
    ("rows", "行数", "Rows"),
    ("new", "新規", "New"),
    ("updated", "更新", "Updated"),
    ("unchanged", "変更なし", "Unchanged"),
    ("rejected", "取り込まず", "Rejected"),
    ("flagged", "保留・状態変更", "Flagged"),
    // A file not applied (refused, or checked only) says what would have happened.
    ("would_new", "新規になる予定", "Would be new"),
    ("would_updated", "更新になる予定", "Would be updated"),
    ("would_unchanged", "変更なしの予定", "Would be unchanged"),
    (
        "would_flagged",
        "保留・状態変更になる予定",
        "Would be flagged",
    ),
    ("line", "行", "Line"),
    ("field", "項目", "Field"),
    ("problem", "内容", "Problem"),
    ("fix", "対処", "Fix"),
    ("error_csv", "エラー一覧 CSV", "Error list CSV"),
    ("voucher", "券番号", "Voucher"),
    ("dose", "回数", "Dose"),
    ("date", "接種日", "Date"),
    ("vaccine", "ワクチン", "Vaccine"),
    ("lot", "ロット番号", "Lot"),
    ("reason", "理由", "Reason"),
    ("void", "取消", "Void"),
    ("amend", "修正", "Amend"),
    ("release", "確認済みとして登録", "Release"),
    (
        "reason_prompt",
        "理由を入力してください (記録の履歴に残ります)",
        "Give the reason (kept in the record's history)",
    ),
    ("accepted", "登録されました", "accepted"),
    ("from", "開始日", "From"),
    ("to", "終了日", "To"),
    ("encoding", "文字コード", "Encoding"),
    ("download", "ダウンロード", "Download"),
    ("my_number", "マイナンバー (12桁)", "My Number (12 digits)"),
    ("look_up", "照会", "Look up"),
    (
        "batch_csv",
        "一括照会 CSV (個別宛名番号,マイナンバー)",
        "Batch CSV (person id, My Number)",
    ),
    ("municipality", "自治体", "Municipality"),
    ("contact", "連絡先", "Contact"),
    ("team", "担当課", "Team"),
    ("person", "担当者", "Person"),
    ("phone", "電話番号", "Phone"),
    ("transfer_contact", "転出入連絡先", "Transfer contact"),
    ("add", "追加・更新", "Add or update"),
    ("remove", "削除", "Remove"),
    (
        "site_code",
        "会場コード / 医療機関コード",
        "Site code / clinic code",
    ),
    ("site_name", "名称", "Name"),
    ("clinic", "医療機関", "Clinic"),
    ("site", "集団接種会場", "Mass-vaccination site"),
    ("kind", "種別", "Kind"),
    ("register_tablet", "タブレットを登録", "Register a tablet"),
    ("state", "状態", "State"),
    ("revoke", "利用停止", "Revoke"),
    ("new_code", "登録コード再発行", "New enrolment code"),
    (
        "enrolment_code",
        "登録コード (タブレットで入力または読み取り)",
        "Enrolment code (type or scan it on the tablet)",
    ),
    ("address", "住所", "Address"),
    ("delivery", "配送先", "Delivery"),
    ("scale", "1日の接種数", "Doses a day"),
    ("system_contact", "システム担当", "System contact"),
    ("vaccination_contact", "接種担当", "Vaccination contact"),
    ("save", "保存", "Save"),
    ("saved", "保存しました", "Saved"),
    ("none", "ありません", "None"),
    ("lang_switch", "English", "日本語"),
    (
        "confirm_void",
        "この記録を取り消しますか?",
        "Void this record?",
    ),
    (
        "confirm_revoke",
        "このタブレットを利用停止にしますか?",
        "Revoke this tablet?",
    ),
];

fn t(lang: Lang, key: &str) -> &'static str {
    TEXTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, ja, en)| if lang == Lang::En { *en } else { *ja })
        .unwrap_or("?")
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

fn lang_of(q: &LangQuery, headers: &HeaderMap) -> (Lang, bool) {
    match q.lang.as_deref() {
        Some("en") => return (Lang::En, true),
        Some("ja") => return (Lang::Ja, true),
        _ => {}
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|kv| kv.trim() == "vrs_lang=en");
    (if cookie { Lang::En } else { Lang::Ja }, false)
}

/// The pages: (path, title key, body).
fn body(page: &str, l: Lang) -> Option<String> {
    let tt = |k| t(l, k);
    let input = |name: &str, label: &str, kind: &str, extra: &str| {
        format!(r#"<label>{label} <input name="{name}" type="{kind}" {extra}></label>"#)
    };
    Some(match page {
        "signin" => format!(
            r#"<form id="start"><h2>{}</h2>{}<button type="submit">{}</button></form>
<p id="sent" hidden>{}</p>
<form id="verify" hidden>{}<button type="submit">{}</button></form>"#,
            tt("signin"),
            input(
                "email",
                tt("email"),
                "email",
                "required autocomplete=\"username\""
            ),
            tt("send_code"),
            tt("code_sent"),
            input(
                "passcode",
                tt("passcode"),
                "text",
                "required inputmode=\"numeric\" pattern=\"[0-9]{6}\" autocomplete=\"one-time-code\""
            ),
            tt("verify"),
        ),
        "home" => format!(r#"<p id="who"></p><p>{}</p>"#, tt("welcome")),
        "upload" => format!(
            r#"<form id="upload"><fieldset><legend>{}</legend>
<label><input type="radio" name="kind" value="register" checked> {}</label>
<label><input type="radio" name="kind" value="paper"> {}</label></fieldset>
<input type="file" name="file" accept=".csv,text/csv" required>
<label><input type="checkbox" name="partial"> {}</label>
<label><input type="checkbox" name="dry_run"> {}</label>
<button type="submit">{}</button></form>
<progress id="progress" max="100" value="0" hidden></progress> <span id="stage" role="status"></span>
<section id="report" hidden><table class="summary"><tr id="count-heads"><th>{}</th><th data-k="new">{}</th><th data-k="updated">{}</th><th data-k="unchanged">{}</th><th data-k="flagged">{}</th><th>{}</th></tr><tr id="counts"></tr></table>
<table id="errors"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody></tbody></table>
<a id="error-csv" hidden>{}</a></section>"#,
            tt("upload"),
            tt("register_csv"),
            tt("paper_csv"),
            tt("mode_partial"),
            tt("dry_run"),
            tt("send"),
            tt("rows"),
            tt("new"),
            tt("updated"),
            tt("unchanged"),
            tt("flagged"),
            tt("rejected"),
            tt("line"),
            tt("field"),
            tt("problem"),
            tt("fix"),
            tt("error_csv"),
        ),
        "review" => format!(
            r#"<table id="held"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody></tbody></table>
<p id="empty" hidden>{}</p>"#,
            tt("voucher"),
            tt("dose"),
            tt("date"),
            tt("vaccine"),
            tt("lot"),
            tt("reason"),
            tt("none"),
        ),
        "export" => format!(
            r#"<form id="export">{}{}<label>{} <select name="encoding"><option value="utf-8-bom">UTF-8 (BOM)</option><option value="utf-8">UTF-8</option><option value="cp932">Shift_JIS (CP932)</option></select></label>
<button type="submit">{}</button></form>"#,
            input("from", tt("from"), "date", "required"),
            input("to", tt("to"), "date", "required"),
            tt("encoding"),
            tt("download"),
        ),
        "transfer" => format!(
            r#"<form id="lookup">{}<button type="submit">{}</button></form>
<section id="matches"></section>
<form id="lookup-batch"><label>{} <input type="file" name="file" accept=".csv,text/csv" required></label><button type="submit">{}</button></form>
<table id="batch"><thead><tr><th>{}</th><th>個別宛名番号</th><th>{}</th><th>{}</th></tr></thead><tbody></tbody></table>"#,
            input(
                "my_number",
                tt("my_number"),
                "password",
                "required inputmode=\"numeric\" pattern=\"[0-9]{12}\" autocomplete=\"off\""
            ),
            tt("look_up"),
            tt("batch_csv"),
            tt("look_up"),
            tt("line"),
            tt("municipality"),
            tt("contact"),
        ),
        "users" => format!(
            r#"<table id="users"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody></tbody></table>
<form id="user">{}{}{}{}<label><input type="checkbox" name="transfer_contact"> {}</label><button type="submit">{}</button></form>"#,
            tt("email"),
            tt("person"),
            tt("team"),
            tt("phone"),
            tt("transfer_contact"),
            input("email", tt("email"), "email", "required"),
            input("person", tt("person"), "text", "required"),
            input("team", tt("team"), "text", ""),
            input("phone", tt("phone"), "tel", ""),
            tt("transfer_contact"),
            tt("add"),
        ),
        "tablets" => format!(
            r#"<table id="tablets"><thead><tr><th>ID</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody></tbody></table>
<form id="tablet"><h2>{}</h2><label>{} <select name="kind"><option value="clinic">{}</option><option value="site">{}</option></select></label>
{}{}{}{}{}{}<button type="submit">{}</button></form>
<section id="enrolment" hidden><p>{}</p><p class="code" id="code"></p><div id="qr"></div></section>"#,
            tt("site_name"),
            tt("tablet_email"),
            tt("state"),
            tt("register_tablet"),
            tt("kind"),
            tt("clinic"),
            tt("site"),
            input("code", tt("site_code"), "text", "required"),
            input("site_name", tt("site_name"), "text", "required"),
            input("email", tt("tablet_email"), "email", "required"),
            input("address", tt("address"), "text", ""),
            input("delivery", tt("delivery"), "text", ""),
            input("doses_per_day", tt("scale"), "number", "min=\"0\""),
            tt("register_tablet"),
            tt("enrolment_code"),
        ),
        "sites" => format!(
            r#"<table id="sites"><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody></tbody></table>
<form id="site">{}{}<button type="submit">{}</button></form>"#,
            tt("site_code"),
            tt("site_name"),
            input("code", tt("site_code"), "text", "required"),
            input("name", tt("site_name"), "text", "required"),
            tt("add"),
        ),
        "contacts" => {
            let form = |kind: &str, title: &str| {
                format!(
                    r#"<form class="contact" data-kind="{kind}"><h2>{title}</h2>{}{}{}{}<button type="submit">{}</button></form>"#,
                    input("person", tt("person"), "text", "required"),
                    input("team", tt("team"), "text", ""),
                    input("phone", tt("phone"), "tel", ""),
                    input("email", tt("email"), "email", "required"),
                    tt("save"),
                )
            };
            format!(
                "{}{}",
                form("system", tt("system_contact")),
                form("vaccination", tt("vaccination_contact"))
            )
        }
        _ => return None,
    })
}

const MENU: &[(&str, &str)] = &[
    ("home", "/"),
    ("upload", "/upload"),
    ("review", "/review"),
    ("export", "/export"),
    ("transfer", "/transfer"),
    ("users", "/users"),
    ("tablets", "/tablets"),
    ("sites", "/sites"),
    ("contacts", "/contacts"),
];

fn escape_json(s: &str) -> String {
    // The dictionary sits in a <script type="application/json">: no "</" may end it.
    s.replace('<', "\\u003c")
}

fn page(page: &str, l: Lang) -> Option<String> {
    let main = body(page, l)?;
    let nav = if page == "signin" {
        String::new()
    } else {
        let links: String = MENU
            .iter()
            .map(|(k, href)| {
                let current = if *k == page {
                    r#" aria-current="page""#
                } else {
                    ""
                };
                format!(r#"<a href="{href}"{current}>{}</a>"#, t(l, k))
            })
            .collect();
        format!(
            r#"<nav>{links}<button id="signout" type="button">{}</button></nav>"#,
            t(l, "signout")
        )
    };
    let other = if l == Lang::En { "ja" } else { "en" };
    let mut dict: serde_json::Map<String, serde_json::Value> = TEXTS
        .iter()
        .map(|(k, ja, en)| {
            (
                (*k).to_owned(),
                serde_json::Value::from(if l == Lang::En { *en } else { *ja }),
            )
        })
        .collect();
    // Hold reasons in the reader's language, from the one place they are worded.
    for r in vrs_domain::wire::HoldReason::ALL {
        dict.insert(
            format!("hold_{}", crate::store::codec::hold_code(r)),
            serde_json::Value::from(if l == Lang::En {
                r.describe_en()
            } else {
                r.describe_ja()
            }),
        );
    }
    let title = if page == "home" { "app" } else { page };
    Some(format!(
        r#"<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — VRS</title><link rel="stylesheet" href="/assets/app.css"></head>
<body data-page="{page}"><header><h1>{app}</h1><a class="lang" href="?lang={other}">{switch}</a></header>
{nav}<main><h2 class="page-title">{heading}</h2><p id="message" role="status"></p>{main}</main>
<script id="texts" type="application/json">{dict}</script>
<script src="/assets/app.js"></script></body></html>"#,
        lang = l.code(),
        title = t(l, title),
        app = t(l, "app"),
        switch = t(l, "lang_switch"),
        heading = t(l, title),
        dict = escape_json(&serde_json::Value::Object(dict).to_string()),
    ))
}

async fn serve_page(name: &'static str, q: Query<LangQuery>, headers: HeaderMap) -> Response {
    let (l, chosen) = lang_of(&q, &headers);
    let Some(html) = page(name, l) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    if chosen {
        let v = format!(
            "vrs_lang={}; Path=/; SameSite=Lax; Max-Age=31536000",
            l.code()
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// The pages and their assets.
pub fn router() -> Router {
    let mut r = Router::new()
        .route(
            "/assets/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/",
            get(|q: Query<LangQuery>, h: HeaderMap| serve_page("home", q, h)),
        )
        .route(
            "/signin",
            get(|q: Query<LangQuery>, h: HeaderMap| serve_page("signin", q, h)),
        )
        .route("/index.html", get(|| async { Redirect::permanent("/") }));
    for name in [
        "upload", "review", "export", "transfer", "users", "tablets", "sites", "contacts",
    ] {
        r = r.route(
            &format!("/{name}"),
            get(move |q: Query<LangQuery>, h: HeaderMap| serve_page(name, q, h)),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_exists_in_both_languages_with_every_text_known() {
        for name in [
            "signin", "home", "upload", "review", "export", "transfer", "users", "tablets",
            "sites", "contacts",
        ] {
            for l in [Lang::Ja, Lang::En] {
                let html = page(name, l).unwrap();
                assert!(
                    !html.contains(">?<"),
                    "{name} {l:?} has an unknown text key"
                );
                assert!(html.contains(&format!("data-page=\"{name}\"")));
            }
        }
        assert!(
            page("upload", Lang::En)
                .unwrap()
                .contains("Target-person register CSV")
        );
        assert!(page("upload", Lang::Ja).unwrap().contains("接種対象者 CSV"));
        // Every hold reason is worded in the page's language.
        let ja = page("review", Lang::Ja).unwrap();
        let en = page("review", Lang::En).unwrap();
        for r in vrs_domain::wire::HoldReason::ALL {
            assert!(ja.contains(r.describe_ja()), "{r:?}");
            assert!(en.contains(r.describe_en()), "{r:?}");
        }
        assert!(page("nope", Lang::Ja).is_none());
    }
}
