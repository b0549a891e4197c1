//! serde helpers for the logging API's lenient fields: `flushFrequency`
//! (a Go duration string or an integer of nanoseconds) and `infoBufferSize`
//! (a quantity written as a string or a number).

/// `flushFrequency`: string duration or integer nanoseconds.
pub mod flush_frequency {
    use crate::go_duration;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Nanos(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&go_duration::format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d).map_err(|_| D::Error::custom("expected a Go duration string or an integer of nanoseconds"))? {
            Raw::Nanos(n) => Ok(Duration::from_nanos(n)),
            Raw::Text(t) => go_duration::parse(&t).map_err(D::Error::custom),
        }
    }
}

/// A quantity given as a string or a plain number; kept as a string.
pub mod string_or_number {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Float(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        match Raw::deserialize(d).map_err(|_| D::Error::custom("expected a quantity"))? {
            Raw::Int(i) => Ok(i.to_string()),
            Raw::Float(f) => Ok(f.to_string()),
            Raw::Text(t) => Ok(t),
        }
    }
}
