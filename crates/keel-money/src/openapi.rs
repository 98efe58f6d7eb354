//! OpenAPI schemas (feature `openapi`) for the totals whose `Serialize` is written by hand
//! (`WideTotal` adds the derived `formatted` and `plain` members).

use crate::WideTotal;
use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

impl PartialSchema for WideTotal {
    fn schema() -> RefOr<Schema> {
        let string = |description: &str| {
            ObjectBuilder::new().schema_type(Type::String).description(Some(description.to_owned()))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("An exact total in one currency"))
            .property("currency", string("ISO 4217 code").min_length(Some(3)).max_length(Some(3)))
            .property(
                "minor",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .description(Some("The sum in minor units: an integer of any size (it may pass 64 bits)")),
            )
            .property("formatted", string("For people, in the currency's style (`$1,234.50`)"))
            .property("plain", string("Decimal, no symbol or grouping (`1234.50`)"))
            .property(
                "count",
                ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).description(Some("Amounts summed")),
            )
            .required("currency")
            .required("minor")
            .required("formatted")
            .required("plain")
            .required("count")
            .into()
    }
}

impl ToSchema for WideTotal {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WideTotal")
    }
}
