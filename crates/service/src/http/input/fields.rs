//! A serde `Deserializer` over a request's fields, whatever carried them:
//! text (a multipart part or the query string), bytes (an image), or a JSON
//! value (a member of a JSON body). A handler's input struct derives
//! `Deserialize` once and is read from all three. Text is parsed into the
//! type the struct asks for (`top_k=5` gives a number; `top_k=` is not a
//! number); a JSON null is an absent optional field. A failure names the
//! field it is about.
use bytes::Bytes;
use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

/// One field's value, as it arrived.
#[derive(Debug)]
pub enum Field {
    Text(String),
    Bytes(Bytes),
    Json(serde_json::Value),
}

impl Field {
    /// A JSON member: strings become text, so that `"top_k": "5"` reads as `top_k=5` does.
    pub fn json(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::String(s) => Field::Text(s),
            v => Field::Json(v),
        }
    }
}

/// Why a field (or the whole input) could not be read.
#[derive(Debug, PartialEq)]
pub struct FieldError {
    /// The field, when the failure is about one.
    pub field: Option<&'static str>,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        FieldError { field: None, message: msg.to_string() }
    }

    fn missing_field(field: &'static str) -> Self {
        FieldError { field: Some(field), message: "required".into() }
    }
}

impl FieldError {
    fn within(mut self, field: Option<&'static str>) -> Self {
        self.field = self.field.or(field);
        self
    }
}

fn from_json(e: serde_json::Error) -> FieldError {
    de::Error::custom(e)
}

fn not_text() -> FieldError {
    de::Error::custom("a file was sent where text was expected")
}

/// A JSON number of integral value written as a whole number (`18.0` is
/// the integer 18 to JSON Schema, not to serde).
fn integral(j: &serde_json::Value) -> Option<String> {
    let f = j.as_f64().filter(|_| j.is_f64())?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then(|| format!("{}", f as i64))
}

