//! The report's OpenAPI schema (feature `openapi`), written beside its hand-written `Serialize`
//! (in `report.rs`) because the report is serialized as a map, which no derive can describe.

use crate::{CheckStatus, HealthReport, OverallStatus, APP_SERVICE};
use std::borrow::Cow;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

impl PartialSchema for HealthReport {
    fn schema() -> RefOr<Schema> {
        let status = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([OverallStatus::Ok.as_str(), OverallStatus::Degraded.as_str()]))
            .description(Some("`ok` (HTTP 200) or `degraded` (HTTP 503)"));
        let checked_at = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("When the checks ran (concurrent probes share one run)"));
        let services = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(Ref::from_schema_name(CheckStatus::name())))
            .description(Some(format!("Each check's verdict by name; `{APP_SERVICE}` is always `ok`")));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("The health report; sections a service adds (for trusted callers) are further members"))
            .property("status", status)
            .property("checked_at", checked_at)
            .property("services", services)
            .required("status")
            .required("checked_at")
            .required("services")
            .into()
    }
}

impl ToSchema for HealthReport {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("HealthReport")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((CheckStatus::name().into_owned(), CheckStatus::schema()));
    }
}
