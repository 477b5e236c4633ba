//! OpenAPI schemas for the identifier newtypes, which serialise as strings (or small
//! integers) of a fixed shape. The structs and enums derive theirs.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::dose::{ClientRecordId, DeviceId, SiteCode};
use crate::ids::{
    ClinicCode, DoseNumber, MunicipalityCode, OcrLine, PersonId, VoucherKind, VoucherNumber,
};
use crate::lot::Lot;
use crate::my_number::MyNumber;

macro_rules! string_schema {
    ($t:ty, $pattern:expr, $example:expr, $desc:expr) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($pattern))
                    .description(Some($desc))
                    .examples([$example])
                    .into()
            }
        }
        impl ToSchema for $t {}
    };
    // Without an example (the マイナンバー: not even a sample is written into the document).
    ($t:ty, $pattern:expr, $desc:expr) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($pattern))
                    .description(Some($desc))
                    .into()
            }
        }
        impl ToSchema for $t {}
    };
}

string_schema!(
    MunicipalityCode,
    "^[0-9]{6}$",
    "131016",
    "市町村コード: 6 digits, the last a check digit"
);
string_schema!(
    VoucherNumber,
    "^[0-9]{10}$",
    "1310160001",
    "券番号: 10 digits"
);
string_schema!(
    OcrLine,
    "^[0-9]{18}$",
    "111310161310160001",
    "The voucher's OCR line: 券種, dose number, municipality code, 券番号"
);
string_schema!(
    PersonId,
    "^[0-9]{1,15}$",
    "100000001",
    "個別宛名番号: 1 to 15 digits"
);
string_schema!(
    ClinicCode,
    "^[0-9]{10}$",
    "0110113719",
    "医療機関コード: 10 digits, the last a Luhn check digit"
);
string_schema!(Lot, "^[A-Z0-9-]{1,20}$", "FA4597", "ロット番号");
string_schema!(
    crate::gs1::Gtin,
    "^[0-9]{14}$",
    "04987222637817",
    "GTIN: the product code of a GS1 label, 14 digits"
);
string_schema!(
    SiteCode,
    "^[A-Z0-9-]{1,20}$",
    "MASS-01",
    "A mass-vaccination site's code"
);
string_schema!(
    MyNumber,
    "^[0-9]{12}$",
    "マイナンバー: 12 digits, the last a check digit. Only ever in a request body."
);

macro_rules! uuid_schema {
    ($t:ty, $desc:expr) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .description(Some($desc))
                    .into()
            }
        }
        impl ToSchema for $t {}
    };
}

uuid_schema!(ClientRecordId, "The id the tablet gave the record");
uuid_schema!(DeviceId, "The enrolled tablet's id");

macro_rules! digit_schema {
    ($t:ty, $min:expr, $desc:expr) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some($min))
                    .maximum(Some(9))
                    .description(Some($desc))
                    .into()
            }
        }
        impl ToSchema for $t {}
    };
}

digit_schema!(VoucherKind, 0, "券種: the OCR line's first digit");
digit_schema!(DoseNumber, 1, "接種回数: which dose, 1 to 9");