/// Parses text as the number or boolean the field asks for.
macro_rules! parse_text {
    ($($method:ident => $visit:ident: $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
            let field = match self {
                Field::Json(j) => match integral(&j) {
                    Some(whole) => Field::Text(whole),
                    None => Field::Json(j),
                },
                other => other,
            };
            match field {
                Field::Text(s) => match s.trim().parse::<$ty>() {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => Err(de::Error::custom(format!("{s:?} is not {}", $what))),
                },
                Field::Json(j) => j.$method(visitor).map_err(from_json),
                Field::Bytes(_) => Err(not_text()),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Field {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self {
            Field::Text(s) => visitor.visit_string(s),
            Field::Bytes(b) => visitor.visit_byte_buf(Vec::from(b)),
            Field::Json(j) => j.deserialize_any(visitor).map_err(from_json),
        }
    }

    parse_text! {
        deserialize_bool => visit_bool: bool, "true or false";
        deserialize_i8 => visit_i8: i8, "a valid whole number";
        deserialize_i16 => visit_i16: i16, "a valid whole number";
        deserialize_i32 => visit_i32: i32, "a valid whole number";
        deserialize_i64 => visit_i64: i64, "a valid whole number";
        deserialize_u8 => visit_u8: u8, "a valid whole number";
        deserialize_u16 => visit_u16: u16, "a valid whole number";
        deserialize_u32 => visit_u32: u32, "a valid whole number";
        deserialize_u64 => visit_u64: u64, "a valid whole number";
        deserialize_f32 => visit_f32: f32, "a valid number";
        deserialize_f64 => visit_f64: f64, "a valid number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self {
            Field::Json(serde_json::Value::Null) => visitor.visit_none(),
            field => visitor.visit_some(field),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self {
            Field::Text(s) => {
                let text: StringDeserializer<FieldError> = s.trim().to_string().into_deserializer();
                de::Deserializer::deserialize_enum(text, name, variants, visitor)
            }
            Field::Json(j) => j.deserialize_enum(name, variants, visitor).map_err(from_json),
            Field::Bytes(_) => Err(not_text()),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self {
            Field::Text(s) => visitor.visit_string(s),
            Field::Json(j) => j.deserialize_string(visitor).map_err(from_json),
            Field::Bytes(_) => Err(not_text()),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// A request's fields, read as a struct: each key once (the last wins).
pub struct Fields(pub Vec<(String, Field)>);

impl<'de> de::Deserializer<'de> for Fields {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.deserialize_struct("", &[], visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        let mut entries: Vec<(String, Field)> = Vec::with_capacity(self.0.len());
        for (key, value) in self.0 {
            entries.retain(|(k, _)| *k != key);
            entries.push((key, value));
        }
        visitor.visit_map(Entries { entries: entries.into_iter(), value: None, fields, current: None })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

struct Entries {
    entries: std::vec::IntoIter<(String, Field)>,
    value: Option<Field>,
    /// The struct's field names: where a failure's field name comes from.
    fields: &'static [&'static str],
    current: Option<&'static str>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, FieldError> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.current = self.fields.iter().copied().find(|f| *f == key);
        self.value = Some(value);
        let key: StringDeserializer<FieldError> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, FieldError> {
        let value = self.value.take().ok_or_else(|| de::Error::custom("a value without a key"))?;
        seed.deserialize(value).map_err(|e| e.within(self.current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Choice {
        Single,
        Largest,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        name: String,
        top_k: Option<u32>,
        threshold: Option<f32>,
        face: Option<Choice>,
        flag: Option<bool>,
        metadata: Option<serde_json::Value>,
        #[serde(default)]
        data: Option<serde_bytes_like::Blob>,
    }

    /// Bytes read through `deserialize_byte_buf`, as an image field is.
    mod serde_bytes_like {
        #[derive(Debug, PartialEq)]
        pub struct Blob(pub Vec<u8>);
        impl<'de> serde::Deserialize<'de> for Blob {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = Blob;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Blob, E> {
                        Ok(Blob(v))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }

    fn text(k: &str, v: &str) -> (String, Field) {
        (k.into(), Field::Text(v.into()))
    }

    fn read(fields: Vec<(String, Field)>) -> Result<Sample, FieldError> {
        Sample::deserialize(Fields(fields))
    }

    #[test]
    fn text_is_parsed_into_the_types_the_struct_asks_for() {
        let s = read(vec![
            text("name", "Ada"),
            text("top_k", " 7 "),
            text("threshold", "0.5"),
            text("face", "largest"),
            text("flag", "true"),
            text("metadata", "{\"a\": 1}"),
            ("data".into(), Field::Bytes(Bytes::from_static(b"\x89PNG"))),
            text("unknown", "ignored"),
        ])
        .unwrap();
        assert_eq!((s.top_k, s.threshold, s.face, s.flag), (Some(7), Some(0.5), Some(Choice::Largest), Some(true)));
        assert_eq!(s.metadata, Some(serde_json::Value::String("{\"a\": 1}".into())));
        assert_eq!(s.data.unwrap().0, b"\x89PNG");
    }

    #[test]
    fn json_members_keep_their_types_and_strings_read_as_text() {
        let s = read(vec![
            ("name".into(), Field::json("Ada".into())),
            ("top_k".into(), Field::json(serde_json::json!(3))),
            ("threshold".into(), Field::json("0.25".into())),
            ("metadata".into(), Field::json(serde_json::json!({"a": [1]}))),
            ("face".into(), Field::json(serde_json::Value::Null)),
        ])
        .unwrap();
        assert_eq!((s.top_k, s.threshold, s.face), (Some(3), Some(0.25), None));
        assert_eq!(s.metadata, Some(serde_json::json!({"a": [1]})));
    }

    #[test]
    fn empty_text_is_a_value_and_the_last_value_wins() {
        let s = read(vec![text("name", "first"), text("name", "second")]).unwrap();
        assert_eq!((s.name.as_str(), s.top_k, s.face), ("second", None, None));
        assert_eq!(read(vec![text("name", "")]).unwrap().name, "");
        assert_eq!(read(vec![text("name", "a"), text("top_k", "")]).unwrap_err().field, Some("top_k"));
        assert_eq!(read(vec![text("name", "a"), text("face", " ")]).unwrap_err().field, Some("face"));
    }

    #[test]
    fn failures_name_their_field() {
        let err = |fields| read(fields).unwrap_err();
        let e = err(vec![text("name", "a"), text("top_k", "-3")]);
        assert_eq!((e.field, e.message.as_str()), (Some("top_k"), "\"-3\" is not a valid whole number"));
        let e = err(vec![text("name", "a"), text("threshold", "high")]);
        assert_eq!(e.field, Some("threshold"));
        let e = err(vec![text("name", "a"), text("face", "all")]);
        assert_eq!(e.field, Some("face"));
        assert!(e.message.contains("single") && e.message.contains("largest"), "{}", e.message);
        let e = err(vec![text("top_k", "1")]);
        assert_eq!((e.field, e.message.as_str()), (Some("name"), "required"));
        let e = err(vec![("name".into(), Field::json(serde_json::json!(5)))]);
        assert_eq!(e.field, Some("name"));
        let e = err(vec![("name".into(), Field::Bytes(Bytes::from_static(b"x")))]);
        assert_eq!(e.field, Some("name"));
        let e = err(vec![text("name", "a"), ("top_k".into(), Field::json(serde_json::json!(1.5)))]);
        assert_eq!(e.field, Some("top_k"));
        let whole = read(vec![text("name", "a"), ("top_k".into(), Field::json(serde_json::json!(18.0)))]);
        assert_eq!(whole.unwrap().top_k, Some(18));
    }
}
