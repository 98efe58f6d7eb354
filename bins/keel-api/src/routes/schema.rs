//! Schema pieces for the OpenAPI document built from the very constants the handlers enforce,
//! for `#[schema(schema_with = ...)]` and `#[param(schema_with = ...)]`: utoipa's `max_length`
//! and `maximum` attributes take only literals, which would be a second copy of each limit.

use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Array, Ref};

/// A string of `min..=max` characters (JSON Schema counts characters, as the handlers do).
pub(crate) fn string(min: usize, max: usize) -> Object {
    ObjectBuilder::new().schema_type(Type::String).min_length(Some(min)).max_length(Some(max)).build()
}

/// An integer in `min..=max`.
pub(crate) fn integer(min: i64, max: i64) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
        .build()
}

/// An array of `min..=max` items of the named component schema.
pub(crate) fn array_of(schema: &str, min: usize, max: usize) -> Array {
    ArrayBuilder::new().items(Ref::from_schema_name(schema)).min_items(Some(min)).max_items(Some(max)).build()
}

/// One of the given strings.
pub(crate) fn one_of(values: &[&str]) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied())).build()
}

/// A `YYYY-MM-DD` day from `first` to `last` (the range in the description: JSON Schema has no
/// bounds for dates).
pub(crate) fn date_schema(first: chrono::NaiveDate, last: chrono::NaiveDate) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .description(Some(format!("{first} to {last}")))
        .build()
}

/// An integer of any size (no `int64` format): report totals are summed in i128.
pub(crate) fn wide_integer() -> Object {
    ObjectBuilder::new().schema_type(Type::Integer).build()
}
